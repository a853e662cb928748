"""The order router: the only code that places, cancels or looks up orders.

One intent, one clientOrderId, at most one order on the exchange. Budget is reserved
before the exchange call and released on every path that does not fill. A lost answer
makes the order UNKNOWN and it is found again by its clientOrderId; it is never re-sent
under a new id.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypedDict

from fsmtrader import failpoints
from fsmtrader.audit import EventBus
from fsmtrader.clock import Clock
from fsmtrader.errors import (
    AuthenticationFailed,
    DuplicateOrder,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    OrderNotFound,
    RateLimited,
)
from fsmtrader.exchange.types import Exchange, OrderInfo, TradeInfo
from fsmtrader.markets import MarketFilters, ceil_to, preflight, q_price
from fsmtrader.orders.intent import Intent, client_order_id
from fsmtrader.orders.states import TERMINAL, OrderState, check_move
from fsmtrader.portfolio import Ghost, Portfolio, split_fee
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import FillRecord, OrderEvent, OrderExtra

log = logging.getLogger("fsmtrader.router")
ZERO = Decimal(0)
BPS = Decimal(10_000)
S = OrderState
_NO_EXTRA: OrderExtra = {}


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
    fee_rate: Decimal = Decimal("0.001")  # fee fraction reserved on top of a buy's cost
    client_id_len: int = 32
    unknown_grace_ms: int = 0  # how long "not found" may mean "not visible yet"
    fee_rates: Mapping[str, Decimal] = field(default_factory=dict)  # per symbol (its venue's)

    def fee_rate_for(self, symbol: str) -> Decimal:
        return self.fee_rates.get(symbol, self.fee_rate)


class OrderRouter:
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

    # --- public API ---------------------------------------------------------------------
    def submit(self, intent: Intent, live_ask: Decimal | None = None) -> OrderRecord:
        """Reserve, check and send. The same intent submitted again returns its record.

        ``live_ask`` is the ask the caller just priced a buy with; without it the router
        asks the exchange (one more request) for its slippage guard."""
        existing = self.records.get(intent.intent_id)
        if existing is not None:
            self.duplicate_intents += 1
            return existing
        rec = OrderRecord(intent, client_order_id(intent.intent_id, self.cfg.client_id_len))
        self.records[intent.intent_id] = rec
        self._open.setdefault(intent.symbol, set()).add(intent.intent_id)
        self._emit(rec, S.NEW, intent.reason, extra=_terms(intent))
        if not self._prepare(rec, live_ask):
            return rec
        self._send(rec)
        return rec

    def refresh(self, intent_id: str) -> OrderRecord:
        """Fetch a live order's state from the exchange and book any new fills."""
        rec = self.records[intent_id]
        if rec.state in (S.SENT, S.PARTIAL):
            try:
                info = self.exchange.fetch_order(rec.order_id, rec.intent.symbol)
            except ExchangeError as exc:
                log.warning("refresh %s failed: %s", rec.client_order_id, exc)
                return rec
            self._absorb(rec, info)
        elif rec.state is S.UNKNOWN:
            self._resolve(rec)
        return rec

    def cancel(self, intent_id: str) -> OrderRecord:
        """Cancel a live order. If it filled meanwhile, the fill is booked, not lost."""
        rec = self.records[intent_id]
        if not rec.done:
            rec.cancel_requested = True
            self.dirty.add(intent_id)
        if rec.state is S.UNKNOWN:
            self._resolve(rec)
        if rec.state in (S.RETRY, S.ERROR):
            self._abandon_unsent(rec)
            return rec
        if rec.state not in (S.SENT, S.PARTIAL):
            return rec
        info: OrderInfo | None
        self.before_send()
        try:
            info = self.exchange.cancel_order(rec.order_id, rec.intent.symbol)
        except OrderNotFound:
            info = self._fetch_quiet(rec)
        except Exception as exc:
            # The cancel may not have happened: keep asking until the order is over.
            log.warning("cancel %s failed: %s", rec.client_order_id, exc)
            self._set_due(rec, self.clock.now_ms() + self._backoff(max(rec.attempts, 1)))
            if not isinstance(exc, ExchangeError):
                raise
            return rec
        if info is None:
            self._set_due(rec, self.clock.now_ms() + self._backoff(max(rec.attempts, 1)))
        else:
            if info.status == "closed" and rec.state in (S.SENT, S.PARTIAL):
                # It filled while we were cancelling: the fill is booked, and the race is
                # reported (a halt condition when configured).
                self.races += 1
                self.on_race(rec)
                self.bus.publish(
                    {
                        "kind": "alert",
                        "ts": self.clock.now_ms(),
                        "alert": "order_race",
                        "symbol": rec.intent.symbol,
                        "intent_id": rec.intent.intent_id,
                        "decision_id": rec.intent.decision_id,
                        "detail": "filled while cancelling",
                    }
                )
            self._absorb(rec, info)
        return rec

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

    def run_due(self, now_ms: int) -> list[OrderRecord]:
        """Run retries and UNKNOWN look-ups that are due; returns the records touched."""
        touched = []
        while True:
            at = self._next_valid_due()
            if at is None or at > now_ms:
                break
            _, iid = heapq.heappop(self._due)
            rec = self.records[iid]
            rec.due_ms = None
            if rec.state is S.RETRY and rec.cancel_requested:
                self._abandon_unsent(rec)
            elif rec.state is S.RETRY:
                self._send(rec)
            elif rec.state is S.UNKNOWN:
                self._resolve(rec)
            elif rec.live and rec.cancel_requested:
                self.cancel(iid)  # an earlier cancel failed: try again
            elif rec.live:
                self.refresh(iid)  # fills the venue reported but we could not read yet
            touched.append(rec)
        return touched

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

    def recover(self) -> list[OrderRecord]:
        """After a restart: every intent whose outcome is not known for sure is looked up
        on the exchange by its clientOrderId; live orders are refreshed. Returns them."""
        touched = []
        for rec in self.open_records():
            if rec.state in (S.RESERVED, S.RETRY, S.ERROR):
                if rec.state is S.ERROR:
                    self._move(rec, S.RETRY, "restart")
                if rec.attempts == 0 and rec.state is S.RESERVED:
                    rec.attempts = 1  # the send may have happened: treat it as an attempt
                self._to_unknown(rec, "restart: outcome unknown")
                rec.due_ms = None
            if rec.state is S.UNKNOWN:
                self._resolve(rec)
            elif rec.state in (S.SENT, S.PARTIAL) and rec.cancel_requested:
                self.cancel(rec.intent.intent_id)
            elif rec.state in (S.SENT, S.PARTIAL):
                self.refresh(rec.intent.intent_id)
            touched.append(rec)
        return touched

    def _set_due(self, rec: OrderRecord, at_ms: int) -> None:
        self.dirty.add(rec.intent.intent_id)
        rec.due_ms = at_ms
        heapq.heappush(self._due, (at_ms, rec.intent.intent_id))

    def open_intents(self, symbol: str, side: str | None = None) -> list[OrderRecord]:
        """Intents of ``symbol`` not over yet (cheap: kept as an index)."""
        recs = (self.records[i] for i in self._open.get(symbol, ()))
        return [r for r in recs if side is None or r.intent.side == side]

    def open_records(self) -> list[OrderRecord]:
        return [r for r in self.records.values() if not r.done]

    # --- steps --------------------------------------------------------------------------
    def _prepare(self, rec: OrderRecord, live_ask: Decimal | None = None) -> bool:
        """NEW -> RESERVED, or FAILED_FINAL as a ghost with its reason."""
        it = rec.intent
        f = self.filters.get(it.symbol)
        if f is None:
            return self._ghost(rec, "unknown_symbol")
        if it.order_type == "market":
            if it.side != "sell":
                return self._ghost(rec, "market_buy_not_allowed")
            ok = it.amount >= f.min_qty and it.amount * it.ref_price >= f.min_notional
            if not ok:
                return self._ghost(rec, "below_min_notional")
            price, amount = None, it.amount
        else:
            assert it.limit_price is not None
            price, guarded = self._guard_price(it, f, live_ask)
            budget = None
            if it.side == "buy" and it.budget is not None:
                budget = it.budget / (1 + self.cfg.fee_rate_for(it.symbol))
            pf = preflight(it.side, price, it.amount, f, budget=budget)
            if not pf.ok:
                return self._ghost(rec, pf.reason)
            price, amount = pf.price, pf.amount
            if guarded:
                rec.reason = "slippage_guard_applied"
            if pf.bumped:
                rec.reason = (rec.reason + " " if rec.reason else "") + "bumped_to_min_notional"
        rec.price, rec.amount = price, amount
        if it.side == "buy":
            assert price is not None
            need = price * amount * (1 + self.cfg.fee_rate_for(it.symbol))
            if not self.portfolio.reserve(it.intent_id, need):
                return self._ghost(rec, "insufficient_budget")
            rec.reserved = need
        else:
            if not self.portfolio.lock_for_sell(it.symbol, amount):
                return self._ghost(rec, "nothing_to_sell")
            rec.reserved = amount
        extra: OrderExtra = {"price": None if price is None else str(price), "amount": str(amount)}
        self._move(rec, S.RESERVED, rec.reason, extra)
        return True

    def _guard_price(
        self, it: Intent, f: MarketFilters, live_ask: Decimal | None = None
    ) -> tuple[Decimal, bool]:
        """Cap a buy's limit above its decision's reference (and the live ask); keep a
        sell's limit from going further below its reference than allowed."""
        assert it.limit_price is not None
        price = it.limit_price
        if it.side == "buy":
            cap = it.ref_price * (1 + it.max_slippage_bps / BPS)
            if live_ask is None:
                try:
                    live_ask = self.exchange.fetch_ticker(it.symbol).ask
                except ExchangeError:
                    live_ask = None
            if live_ask is not None:
                cap = min(cap, live_ask * (1 + self.cfg.slippage_guard_bps / BPS))
            capped = q_price(cap, f.tick_size)
            return (capped, True) if price > capped else (price, False)
        floor = ceil_to(it.ref_price * (1 - it.max_slippage_bps / BPS), f.tick_size)
        return (floor, True) if price < floor else (price, False)

    def _send(self, rec: OrderRecord) -> None:
        it = rec.intent
        rec.attempts += 1
        self.dirty.add(it.intent_id)
        self.before_send()
        failpoints.hit("after_intent_commit")
        try:
            info = self.exchange.create_order(
                it.symbol,
                it.side,
                it.order_type,
                rec.amount,
                rec.price,
                it.time_in_force,
                rec.client_order_id,
            )
        except DuplicateOrder:
            # An order with our id exists: it is ours. Adopt it, never send another.
            info_or_none = self._fetch_quiet(rec, by_client_id=True)
            if info_or_none is None:
                self._to_unknown(rec, "duplicate_but_not_found")
            else:
                self._absorb(rec, info_or_none)
            return
        except InvalidOrder as exc:
            self.rejections[exc.reason] += 1
            self._fail(rec, f"invalid_order:{exc.reason}", ghost_reason=exc.reason)
            return
        except InsufficientFunds:
            self.rejections["insufficient_funds"] += 1
            self._fail(rec, "insufficient_funds", ghost_reason="insufficient_funds")
            return
        except AuthenticationFailed as exc:
            self.rejections["authentication"] += 1
            self._fail(rec, "authentication_failed", ghost_reason="authentication_failed")
            self.on_fatal(f"exchange refused our credentials: {exc}")
            return
        except NetworkError as exc:
            if exc.maybe_sent and not isinstance(exc, RateLimited):
                self._to_unknown(rec, f"lost_answer:{type(exc).__name__}")
                self._resolve(rec)
            else:
                self._error_then_retry(rec, f"{type(exc).__name__}: {exc}", exc)
            return
        except ExchangeError as exc:
            self._error_then_retry(rec, f"{type(exc).__name__}: {exc}", exc)
            return
        except Exception as exc:
            # Not an answer we understand (an adapter bug): the order may exist. Treat it
            # as a lost answer, so it is looked up by clientOrderId, then let it surface.
            self._to_unknown(rec, f"unexpected:{type(exc).__name__}")
            raise
        failpoints.hit("after_exchange_answer")
        self._absorb(rec, info)

    def _resolve(self, rec: OrderRecord) -> None:
        """Find an UNKNOWN order by its clientOrderId."""
        now = self.clock.now_ms()
        try:
            info = self.exchange.fetch_order_by_client_id(rec.client_order_id, rec.intent.symbol)
        except OrderNotFound:
            since = rec.unknown_since if rec.unknown_since is not None else now
            if now - since < self.cfg.unknown_grace_ms:
                self._set_due(rec, now + self._backoff(1))
                return
            # It never reached the exchange: sending again under the SAME id is safe.
            self._move(rec, S.RETRY, "not_on_exchange")
            rec.unknown_since = None
            if rec.cancel_requested:
                self._settle_failed(rec, "canceled_before_send")  # just looked: not there
                return
            if rec.attempts > self.cfg.max_retries:
                self._settle_failed(rec, "retries_exhausted")
                return
            self._set_due(rec, now + self._backoff(rec.attempts))
            return
        except Exception as exc:
            self._set_due(rec, now + self._backoff(max(rec.attempts, 1)))
            log.warning("resolve %s failed: %s", rec.client_order_id, exc)
            if not isinstance(exc, ExchangeError):
                raise
            return
        rec.unknown_since = None
        self._absorb(rec, info)
        if rec.cancel_requested and rec.live:
            self.cancel(rec.intent.intent_id)

    def _absorb(self, rec: OrderRecord, info: OrderInfo) -> None:
        """Book new fills and move the order to the state the exchange reports."""
        rec.order_id = info.id or rec.order_id
        rec.due_ms = None  # known now: no look-up pending
        trades = info.trades
        if info.filled > sum((t.amount for t in trades), ZERO):
            trades = self._trades_of(rec, info)
        new_fills = False
        for t in trades:
            if t.id in rec.seen_trades:
                continue
            self._book_fill(rec, t)  # raises before marking it seen if it cannot be booked
            rec.seen_trades.add(t.id)
            new_fills = True
        if rec.state in (S.RESERVED, S.RETRY, S.UNKNOWN):
            self._move(rec, S.SENT, "acknowledged")
        if info.filled > rec.filled:
            # The venue says more filled than the fills we could read (my-trades failed or
            # lags): never finalise on that, or the fill would be lost. Look again soon.
            if rec.filled > 0 and (new_fills or rec.state is not S.PARTIAL):
                self._move(rec, S.PARTIAL, "fills not readable yet")
            self._set_due(rec, self.clock.now_ms() + self._backoff(1))
            return
        if info.status == "open":
            if rec.filled > 0 and (new_fills or rec.state is not S.PARTIAL):
                self._move(rec, S.PARTIAL, "open")
            return
        target = S.FILLED if info.status == "closed" else S.CANCELED
        self._move(rec, target, info.status)
        self._settle(rec)

    def _book_fill(self, rec: OrderRecord, t: TradeInfo) -> None:
        it = rec.intent
        f = self.filters[it.symbol]
        if it.side == "buy":
            self.portfolio.apply_buy_fill(it.intent_id, it.decision_id, t, f.base)
        else:
            self.portfolio.apply_sell_fill(t, f.base)
        fee_q, _ = split_fee(t, f.base, f.quote)
        self.dirty.add(it.intent_id)
        rec.filled += t.amount
        rec.cost += t.price * t.amount
        rec.fee_quote += fee_q
        fill: FillRecord = {
            "kind": "fill",
            "ts": t.timestamp,
            "intent_id": it.intent_id,
            "decision_id": it.decision_id,
            "symbol": it.symbol,
            "side": it.side,
            "trade_id": t.id,
            "order_id": t.order_id,
            "price": str(t.price),
            "amount": str(t.amount),
            "fee": str(t.fee),
            "fee_currency": t.fee_currency,
        }
        if self.keep_fills:
            self.fills.append(fill)
        self.bus.publish(fill)

    def _abandon_unsent(self, rec: OrderRecord) -> None:
        """Give up an order we believe was never placed, after one more look by
        clientOrderId: a venue may show a just-placed order late, and its fills must be
        booked, not lost. If the look-up itself fails, try again later."""
        if rec.state is S.ERROR:
            self._move(rec, S.RETRY, "cancel requested")
        try:
            info = self.exchange.fetch_order_by_client_id(rec.client_order_id, rec.intent.symbol)
        except OrderNotFound:
            self._settle_failed(rec, "canceled_before_send")
            return
        except ExchangeError as exc:
            log.warning("final look-up of %s failed: %s", rec.client_order_id, exc)
            self._set_due(rec, self.clock.now_ms() + self._backoff(max(rec.attempts, 1)))
            return
        self._absorb(rec, info)
        if rec.live:
            self.cancel(rec.intent.intent_id)

    def _settle(self, rec: OrderRecord) -> None:
        """The order is over on the exchange: release what it did not use."""
        it = rec.intent
        if it.side == "buy":
            self.portfolio.release(it.intent_id)
        else:
            self.portfolio.unlock_sell(it.symbol, rec.reserved - rec.filled)
            if rec.filled > 0:
                self.portfolio.note_sell_leg(it.symbol)
        self.portfolio.check()
        self._move(rec, S.RECONCILED, "")

    def _settle_unsent(self, rec: OrderRecord) -> None:
        it = rec.intent
        if it.side == "buy":
            self.portfolio.release(it.intent_id)
        else:
            self.portfolio.unlock_sell(it.symbol, rec.reserved)
        rec.due_ms = None
        self.portfolio.check()

    def _settle_failed(self, rec: OrderRecord, reason: str) -> None:
        self._move(rec, S.FAILED_FINAL, reason)
        self._settle_unsent(rec)

    def _fail(self, rec: OrderRecord, reason: str, ghost_reason: str) -> None:
        self._move(rec, S.ERROR, reason)
        self._settle_failed(rec, reason)
        self._record_ghost(rec, ghost_reason)

    def _error_then_retry(self, rec: OrderRecord, reason: str, exc: ExchangeError) -> None:
        self._move(rec, S.ERROR, reason)
        if rec.attempts > self.cfg.max_retries:
            self._settle_failed(rec, "retries_exhausted")
            return
        delay = self._backoff(rec.attempts)
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            delay = max(delay, int(exc.retry_after_s * 1000))
        self._move(rec, S.RETRY, f"backoff_ms={delay}")
        self._set_due(rec, self.clock.now_ms() + delay)

    def _to_unknown(self, rec: OrderRecord, reason: str) -> None:
        """Outcome unknown: a look-up by clientOrderId is always scheduled, so an UNKNOWN
        order can never be forgotten (``_resolve`` reschedules or clears it)."""
        now = self.clock.now_ms()
        rec.unknown_since = now
        self._move(rec, S.UNKNOWN, reason)
        self._set_due(rec, now + self._backoff(1))

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

    def _backoff(self, attempt: int) -> int:
        return int(self.cfg.backoff_ms * (2 ** max(attempt - 1, 0)))

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
        """Venues that report a fill total without the fills: read them from my-trades."""
        try:
            mine = self.exchange.fetch_my_trades(rec.intent.symbol, since=rec.intent.created_ms)
        except ExchangeError as exc:
            log.warning("my trades for %s failed: %s", rec.client_order_id, exc)
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
            "state": state.value,
            "from": src.value if src is not None else None,
            "attempt": rec.attempts,
            "order_id": rec.order_id,
            "filled": str(rec.filled),
            "avg_price": None if rec.avg_price is None else str(rec.avg_price),
            "fee": str(rec.fee_quote),
            "reason": reason,
            **(extra or _NO_EXTRA),
        }
        self.bus.publish(record)


def _terms(it: Intent) -> OrderExtra:
    """An intent's terms, as its first order event carries them."""
    f = it.to_record()
    return {
        "amount": f["amount"],
        "limit_price": f["limit_price"],
        "ref_price": f["ref_price"],
        "max_slippage_bps": f["max_slippage_bps"],
        "time_in_force": f["time_in_force"],
        "leg": f["leg"],
        "created_ms": f["created_ms"],
        "budget": f["budget"],
    }
