"""The router's ledger: every order record, the indexes over them (open per symbol, due
look-ups), the counters, and the one way an order moves: through the order table, each
move published. The steps that talk to the exchange build on it (booking, lookups, router).
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypedDict

from fsmtrader.audit import EventBus
from fsmtrader.clock import Clock
from fsmtrader.errors import ExchangeError
from fsmtrader.exchange.types import Exchange, OrderInfo, TradeInfo
from fsmtrader.markets import MarketFilters
from fsmtrader.orders.intent import DEFAULT_CLIENT_ID_LEN, Intent
from fsmtrader.orders.states import TERMINAL, OrderState, check_move
from fsmtrader.portfolio import Ghost, Portfolio
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import FillRecord, OrderEvent, OrderExtra

log = logging.getLogger("fsmtrader.router")
S = OrderState
_NO_EXTRA: OrderExtra = {}
# A step that raised something other than an exchange error (a fill the books cannot
# take, a bug) is tried again this much later: not forgotten, and not spinning.
FAILED_STEP_RETRY_MS = 60_000


class RouterCounters(TypedDict):
    """The router's counters as saved with the engine's."""

    final_states: dict[str, int]
    rejections: dict[str, int]
    ghost_reasons: dict[str, int]
    duplicate_intents: int
    races: int


@dataclass(frozen=True, slots=True)
class RouterConfig:
    max_retries: int = 3
    backoff_ms: int = 400
    slippage_guard_bps: Decimal = Decimal(20)
    fee_rate: Decimal = Decimal("0.001")  # fee rate that sizes buy reservations
    client_id_len: int = DEFAULT_CLIENT_ID_LEN
    # How long after a send the venue may not show the order in any look-up (its
    # profile's ``visibility_window_ms``; 5 s is Binance's): inside it, "not found" proves
    # nothing. config_wiring sets the venue's, or the [exchange] setting.
    visibility_window_ms: int = 5_000
    fee_rates: Mapping[str, Decimal] = field(default_factory=dict)  # per symbol (its venue's)

    def fee_rate_for(self, symbol: str) -> Decimal:
        return self.fee_rates.get(symbol, self.fee_rate)


class OrderLedger:
    """Records, indexes and counters of the router, and how a record moves."""

    def __init__(
        self,
        exchange: Exchange,
        portfolio: Portfolio,
        filters: dict[str, MarketFilters],
        clock: Clock,
        bus: EventBus,
        config: RouterConfig,
    ) -> None:
        self.exchange = exchange
        self.portfolio = portfolio
        self.filters = filters
        self.clock = clock
        self.bus = bus
        self.cfg = config
        self.records: dict[str, OrderRecord] = {}
        self.final_states: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.ghost_reasons: Counter[str] = Counter()
        self.duplicate_intents = 0
        self.races = 0
        self._due: list[tuple[int, str]] = []  # (due_ms, intent_id); stale entries skipped
        self._open: dict[str, set[str]] = {}  # symbol -> intent_ids not done yet
        self.dirty: set[str] = set()  # intent_ids changed since the store last saved them
        self.fills: list[FillRecord] = []  # fills booked since then (when keep_fills)
        self.keep_fills = False  # set when a store saves them
        # Called before every exchange call that can change the exchange (write-ahead):
        # the engine commits everything pending, so the intent is durable before it is sent.
        self.before_send: Callable[[], None] = lambda: None
        self.on_race: Callable[[OrderRecord], None] = lambda rec: None
        self.on_fatal: Callable[[str], None] = lambda why: None  # the engine halts

    def next_due(self) -> int | None:
        """When the router may next have work (checked after every bar, so it only peeks:
        a stale entry costs one early wake, in which ``run_due`` discards it)."""
        return self._due[0][0] if self._due else None

    def _next_valid_due(self) -> int | None:
        due = self._due
        while due:
            at, iid = due[0]
            if self.records[iid].due_ms == at:
                return at
            heapq.heappop(due)
        return None

    def restore(self, records: list[OrderRecord]) -> None:
        """Take back saved intents (a restart). Open ones are resolved by ``recover``."""
        self.records = {r.intent.intent_id: r for r in records}
        self._open = {}
        for r in records:
            if not r.done:
                self._open.setdefault(r.intent.symbol, set()).add(r.intent.intent_id)
        self._due = [(r.due_ms, iid) for iid, r in self.records.items() if r.due_ms is not None]
        heapq.heapify(self._due)

    def mark_saved(self) -> None:
        """The store has every change and fill up to now."""
        self.dirty.clear()
        self.fills.clear()

    def counters(self) -> RouterCounters:
        return {
            "final_states": dict(self.final_states),
            "rejections": dict(self.rejections),
            "ghost_reasons": dict(self.ghost_reasons),
            "duplicate_intents": self.duplicate_intents,
            "races": self.races,
        }

    def restore_counters(self, saved: RouterCounters) -> None:
        self.final_states.update(saved.get("final_states", {}))
        self.rejections.update(saved.get("rejections", {}))
        self.ghost_reasons.update(saved.get("ghost_reasons", {}))
        self.duplicate_intents = int(saved.get("duplicate_intents", 0))
        self.races = int(saved.get("races", 0))

    def open_intents(self, symbol: str, side: str | None = None) -> list[OrderRecord]:
        """Intents of ``symbol`` not over yet (cheap: kept as an index; the fast driver
        and the slot count ask on every stepped candle, mostly of a symbol with none)."""
        ids = self._open.get(symbol)
        if not ids:
            return []
        records = self.records
        if side is None:
            return [records[i] for i in ids]
        return [r for r in (records[i] for i in ids) if r.intent.side == side]

    def open_records(self) -> list[OrderRecord]:
        return [r for r in self.records.values() if not r.done]

    def _set_due(self, rec: OrderRecord, at_ms: int) -> None:
        self.dirty.add(rec.intent.intent_id)
        rec.due_ms = at_ms
        heapq.heappush(self._due, (at_ms, rec.intent.intent_id))

    def _backoff(self, attempt: int) -> int:
        return int(self.cfg.backoff_ms * (2 ** max(attempt - 1, 0)))

    def _ghost(self, rec: OrderRecord, reason: str) -> bool:
        self._move(rec, S.FAILED_FINAL, f"ghost:{reason}")
        self._record_ghost(rec, reason)
        return False

    def _record_ghost(self, rec: OrderRecord, reason: str) -> None:
        it = rec.intent
        self.ghost_reasons[reason] += 1
        self.portfolio.add_ghost(
            Ghost(self.clock.now_ms(), it.symbol, it.side, it.intent_id, it.decision_id, reason)
        )

    def _fetch_quiet(self, rec: OrderRecord, by_client_id: bool = False) -> OrderInfo | None:
        try:
            if by_client_id or not rec.order_id:
                return self.exchange.fetch_order_by_client_id(
                    rec.client_order_id, rec.intent.symbol
                )
            return self.exchange.fetch_order(rec.order_id, rec.intent.symbol)
        except ExchangeError as exc:
            log.warning("fetch %s failed: %s", rec.client_order_id, exc)
            return None

    def _trades_of(self, rec: OrderRecord, info: OrderInfo) -> list[TradeInfo]:
        """Venues that report a fill total without the fills: read them by the order's id
        (Binance's trades carry no clientOrderId). Another order's fill is never taken."""
        if not info.id:
            return list(info.trades)
        try:
            mine = self.exchange.fetch_order_trades(info.id, rec.intent.symbol)
        except ExchangeError as exc:
            log.warning("trades of %s failed: %s", rec.client_order_id, exc)
            return list(info.trades)
        return [t for t in mine if t.order_id == info.id]

    def _move(
        self, rec: OrderRecord, dst: OrderState, reason: str, extra: OrderExtra | None = None
    ) -> None:
        check_move(rec.state, dst)
        self.dirty.add(rec.intent.intent_id)
        if dst in TERMINAL:
            self._open.get(rec.intent.symbol, set()).discard(rec.intent.intent_id)
        src = rec.state
        rec.state = dst
        if dst is S.FAILED_FINAL:
            self.final_states[dst.value] += 1
        elif dst is S.RECONCILED:  # count how it ended: FILLED or CANCELED
            self.final_states[src.value] += 1
        self._emit(rec, dst, reason, src=src, extra=extra)

    def _emit(
        self,
        rec: OrderRecord,
        state: OrderState,
        reason: str,
        src: OrderState | None = None,
        extra: OrderExtra | None = None,
    ) -> None:
        it = rec.intent
        record: OrderEvent = {
            "kind": "order",
            "ts": self.clock.now_ms(),
            "intent_id": it.intent_id,
            "decision_id": it.decision_id,
            "client_order_id": rec.client_order_id,
            "symbol": it.symbol,
            "side": it.side,
            "state": state._value_,  # (the plain str, without the enum descriptor's call)
            "from": src._value_ if src is not None else None,
            "attempt": rec.attempts,
            "order_id": rec.order_id,
            "filled": str(rec.filled),
            "avg_price": None if rec.avg_price is None else str(rec.avg_price),
            "fee": str(rec.fee_quote),
            "reason": reason,
            "mode": it.mode,
            **(extra or _NO_EXTRA),
        }
        self.bus.publish(record)


def intent_terms(it: Intent) -> OrderExtra:
    """An intent's terms, as its first order event carries them."""
    f = it.to_record()
    terms: OrderExtra = {
        "amount": f["amount"],
        "limit_price": f["limit_price"],
        "ref_price": f["ref_price"],
        "max_slippage_bps": f["max_slippage_bps"],
        "time_in_force": f["time_in_force"],
        "leg": f["leg"],
        "created_ms": f["created_ms"],
        "budget": f["budget"],
    }
    if "stop_price" in f:
        terms["stop_price"] = f["stop_price"]
    return terms
