"""Binance spot v3 wire format: response shapes, on top of its request parsing
(binance_requests.py) and error codes (binance_errors.py).

Shapes follow Binance's spot REST API as ccxt 4.5.90's ``binance`` class reads them
(``parse_market``, ``parse_order``, ``parse_trade``, ``handle_errors``). Errors are
Binance's ``{"code": -1013, "msg": "..."}`` with Binance's HTTP statuses, so ccxt's own
error mapping runs for real. :class:`MexcWire` (mexc.py) overrides what MEXC does
differently.
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from typing import Any, ClassVar, Final

from fsmtrader.exchange.ccxt_adapter.market_filters import raw_limits
from fsmtrader.exchange.types import Balance, TradeInfo
from fsmtrader.markets import MarketFilters
from fsmtrader_testing.simserver.binance_requests import BinanceRequests
from fsmtrader_testing.simserver.market import Kline, MarketSpec, fmt8
from fsmtrader_testing.simserver.state import OrderView, ServerState

MINUTE: Final = 60_000
# The grid comes from the spec itself; an entry's limits add to it.
_GRID_FIELDS: Final = frozenset({"tick_size", "step_size"})


class BinanceWire(BinanceRequests):
    """Binance spot: ``X-MBX-APIKEY``, HMAC over query string + body, errors as
    ``{"code", "msg"}``, 8-decimal number strings, integer order ids."""

    name: ClassVar[str] = "binance"
    key_header: ClassVar[str] = "X-MBX-APIKEY"
    client_id_re: ClassVar[re.Pattern[str]] = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
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

    # ------------------------------------------------------------------ rendering

    def symbol_entry(self, spec: MarketSpec) -> dict[str, Any]:
        """The raw exchangeInfo entry of one market, as this flavour renders it."""
        return spec.binance_info

    def enforced_filters(self, spec: MarketSpec) -> MarketFilters:
        """``spec``'s filters plus every limit its rendered entry states (max qty, price
        band, percent price, max notional, market lot), read the way the adapter reads
        them, so the matching engine refuses exactly what the venue would."""
        limits = raw_limits(self.symbol_entry(spec), spec.symbol)
        extra = {k: v for k, v in limits.items() if k not in _GRID_FIELDS}
        return replace(spec.filters, **extra)

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
        if info.stop_price is not None:
            out["stopPrice"] = self.num(info.stop_price)
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
            "stopPrice": self.num(info.stop_price or 0),
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
