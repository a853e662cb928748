"""Venue-independent server state: the matching engine, the order book-keeping the wire
needs on top of it (wire ids, order types as sent, who cancelled), faults and quirks.

The flavours (Binance, MEXC) only parse requests and render answers; every decision
about an order is taken here, once, so both wire formats tell the same story.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

from fsmtrader.clock import Clock
from fsmtrader.errors import (
    DuplicateOrder,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
)
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.exchange.types import OrderInfo, OrderType, TimeInForce, TradeInfo
from fsmtrader.markets import Side
from fsmtrader_testing.simserver.market import MarketSpec, PriceDriver

if TYPE_CHECKING:
    from fsmtrader_testing.simserver.chaos import RandomFaults

Flavour = Literal["binance", "mexc"]
QUIRKS: Final = frozenset({"order_not_found_after_create", "ioc_returns_open", "no_stop_limit"})
FAULT_KINDS: Final = frozenset(
    {
        "rate_limit",
        "ban",
        "timeout_before",
        "timeout_after",
        "unavailable",
        "error",
        "reject",
        "lag_spike",  # POST order: the new order is not found for spike_ms
        "ioc_open",  # POST order (MEXC): an IOC rests and is reported open
        "cancel_race",  # DELETE order: it fills in the instant of the cancel
    }
)
#: Fault kinds that change what the request does instead of its answer; the fault
#: middleware puts the kind in the request under ``routing.EFFECT`` for the handler.
EFFECTS: Final = frozenset({"lag_spike", "ioc_open", "cancel_race"})
REJECT_REASONS: Final = frozenset(
    {"tick", "step", "min_qty", "min_notional", "insufficient_funds", "duplicate", "not_found"}
)


class WireError(Exception):
    """An answer that is an error on the wire: HTTP status, JSON (or text) body, headers."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any] | str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


class WouldTake(InvalidOrder):
    """A LIMIT_MAKER (post-only) order would have matched at once."""

    def __init__(self) -> None:
        super().__init__("post-only order would take liquidity", reason="post_only")


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A parsed order request, in the matching engine's terms plus what the wire echoes."""

    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal | None
    client_order_id: str | None
    wire_type: str
    wire_tif: str
    resp_type: str = "FULL"
    hidden_ms: int = 0  # a lag spike: the order is not found for this long
    stop_price: Decimal | None = None  # STOP_LOSS_LIMIT (Binance): its trigger


@dataclass(slots=True)
class WireOrder:
    """What the wire knows about an order beyond the matching engine's record."""

    sim_id: str
    wire_id: str
    symbol: str
    client_order_id: str
    client_supplied: bool
    wire_type: str
    wire_tif: str
    side: Side
    created_ms: int
    canceled_ms: int | None = None


@dataclass(slots=True)
class OrderView:
    """One order as a flavour renders it: our book-keeping plus the engine's state."""

    meta: WireOrder
    info: OrderInfo

    @property
    def update_ms(self) -> int:
        times = [self.meta.created_ms]
        times += [t.timestamp for t in self.info.trades]
        if self.meta.canceled_ms is not None:
            times.append(self.meta.canceled_ms)
        return max(times)


