"""MEXC spot v3: the same /api/v3 paths as Binance, with MEXC's differences and quirks.

Differences (as ccxt 4.5.90's ``mexc`` class reads them): the ``X-MEXC-APIKEY`` header;
ccxt sends every parameter in the query string, also for POST and DELETE; error codes are
MEXC's (chosen from ccxt's ``mexc.exceptions`` table so ccxt raises the class the real
venue gets); IOC is ``type=IMMEDIATE_OR_CANCEL``; order ids are strings
(``C02__...``); the create answer carries no status; numbers are plain strings;
exchangeInfo gives precisions as decimal counts plus ``baseSizePrecision`` (minimum
quantity) and ``quoteAmountPrecision`` (minimum cost); client order ids are at most 32
characters.

Quirks, each switched on by name (see ``state.QUIRKS``); each sets one field of the
matching engine's MEXC venue profile (``app.server_venue``):

- ``order_not_found_after_create`` (ccxt issue 21614): the venue's visibility lag is
  ``not_found_window_ms``: within it of its creation an order is not found by a query
  (``-2013 Order does not exist.``), open orders, history, trades, or a cancel.
- ``ioc_returns_open`` (ccxt issue 25003): an IOC order (``IMMEDIATE_OR_CANCEL``, or
  ``LIMIT`` with ``timeInForce=IOC``) is kept as a resting limit order: queries say
  ``NEW`` and the unfilled rest stays live (and can fill) until cancelled.
- ``no_stop_limit`` (ccxt issue 22104): ``STOP_LOSS_LIMIT`` and the other trigger types
  are refused with MEXC's ``{"code": 500, "msg": "invalid type"}``, which ccxt can only
  surface as a plain ExchangeError (what the real venue answers). Without the quirk
  they are refused with ``30041`` (an InvalidOrder in ccxt). Either way the MEXC
  matching engine has no stop orders (``SimVenue.stop_orders`` is False).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Final

from fsmtrader.errors import (
    DuplicateOrder,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
)
from fsmtrader.exchange.types import Balance, TradeInfo
from fsmtrader_testing.simserver.binance import BinanceWire
from fsmtrader_testing.simserver.binance_requests import Params
from fsmtrader_testing.simserver.market import Kline, MarketSpec, decimals_of, plain
from fsmtrader_testing.simserver.state import NewOrder, OrderView, ServerState, WireError, WouldTake

_ID_BASE: Final = 500_000_000_000_000_000
_STOP_TYPES: Final = frozenset(
    {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "STOP_LIMIT"}
)


MEXC_ERRORS: Final[Mapping[str, tuple[int, str, int]]] = {
    "missing_key": (400, "api key required", 400),
    "bad_key": (10072, "Api key info invalid", 400),
    "mandatory": (
        700004,
        "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
        400,
    ),
    "illegal": (
        700008,
        "Illegal characters found in parameter '{name}'; legal range is '{legal}'.",
        400,
    ),
    "not_required": (730002, "Your input param is invalid: '{name}' sent when not required", 400),
    "bad_signature": (700002, "Signature for this request is not valid.", 400),
    "timestamp_ahead": (700003, "Timestamp for this request is outside of the recvWindow.", 400),
    "timestamp_late": (700003, "Timestamp for this request is outside of the recvWindow.", 400),
    "bad_recv_window": (700005, "recvWindow must less than {max_ms}", 400),
    "bad_symbol": (-1121, "Invalid symbol.", 400),
    "bad_interval": (-1121, "Invalid interval.", 400),
}


class MexcWire(BinanceWire):
    """MEXC spot v3 (see the module docstring for what differs from Binance)."""

    name: ClassVar[str] = "mexc"
    key_header: ClassVar[str] = "X-MEXC-APIKEY"
    client_id_re: ClassVar[re.Pattern[str]] = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,32}$")
    errors: ClassVar[Mapping[str, tuple[int, str, int]]] = MEXC_ERRORS
    kline_max: ClassVar[int] = 500
    kline_end_exclusive: ClassVar[bool] = True
    intervals: ClassVar[dict[str, int]] = {
        "1m": 1,
        "5m": 5,
        "15m": 15,
        "30m": 30,
        "60m": 60,
        "4h": 240,
        "1d": 1440,
        "1W": 10080,
    }

    # ------------------------------------------------------------------ numbers, ids

    def num(self, value: Decimal | float | str) -> str:
        return plain(value)

    def wire_order_id(self, sim_id: str) -> str:
        return f"C02__{_ID_BASE + int(sim_id)}"

    def order_id_json(self, wire_id: str) -> Any:
        return wire_id

    def parse_order_id(self, raw: str) -> str:
        return raw

    # ------------------------------------------------------------------ errors

    def rate_limited(self, retry_after_s: float, ban: bool, now_ms: int) -> WireError:
        headers = {"Retry-After": str(max(0, round(retry_after_s)))}
        return self.err(429, "Too Many Requests", 418 if ban else 429, headers)

    def timed_out(self) -> WireError:
        """A gateway timeout: execution status unknown (ccxt: RequestTimeout)."""
        return WireError(
            504,
            "<html><head><title>504 Gateway Time-out</title></head>"
            "<body><center><h1>504 Gateway Time-out</h1></center></body></html>",
        )

    def unsupported_type(self, wire_type: str, state: ServerState) -> WireError:
        if wire_type in _STOP_TYPES and "no_stop_limit" not in state.quirks:
            return self.err(30041, "current order type can not place order")
        return self.err(500, "invalid type")

    def domain_error(
        self, exc: ExchangeError, op: str, spec: MarketSpec | None, side: str | None = None
    ) -> WireError:
        if isinstance(exc, WouldTake):
            return self.err(30041, "Order would immediately match and take.")
        if isinstance(exc, OrderNotFound):
            if op == "cancel":
                return self.err(-2011, "Unknown order sent.")
            return self.err(-2013, "Order does not exist.")
        if isinstance(exc, DuplicateOrder):
            return self.err(603, "Repeated request: duplicate newClientOrderId")
        if isinstance(exc, InsufficientFunds):
            if side == "sell":
                return self.err(30004, "Insufficient position")
            return self.err(10101, "Insufficient balance")
        if isinstance(exc, InvalidOrder) and spec is not None:
            f = spec.filters
            reason = exc.reason
            if reason in ("tick", "price"):
                return self.err(
                    30087, f"Order price exceeds allowed range: tick size is {plain(f.tick_size)}"
                )
            if reason in ("step", "amount"):
                return self.err(
                    10096, f"amount decimal places is too long: step is {plain(f.step_size)}"
                )
            floor = "The minimum transaction volume cannot be less than:"
            if reason == "min_qty":
                return self.err(
                    30002,
                    f"{floor}{plain(f.min_qty)}{f.base}",
                )
            if reason == "min_notional":
                return self.err(
                    30002,
                    f"{floor}{plain(f.min_notional)}{f.quote}",
                )
            if reason == "market_buy":
                return self.err(30041, "current order type can not place order")
        if isinstance(exc, InvalidOrder):
            if exc.reason == "symbol":
                return self.bad_symbol()
            if exc.reason == "client_order_id":
                return self.illegal("newClientOrderId", self.client_id_re.pattern)
            return self.err(730002, f"Your input param is invalid: {exc}")
        return self.err(500, "Internal error", 500)

    # ------------------------------------------------------------------ request parsing

    def parse_new_order(self, params: Params, state: ServerState) -> NewOrder:
        """POST /api/v3/order: LIMIT (good till cancel), IMMEDIATE_OR_CANCEL, LIMIT_MAKER,
        MARKET (sell by quantity)."""
        spec = self.symbol_of(params, state)
        side_raw = params.get("side")
        if not side_raw:
            raise self.mandatory("side")
        if side_raw not in ("BUY", "SELL"):
            raise self.err(700008, "Illegal characters found in parameter 'side'")
        wire_type = params.get("type")
        if not wire_type:
            raise self.mandatory("type")
        if wire_type not in ("LIMIT", "LIMIT_MAKER", "MARKET", "IMMEDIATE_OR_CANCEL"):
            raise self.unsupported_type(wire_type, state)
        quantity = self.decimal_param(params, "quantity", required=False)
        if wire_type == "MARKET":
            if params.get("quoteOrderQty"):
                raise self.err(30041, "current order type can not place order")
            if quantity is None:
                raise self.mandatory("quantity")
            price = None
        else:
            if quantity is None:
                raise self.mandatory("quantity")
            price = self.decimal_param(params, "price", required=True)
        ioc = wire_type in ("IMMEDIATE_OR_CANCEL", "MARKET") or params.get("timeInForce") == "IOC"
        if ioc and wire_type != "MARKET" and state.sim.venue.ioc_returns_open:
            ioc = False  # ccxt issue 25003: the venue keeps it as a resting limit order
        return NewOrder(
            symbol=spec.symbol,
            side="buy" if side_raw == "BUY" else "sell",
            order_type="market" if wire_type == "MARKET" else "limit",
            time_in_force="IOC" if ioc else "GTC",
            quantity=quantity,
            price=price,
            client_order_id=self.client_id_param(params),
            wire_type=wire_type,
            wire_tif="IOC" if wire_type == "IMMEDIATE_OR_CANCEL" else "GTC",
            resp_type="ACK",
        )

    def order_ref(self, params: Params) -> tuple[str | None, str | None]:
        raw_id = params.get("orderId") or None
        cid = params.get("origClientOrderId") or None
        if raw_id is None and cid is None:
            raise self.err(
                700004,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null",
            )
        return raw_id, cid

    # ------------------------------------------------------------------ rendering

    def exchange_info(self, state: ServerState, specs: list[MarketSpec]) -> dict[str, Any]:
        return {
            "timezone": "CST",
            "serverTime": state.now_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(s) for s in specs],
        }

    def symbol_entry(self, spec: MarketSpec) -> dict[str, Any]:
        return self._symbol_info(spec)

    def _symbol_info(self, spec: MarketSpec) -> dict[str, Any]:
        """ccxt reads baseAssetPrecision / quoteAssetPrecision as decimal counts for
        amount / price precision, baseSizePrecision as the minimum amount and
        quoteAmountPrecision as the minimum cost."""
        f = spec.filters
        amount_dp, price_dp = decimals_of(f.step_size), decimals_of(f.tick_size)
        return {
            "symbol": spec.market_id,
            "status": "1",
            "baseAsset": f.base,
            "baseAssetPrecision": amount_dp,
            "quoteAsset": f.quote,
            "quotePrecision": price_dp,
            "quoteAssetPrecision": price_dp,
            "baseCommissionPrecision": amount_dp,
            "quoteCommissionPrecision": price_dp,
            "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "quoteAmountPrecision": plain(f.min_notional),
            "baseSizePrecision": plain(f.min_qty),
            "permissions": ["SPOT"],
            "filters": [],
            "maxQuoteAmount": plain(spec.max_notional),
            "makerCommission": "0.001",
            "takerCommission": "0.001",
            "quoteAmountPrecisionMarket": plain(f.min_notional),
            "maxQuoteAmountMarket": plain(spec.max_notional),
            "fullName": f.base,
            "tradeSideType": 1,
        }

    def status_of(self, view: OrderView) -> str:
        info = view.info
        if info.status == "open":
            return "PARTIALLY_FILLED" if info.filled > 0 else "NEW"
        if info.status == "closed":
            return "FILLED"
        return "PARTIALLY_CANCELED" if info.filled > 0 else "CANCELED"

    def _price(self, view: OrderView) -> str:
        return self.num(0 if view.info.order_type == "market" else view.info.price)

    def _client_id(self, view: OrderView) -> Any:
        return view.meta.client_order_id if view.meta.client_supplied else None

    def order_created(self, view: OrderView, resp_type: str) -> dict[str, Any]:
        """MEXC's create answer: no status, no fills, no client order id."""
        info, meta = view.info, view.meta
        return {
            "symbol": meta.symbol.replace("/", ""),
            "orderId": meta.wire_id,
            "orderListId": -1,
            "price": self._price(view),
            "origQty": self.num(info.amount),
            "type": meta.wire_type,
            "side": meta.side.upper(),
            "transactTime": meta.created_ms,
        }

    def order_queried(self, view: OrderView) -> dict[str, Any]:
        info, meta = view.info, view.meta
        return {
            "symbol": meta.symbol.replace("/", ""),
            "orderId": meta.wire_id,
            "orderListId": "-1",
            "clientOrderId": self._client_id(view),
            "price": self._price(view),
            "origQty": self.num(info.amount),
            "executedQty": self.num(info.filled),
            "cummulativeQuoteQty": self.num(info.cost),
            "status": self.status_of(view),
            "timeInForce": None,
            "type": meta.wire_type,
            "side": meta.side.upper(),
            "stopPrice": None,
            "icebergQty": None,
            "time": meta.created_ms,
            "updateTime": view.update_ms,
            "isWorking": True,
            "origQuoteOrderQty": self.num(0),
        }

    def order_canceled(self, view: OrderView, cancel_client_id: str) -> dict[str, Any]:
        info, meta = view.info, view.meta
        return {
            "symbol": meta.symbol.replace("/", ""),
            "origClientOrderId": self._client_id(view),
            "orderId": meta.wire_id,
            "clientOrderId": self._client_id(view),
            "price": self._price(view),
            "origQty": self.num(info.amount),
            "executedQty": self.num(info.filled),
            "cummulativeQuoteQty": self.num(info.cost),
            "status": self.status_of(view),
            "timeInForce": None,
            "type": meta.wire_type,
            "side": meta.side.upper(),
        }

    def trade(self, t: TradeInfo, view: OrderView | None) -> dict[str, Any]:
        return {
            "symbol": t.symbol.replace("/", ""),
            "id": t.id.lstrip("t"),
            "orderId": view.meta.wire_id if view else t.order_id,
            "orderListId": -1,
            "price": self.num(t.price),
            "qty": self.num(t.amount),
            "quoteQty": self.num(t.price * t.amount),
            "commission": self.num(t.fee),
            "commissionAsset": t.fee_currency,
            "time": t.timestamp,
            "isBuyer": t.side == "buy",
            "isMaker": t.maker,
            "isBestMatch": True,
            "isSelfTrade": False,
            "clientOrderId": self._client_id(view) if view else None,
        }

    def account(self, balances: dict[str, Balance], now_ms: int) -> dict[str, Any]:
        return {
            "makerCommission": None,
            "takerCommission": None,
            "buyerCommission": None,
            "sellerCommission": None,
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "updateTime": None,
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": self.num(b.free), "locked": self.num(b.used)}
                for a, b in sorted(balances.items())
                if b.free or b.used
            ],
            "permissions": ["SPOT"],
        }

    def kline_row(self, k: Kline, interval_ms: int) -> list[Any]:
        open_ms = int(k[0])
        return [
            open_ms,
            self.num(k[1]),
            self.num(k[2]),
            self.num(k[3]),
            self.num(k[4]),
            self.num(k[5]),
            open_ms + interval_ms,
            self.num(k[6]),
        ]

    def ticker_24hr(
        self,
        spec: MarketSpec,
        stats: dict[str, float],
        book: tuple[Decimal, Decimal, Decimal, Decimal],
        last: float,
        now_ms: int,
    ) -> dict[str, Any]:
        out = super().ticker_24hr(spec, stats, book, last, now_ms)
        for key in ("weightedAvgPrice", "lastQty", "firstId", "lastId"):
            out.pop(key, None)
        open_ = Decimal(repr(stats["open"]))
        change = Decimal(repr(last)) - open_
        # MEXC gives the change as a fraction ("0.00400048"), not a percentage
        out["priceChangePercent"] = self.num(change / open_) if open_ else "0"
        out["count"] = None
        return out

    def currencies(self, assets: list[str]) -> list[dict[str, Any]]:
        """GET /api/v3/capital/config/getall: enough for ccxt's fetch_currencies."""
        return [
            {
                "coin": a,
                "name": a,
                "networkList": [
                    {
                        "coin": a,
                        "depositEnable": False,
                        "withdrawEnable": False,
                        "name": a,
                        "netWork": a,
                        "network": a,
                        "withdrawFee": "0",
                        "withdrawMin": "0",
                        "withdrawMax": "0",
                    }
                ],
            }
            for a in assets
        ]
