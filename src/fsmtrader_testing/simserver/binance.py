"""Binance spot v3 wire format: request parsing, error codes and response shapes.

Shapes follow Binance's spot REST API as ccxt 4.5.90's ``binance`` class reads them
(``parse_market``, ``parse_order``, ``parse_trade``, ``handle_errors``). Errors are
Binance's ``{"code": -1013, "msg": "..."}`` with Binance's HTTP statuses, so ccxt's own
error mapping runs for real. :class:`MexcWire` (mexc.py) overrides what MEXC does
differently.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final

from fsmtrader.errors import (
    DuplicateOrder,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
)
from fsmtrader.exchange.types import Balance, TimeInForce, TradeInfo
from fsmtrader_testing.simserver.market import Kline, MarketSpec, fmt8
from fsmtrader_testing.simserver.state import NewOrder, OrderView, ServerState, WireError, WouldTake

_NUMBER: Final = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_NUMBER_RANGE: Final = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
MINUTE: Final = 60_000
Params = dict[str, str]


class BinanceWire:
    """Binance spot: ``X-MBX-APIKEY``, HMAC over query string + body, errors as
    ``{"code", "msg"}``, 8-decimal number strings, integer order ids."""

    name: ClassVar[str] = "binance"
    key_header: ClassVar[str] = "X-MBX-APIKEY"
    client_id_re: ClassVar[re.Pattern[str]] = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
    client_id_range: ClassVar[str] = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
    kline_max: ClassVar[int] = 1000
    kline_end_exclusive: ClassVar[bool] = False
    intervals: ClassVar[dict[str, int]] = {
        "1m": 1,
        "3m": 3,
        "5m": 5,
        "15m": 15,
        "30m": 30,
        "1h": 60,
        "2h": 120,
        "4h": 240,
        "6h": 360,
        "8h": 480,
        "12h": 720,
        "1d": 1440,
        "3d": 4320,
        "1w": 10080,
    }

    # ------------------------------------------------------------------ numbers, ids

    def num(self, value: Decimal | float | str) -> str:
        return fmt8(value)

    def wire_order_id(self, sim_id: str) -> str:
        return sim_id

    def order_id_json(self, wire_id: str) -> Any:
        return int(wire_id)

    def parse_order_id(self, raw: str) -> str:
        """The wire id as the client sent it; Binance's is a long integer."""
        if not raw.isdigit():
            raise self.illegal("orderId", r"^[0-9]{1,20}$")
        return str(int(raw))

    # ------------------------------------------------------------------ errors

    def err(
        self, code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> WireError:
        return WireError(status, {"code": code, "msg": msg}, headers)

    def missing_key(self) -> WireError:
        return self.err(-2014, "API-key format invalid.", 401)

    def bad_key(self) -> WireError:
        return self.err(-2015, "Invalid API-key, IP, or permissions for action.", 401)

    def mandatory(self, name: str) -> WireError:
        return self.err(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )

    def illegal(self, name: str, legal: str) -> WireError:
        return self.err(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
        )

    def not_required(self, name: str) -> WireError:
        return self.err(-1106, f"Parameter '{name}' sent when not required.")

    def bad_signature(self) -> WireError:
        return self.err(-1022, "Signature for this request is not valid.")

    def bad_timestamp(self, ahead: bool) -> WireError:
        if ahead:
            return self.err(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        return self.err(-1021, "Timestamp for this request is outside of the recvWindow.")

    def bad_recv_window(self, max_ms: int) -> WireError:
        return self.err(-1131, f"recvWindow must be less than {max_ms}.")

    def bad_symbol(self) -> WireError:
        return self.err(-1121, "Invalid symbol.")

    def bad_interval(self) -> WireError:
        return self.err(-1120, "Invalid interval.")

    def rate_limited(self, retry_after_s: float, ban: bool, now_ms: int) -> WireError:
        headers = {"Retry-After": str(max(0, round(retry_after_s)))}
        if ban:
            until = now_ms + int(retry_after_s * 1000)
            return self.err(
                -1003,
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
                418,
                headers,
            )
        return self.err(
            -1003,
            "Too much request weight used; current limit is 6000 request weight per 1 "
            "MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
            429,
            headers,
        )

    def timed_out(self) -> WireError:
        """Binance's "send status unknown": the client cannot know whether it happened."""
        return self.err(
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; "
            "execution status unknown.",
            503,
        )

    def unavailable(self) -> WireError:
        """A gateway outage: HTML, not JSON, as a CDN in front of the API answers."""
        return WireError(
            503,
            "<html><head><title>503 Service Temporarily Unavailable</title></head>"
            "<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>",
        )

    def unsupported_type(self, wire_type: str, state: ServerState) -> WireError:
        if wire_type.startswith("STOP_LOSS"):
            return self.err(-1013, "Stop loss orders are not supported for this symbol.")
        if wire_type.startswith("TAKE_PROFIT"):
            return self.err(-1013, "Take profit orders are not supported for this symbol.")
        return self.err(-1116, "Invalid orderType.")

    def domain_error(
        self, exc: ExchangeError, op: str, spec: MarketSpec | None, side: str | None = None
    ) -> WireError:
        """A matching-engine error as Binance says it. ``op`` is create, query or cancel;
        ``side`` (buy/sell) is known for a create."""
        if isinstance(exc, WouldTake):
            return self.err(-2010, "Order would immediately match and take.")
        if isinstance(exc, OrderNotFound):
            if op == "cancel":
                return self.err(-2011, "Unknown order sent.")
            return self.err(-2013, "Order does not exist.")
        if isinstance(exc, DuplicateOrder):
            return self.err(-2010, "Duplicate order sent.")
        if isinstance(exc, InsufficientFunds):
            return self.err(-2010, "Account has insufficient balance for requested action.")
        if isinstance(exc, InvalidOrder):
            reason = exc.reason
            if reason in ("tick", "price"):
                return self.err(-1013, "Filter failure: PRICE_FILTER")
            if reason in ("step", "min_qty", "amount"):
                return self.err(-1013, "Filter failure: LOT_SIZE")
            if reason == "min_notional":
                return self.err(-1013, "Filter failure: NOTIONAL")
            if reason == "symbol":
                return self.bad_symbol()
            if reason == "market_buy":
                return self.err(-1014, "Unsupported order combination.")
            if reason == "client_order_id":
                return self.illegal("newClientOrderId", self.client_id_range)
            return self.err(-1013, f"Invalid order: {exc}")
        return self.err(-1000, "An unknown error occurred while processing the request.", 500)

    # ------------------------------------------------------------------ request parsing

    def symbol_of(self, params: Params, state: ServerState) -> MarketSpec:
        raw = params.get("symbol")
        if not raw:
            raise self.mandatory("symbol")
        spec = state.market_by_id(raw.upper())
        if spec is None:
            raise self.bad_symbol()
        return spec

    def decimal_param(self, params: Params, name: str, *, required: bool) -> Decimal | None:
        raw = params.get(name)
        if raw is None or raw == "":
            if required:
                raise self.mandatory(name)
            return None
        if not _NUMBER.match(raw):
            raise self.illegal(name, _NUMBER_RANGE)
        try:
            return Decimal(raw)
        except InvalidOperation:
            raise self.illegal(name, _NUMBER_RANGE) from None

    def client_id_param(self, params: Params, name: str = "newClientOrderId") -> str | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        if not self.client_id_re.match(raw):
            raise self.illegal(name, self.client_id_range)
        return raw

    def parse_new_order(self, params: Params, state: ServerState) -> NewOrder:
        """POST /api/v3/order: LIMIT (GTC/IOC), LIMIT_MAKER and MARKET (sell by quantity)."""
        spec = self.symbol_of(params, state)
        side_raw = params.get("side")
        if not side_raw:
            raise self.mandatory("side")
        if side_raw not in ("BUY", "SELL"):
            raise self.err(-1117, "Invalid side.")
        wire_type = params.get("type")
        if not wire_type:
            raise self.mandatory("type")
        if wire_type not in ("LIMIT", "LIMIT_MAKER", "MARKET"):
            raise self.unsupported_type(wire_type, state)
        for name in ("stopPrice", "trailingDelta", "icebergQty"):
            if params.get(name):
                raise self.not_required(name)
        tif_raw = params.get("timeInForce")
        if wire_type == "LIMIT":
            if not tif_raw:
                raise self.mandatory("timeInForce")
            if tif_raw not in ("GTC", "IOC"):
                raise self.err(-1115, "Invalid timeInForce.")
        elif tif_raw:
            raise self.not_required("timeInForce")
        quantity = self.decimal_param(params, "quantity", required=False)
        if wire_type == "MARKET":
            if params.get("quoteOrderQty"):
                raise self.err(-1014, "Unsupported order combination.")
            if params.get("price"):
                raise self.not_required("price")
            if quantity is None:
                raise self.err(
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
            price = None
        else:
            if quantity is None:
                raise self.mandatory("quantity")
            price = self.decimal_param(params, "price", required=True)
        resp_type = params.get("newOrderRespType") or "FULL"
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise self.illegal("newOrderRespType", "ACK|RESULT|FULL")
        tif: TimeInForce = "IOC" if wire_type == "MARKET" or tif_raw == "IOC" else "GTC"
        return NewOrder(
            symbol=spec.symbol,
            side="buy" if side_raw == "BUY" else "sell",
            order_type="market" if wire_type == "MARKET" else "limit",
            time_in_force=tif,
            quantity=quantity,
            price=price,
            client_order_id=self.client_id_param(params),
            wire_type=wire_type,
            wire_tif=tif_raw or "GTC",
            resp_type=resp_type,
        )

    def order_ref(self, params: Params) -> tuple[str | None, str | None]:
        """(orderId, origClientOrderId) of a query or cancel; one must be sent."""
        raw_id = params.get("orderId") or None
        cid = params.get("origClientOrderId") or None
        if raw_id is None and cid is None:
            raise self.err(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return (self.parse_order_id(raw_id) if raw_id is not None else None), cid

    def limit_param(self, params: Params, default: int, maximum: int) -> int:
        raw = params.get("limit")
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or int(raw) < 1:
            raise self.illegal("limit", r"^[0-9]{1,20}$")
        return min(int(raw), maximum)

    def int_param(self, params: Params, name: str) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        if not raw.lstrip("-").isdigit():
            raise self.illegal(name, r"^[0-9]{1,20}$")
        return int(raw)

    def symbols_param(self, params: Params, state: ServerState) -> list[MarketSpec] | None:
        """``symbol=X`` or ``symbols=["X","Y"]``; None when neither (all markets)."""
        if params.get("symbol"):
            return [self.symbol_of(params, state)]
        raw = params.get("symbols")
        if not raw:
            return None
        try:
            ids = json.loads(raw)
        except ValueError:
            raise self.illegal(
                "symbols", r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'
            ) from None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise self.illegal(
                "symbols", r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'
            )
        out: list[MarketSpec] = []
        for i in ids:
            spec = state.market_by_id(i)
            if spec is None:
                raise self.bad_symbol()
            out.append(spec)
        return out

    # ------------------------------------------------------------------ rendering

    def exchange_info(self, state: ServerState, specs: list[MarketSpec]) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": state.now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [s.binance_info for s in specs],
        }

    def status_of(self, view: OrderView) -> str:
        info = view.info
        if info.status == "open":
            return "PARTIALLY_FILLED" if info.filled > 0 else "NEW"
        if info.status == "closed":
            return "FILLED"
        if info.status == "rejected":
            return "REJECTED"
        # canceled by the client, or the unfilled rest of an IOC / market order expired
        return "CANCELED" if view.meta.canceled_ms is not None else "EXPIRED"

    def _price(self, view: OrderView) -> str:
        return self.num(0 if view.info.order_type == "market" else view.info.price)

    def _client_id(self, view: OrderView) -> Any:
        return view.meta.client_order_id

    def order_created(self, view: OrderView, resp_type: str) -> dict[str, Any]:
        """The POST /api/v3/order answer in ACK, RESULT or FULL form."""
        info, meta = view.info, view.meta
        out: dict[str, Any] = {
            "symbol": meta.symbol.replace("/", ""),
            "orderId": self.order_id_json(meta.wire_id),
            "orderListId": -1,
            "clientOrderId": self._client_id(view),
            "transactTime": meta.created_ms,
        }
        if resp_type == "ACK":
            return out
        out.update(
            {
                "price": self._price(view),
                "origQty": self.num(info.amount),
                "executedQty": self.num(info.filled),
                "origQuoteOrderQty": self.num(0),
                "cummulativeQuoteQty": self.num(info.cost),
                "status": self.status_of(view),
                "timeInForce": meta.wire_tif,
                "type": meta.wire_type,
                "side": meta.side.upper(),
                "workingTime": meta.created_ms,
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
        )
        if resp_type == "FULL":
            out["fills"] = [
                {
                    "price": self.num(t.price),
                    "qty": self.num(t.amount),
                    "commission": self.num(t.fee),
                    "commissionAsset": t.fee_currency,
                    "tradeId": _trade_id(t),
                }
                for t in info.trades
            ]
        return out

    def order_queried(self, view: OrderView) -> dict[str, Any]:
        """GET /api/v3/order, openOrders and allOrders entries."""
        info, meta = view.info, view.meta
        return {
            "symbol": meta.symbol.replace("/", ""),
            "orderId": self.order_id_json(meta.wire_id),
            "orderListId": -1,
            "clientOrderId": self._client_id(view),
            "price": self._price(view),
            "origQty": self.num(info.amount),
            "executedQty": self.num(info.filled),
            "cummulativeQuoteQty": self.num(info.cost),
            "status": self.status_of(view),
            "timeInForce": meta.wire_tif,
            "type": meta.wire_type,
            "side": meta.side.upper(),
            "stopPrice": self.num(0),
            "icebergQty": self.num(0),
            "time": meta.created_ms,
            "updateTime": view.update_ms,
            "isWorking": True,
            "workingTime": meta.created_ms,
            "origQuoteOrderQty": self.num(0),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def order_canceled(self, view: OrderView, cancel_client_id: str) -> dict[str, Any]:
        """DELETE /api/v3/order: ``clientOrderId`` is the cancel request's own id, the
        order's is ``origClientOrderId`` (as on Binance)."""
        info, meta = view.info, view.meta
        return {
            "symbol": meta.symbol.replace("/", ""),
            "origClientOrderId": meta.client_order_id,
            "orderId": self.order_id_json(meta.wire_id),
            "orderListId": -1,
            "clientOrderId": cancel_client_id,
            "transactTime": meta.canceled_ms,
            "price": self._price(view),
            "origQty": self.num(info.amount),
            "executedQty": self.num(info.filled),
            "origQuoteOrderQty": self.num(0),
            "cummulativeQuoteQty": self.num(info.cost),
            "status": self.status_of(view),
            "timeInForce": meta.wire_tif,
            "type": meta.wire_type,
            "side": meta.side.upper(),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def trade(self, t: TradeInfo, view: OrderView | None) -> dict[str, Any]:
        """One GET /api/v3/myTrades entry."""
        return {
            "symbol": t.symbol.replace("/", ""),
            "id": _trade_id(t),
            "orderId": self.order_id_json(view.meta.wire_id) if view else int(t.order_id),
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
        }

    def account(self, balances: dict[str, Balance], now_ms: int) -> dict[str, Any]:
        """GET /api/v3/account (fees are the simulator's 10 bps)."""
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": self.num("0.001"),
                "taker": self.num("0.001"),
                "buyer": self.num(0),
                "seller": self.num(0),
            },
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": now_ms,
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": self.num(b.free), "locked": self.num(b.used)}
                for a, b in sorted(balances.items())
            ],
            "permissions": ["SPOT"],
            "uid": 1000001,
        }

    def kline_row(self, k: Kline, interval_ms: int) -> list[Any]:
        open_ms = int(k[0])
        half_v, half_q = k[5] / 2, k[6] / 2
        return [
            open_ms,
            self.num(k[1]),
            self.num(k[2]),
            self.num(k[3]),
            self.num(k[4]),
            self.num(k[5]),
            open_ms + interval_ms - 1,
            self.num(k[6]),
            int(k[7]),
            self.num(half_v),
            self.num(half_q),
            "0",
        ]

    def ticker_24hr(
        self,
        spec: MarketSpec,
        stats: dict[str, float],
        book: tuple[Decimal, Decimal, Decimal, Decimal],
        last: float,
        now_ms: int,
    ) -> dict[str, Any]:
        bid, bid_qty, ask, ask_qty = book
        open_ = Decimal(repr(stats["open"]))
        last_d = Decimal(repr(last))
        change = last_d - open_
        pct = (change / open_ * 100).quantize(Decimal("0.001")) if open_ else Decimal(0)
        volume = stats["volume"]
        vwap = stats["quote_volume"] / volume if volume else last
        return {
            "symbol": spec.market_id,
            "priceChange": self.num(change),
            "priceChangePercent": f"{pct:f}",
            "weightedAvgPrice": self.num(vwap),
            "prevClosePrice": self.num(stats["open"]),
            "lastPrice": self.num(last),
            "lastQty": self.num(spec.filters.step_size),
            "bidPrice": self.num(bid),
            "bidQty": self.num(bid_qty),
            "askPrice": self.num(ask),
            "askQty": self.num(ask_qty),
            "openPrice": self.num(stats["open"]),
            "highPrice": self.num(stats["high"]),
            "lowPrice": self.num(stats["low"]),
            "volume": self.num(volume),
            "quoteVolume": self.num(stats["quote_volume"]),
            "openTime": now_ms - 24 * 60 * MINUTE,
            "closeTime": now_ms,
            "firstId": 1,
            "lastId": max(1, int(stats["trades"])),
            "count": int(stats["trades"]),
        }

    def book_ticker(
        self, spec: MarketSpec, book: tuple[Decimal, Decimal, Decimal, Decimal]
    ) -> dict[str, Any]:
        bid, bid_qty, ask, ask_qty = book
        return {
            "symbol": spec.market_id,
            "bidPrice": self.num(bid),
            "bidQty": self.num(bid_qty),
            "askPrice": self.num(ask),
            "askQty": self.num(ask_qty),
        }

    def price_ticker(self, spec: MarketSpec, last: float) -> dict[str, Any]:
        return {"symbol": spec.market_id, "price": self.num(last)}

    def depth(
        self,
        update_id: int,
        bids: list[tuple[Decimal, Decimal]],
        asks: list[tuple[Decimal, Decimal]],
    ) -> dict[str, Any]:
        return {
            "lastUpdateId": update_id,
            "bids": [[self.num(p), self.num(q)] for p, q in bids],
            "asks": [[self.num(p), self.num(q)] for p, q in asks],
        }

    def currencies(self, assets: list[str]) -> list[dict[str, Any]]:
        """GET /sapi/v1/capital/config/getall: enough for ccxt's fetch_currencies."""
        return [
            {
                "coin": a,
                "name": a,
                "depositAllEnable": False,
                "withdrawAllEnable": False,
                "free": "0",
                "locked": "0",
                "freeze": "0",
                "withdrawing": "0",
                "ipoing": "0",
                "ipoable": "0",
                "storage": "0",
                "isLegalMoney": False,
                "trading": True,
                "networkList": [
                    {
                        "network": a,
                        "coin": a,
                        "withdrawIntegerMultiple": "0.00000001",
                        "isDefault": True,
                        "depositEnable": False,
                        "withdrawEnable": False,
                        "depositDesc": "simulated exchange",
                        "withdrawDesc": "simulated exchange",
                        "name": a,
                        "withdrawFee": "0",
                        "withdrawMin": "0",
                        "withdrawMax": "0",
                        "minConfirm": 1,
                        "unLockConfirm": 1,
                    }
                ],
            }
            for a in assets
        ]


def _trade_id(t: TradeInfo) -> int:
    return int(t.id.lstrip("t"))