@dataclass(slots=True)
class Fault:
    """One injected failure for one endpoint ("POST /api/v3/order", or "*" for any)."""

    endpoint: str
    kind: str
    times: int = 1
    retry_after_s: float = 1.0
    delay_s: float = 0.0
    status: int = 500
    code: int | None = None
    msg: str | None = None
    reason: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Validate a ``POST /__sim/fault`` body; ValueError names the bad field."""
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        unknown = set(data) - {
            "endpoint",
            "kind",
            "times",
            "retry_after_s",
            "delay_s",
            "status",
            "code",
            "msg",
            "reason",
        }
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        endpoint = data.get("endpoint")
        if not isinstance(endpoint, str) or not (endpoint == "*" or " /" in endpoint):
            raise ValueError('endpoint must be "METHOD /path" or "*"')
        method, _, path = endpoint.partition(" ")
        if endpoint != "*":
            endpoint = f"{method.upper()} {path}"
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(sorted(FAULT_KINDS))}")
        times = data.get("times", 1)
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise ValueError("times must be an integer >= 1")
        fault = cls(endpoint=endpoint, kind=kind, times=times)
        for name in ("retry_after_s", "delay_s"):
            if name in data:
                value = data[name]
                if (
                    not isinstance(value, int | float)
                    or isinstance(value, bool)
                    or not math.isfinite(value)
                    or not 0 <= value <= 3600
                ):
                    raise ValueError(f"{name} must be a number of seconds in [0, 3600]")
                setattr(fault, name, float(value))
        if "status" in data:
            status = data["status"]
            if not isinstance(status, int) or not 400 <= status <= 599:
                raise ValueError("status must be an HTTP error status (400..599)")
            fault.status = status
        if "code" in data:
            if not isinstance(data["code"], int):
                raise ValueError("code must be an integer")
            fault.code = data["code"]
        if "msg" in data:
            if not isinstance(data["msg"], str):
                raise ValueError("msg must be a string")
            fault.msg = data["msg"]
        if kind == "reject":
            reason = data.get("reason")
            if reason not in REJECT_REASONS:
                raise ValueError(f"reason must be one of {', '.join(sorted(REJECT_REASONS))}")
            fault.reason = reason
        return fault

    def domain_error(self) -> ExchangeError:
        """The matching-engine error a ``reject`` fault stands for."""
        reason = self.reason or "tick"
        if reason == "insufficient_funds":
            return InsufficientFunds("injected: insufficient funds")
        if reason == "duplicate":
            return DuplicateOrder("injected: duplicate client order id")
        if reason == "not_found":
            return OrderNotFound("injected: order not found")
        return InvalidOrder(f"injected filter failure: {reason}", reason=reason)


@dataclass(slots=True)
class ServerState:
    """Everything one server instance owns."""

    flavour: Flavour
    api_key: str
    api_secret: str
    sim: SimExchange
    driver: PriceDriver
    clock: Clock
    markets: dict[str, MarketSpec]
    quirks: frozenset[str]
    recv_window_ms_max: int
    not_found_window_ms: int
    orders: dict[str, WireOrder] = field(default_factory=dict)  # by wire id
    by_sim_id: dict[str, WireOrder] = field(default_factory=dict)
    by_client_id: dict[str, list[WireOrder]] = field(default_factory=dict)  # oldest first
    hidden_until: dict[str, int] = field(default_factory=dict)  # lag spikes, by wire id
    faults: list[Fault] = field(default_factory=list)
    chaos: RandomFaults | None = None
    weight_minute: int = 0
    weight_used: int = 0
    by_id: dict[str, MarketSpec] = field(init=False)
    _auto_ids: Iterator[int] = field(init=False, default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.by_id = {m.market_id: m for m in self.markets.values()}

    # ------------------------------------------------------------------ lookups

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def market_by_id(self, market_id: str | None) -> MarketSpec | None:
        return self.by_id.get(market_id or "")

    def add_weight(self, weight: int) -> int:
        """Request weight used in the current wall minute (Binance's X-MBX-USED-WEIGHT)."""
        minute = self.now_ms() // 60_000
        if minute != self.weight_minute:
            self.weight_minute, self.weight_used = minute, 0
        self.weight_used += weight
        return self.weight_used

    # ------------------------------------------------------------------ faults

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first queued fault that matches this request, else
        draw a random one (at the server's fault rate)."""
        key = f"{method.upper()} {path}"
        for fault in self.faults:
            if fault.endpoint in (key, "*"):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return self.chaos.draw(method.upper(), path) if self.chaos is not None else None

    # ------------------------------------------------------------------ orders

    def place(self, new: NewOrder, wire_id_for: Callable[[str], str]) -> OrderView:
        """Create an order in the matching engine. ``wire_id_for(sim_id)`` makes the id
        the client sees. Domain errors (InvalidOrder, InsufficientFunds, DuplicateOrder)
        propagate for the flavour to render."""
        if new.wire_type == "LIMIT_MAKER":
            if new.price is None:  # the flavours' parsers require it: a bug, even under -O
                raise ValueError("LIMIT_MAKER order without a price")
            bid, _, ask, _ = self.sim.order_book_top(new.symbol)
            if (new.side == "buy" and new.price >= ask) or (
                new.side == "sell" and new.price <= bid
            ):
                raise WouldTake()
        supplied = new.client_order_id is not None
        cid = new.client_order_id if new.client_order_id is not None else self._auto_cid()
        args = (new.symbol, new.side, new.order_type, new.quantity, new.price)
        if new.stop_price is None:
            info = self.sim.create_order(*args, new.time_in_force, cid)
        else:
            info = self.sim.create_order(*args, new.time_in_force, cid, new.stop_price)
        meta = WireOrder(
            sim_id=info.id,
            wire_id=wire_id_for(info.id),
            symbol=new.symbol,
            client_order_id=cid,
            client_supplied=supplied,
            wire_type=new.wire_type,
            wire_tif=new.wire_tif,
            side=new.side,
            created_ms=info.timestamp,
        )
        self.orders[meta.wire_id] = meta
        self.by_sim_id[meta.sim_id] = meta
        self.by_client_id.setdefault(cid, []).append(meta)
        if new.hidden_ms > 0:
            self.hidden_until[meta.wire_id] = self.now_ms() + new.hidden_ms
        return OrderView(meta, info)

    def shown(self, meta: WireOrder) -> bool:
        """Whether a lag spike still hides this order (the venue's own lag is the
        matching engine's: its look-ups apply it)."""
        until = self.hidden_until.get(meta.wire_id)
        if until is None:
            return True
        if self.now_ms() >= until:
            del self.hidden_until[meta.wire_id]
            return True
        return False

    def query(self, symbol: str, wire_id: str | None, client_order_id: str | None) -> OrderView:
        """An order by wire id or by client id (the most recent visible order with it,
        as Binance answers ``origClientOrderId``); OrderNotFound inside the venue's
        visibility lag (MEXC's "not found after create") or a lag spike."""
        meta: WireOrder | None = None
        if wire_id is not None:
            meta = self.orders.get(wire_id)
        elif client_order_id is not None:
            with contextlib.suppress(OrderNotFound):
                info = self.sim.fetch_order_by_client_id(client_order_id, symbol)
                meta = self.by_sim_id.get(info.id)
        if meta is None or meta.symbol != symbol or not self.shown(meta):
            raise OrderNotFound("order does not exist")
        return OrderView(meta, self.sim.fetch_order(meta.sim_id, symbol))

    def cancel(
        self, symbol: str, wire_id: str | None, client_order_id: str | None, *, race: bool = False
    ) -> OrderView:
        """Cancel an open order (by client id: the most recent order with it). An order
        that is already final, or that fills in the same instant (the race; ``race``
        makes it happen), is an unknown order to the cancel, as on Binance."""
        meta: WireOrder | None = None
        if wire_id is not None:
            meta = self.orders.get(wire_id)
        elif client_order_id is not None:
            same = [m for m in self.by_client_id.get(client_order_id, ()) if m.symbol == symbol]
            meta = same[-1] if same else None
        if meta is None or meta.symbol != symbol:
            raise OrderNotFound("order does not exist")
        if self.sim.venue.cancel_sees_lag and not self.shown(meta):
            raise OrderNotFound("order does not exist (yet)")
        before = self.sim.peek(meta.sim_id, symbol)
        if before.status != "open":
            raise OrderNotFound("order is no longer open")
        if race and before.order_type == "limit":
            self.sim.race_fill_on_cancel(meta.sim_id)
        info = self.sim.cancel_order(meta.sim_id, symbol)
        if info.status != "canceled":
            raise OrderNotFound("order filled before the cancel")
        meta.canceled_ms = self.now_ms()
        return OrderView(meta, info)

    def open_orders(self, symbol: str | None) -> list[OrderView]:
        views = [OrderView(self.by_sim_id[i.id], i) for i in self.sim.fetch_open_orders(symbol)]
        return [v for v in views if self.shown(v.meta)]

    def all_orders(self, symbol: str) -> list[OrderView]:
        """Every visible order of ``symbol``, oldest first (allOrders pages these)."""
        views = [
            OrderView(self.by_sim_id[i.id], i)
            for i in self.sim.fetch_orders(symbol, 0)
            if i.id in self.by_sim_id
        ]
        return [v for v in views if self.shown(v.meta)]

    def trades(self, symbol: str) -> list[TradeInfo]:
        """Every visible fill of ``symbol``, oldest first (myTrades pages these)."""
        return [
            t
            for t in self.sim.fetch_my_trades(symbol)
            if t.order_id in self.by_sim_id and self.shown(self.by_sim_id[t.order_id])
        ]

    def view_of(self, sim_id: str, symbol: str) -> OrderView:
        return OrderView(self.by_sim_id[sim_id], self.sim.peek(sim_id, symbol))

    def _auto_cid(self) -> str:
        """A client id for an order the client sent without one (Binance makes one up)."""
        while True:
            cid = f"sim{next(self._auto_ids):020d}"
            if cid not in self.by_client_id:
                return cid

    # ------------------------------------------------------------------ test oracle

    def snapshot(self) -> dict[str, Any]:
        """Orders by client id, balances and prices, as plain JSON (for test oracles)."""
        orders: dict[str, Any] = {}
        for cid, info in self.sim.orders_by_client_id().items():
            meta = self.by_sim_id.get(info.id)
            orders[cid] = {
                "id": meta.wire_id if meta else info.id,
                "symbol": info.symbol,
                "side": info.side,
                "type": meta.wire_type if meta else info.order_type,
                "status": info.status,
                "price": str(info.price),
                "amount": str(info.amount),
                "filled": str(info.filled),
                "cost": str(info.cost),
                "fee": str(info.fee),
                "timestamp": info.timestamp,
            }
        return {
            "flavour": self.flavour,
            "server_time": self.now_ms(),
            "orders": orders,
            "balances": {
                a: {"free": str(b.free), "used": str(b.used)}
                for a, b in self.sim.fetch_balance().items()
            },
            "prices": {s: self.driver.last_price(s) for s in self.markets},
            "counters": self.sim.counters.as_dict(),
            "all_orders": [
                {"id": m.wire_id, "client_order_id": m.client_order_id, "symbol": m.symbol}
                for m in self.orders.values()
            ],
            "venue": self.sim.venue.identity(),
            "quirks": sorted(self.quirks),
            "faults_pending": len(self.faults),
            "fault_rate": self.chaos.rate if self.chaos is not None else 0.0,
            "faults_injected": dict(sorted(self.chaos.injected.items())) if self.chaos else {},
        }
