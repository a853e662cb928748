"""The engine: the imperative shell around the symbol machines, the decisions and the router.

It takes its plugs (clock, exchange, filters, bus) and its policy (a feed drives it from
outside), turns prices into events, and runs what the decisions ask for from a queue:
each transition's action is a pure decision (``engine.actions``) that returns state changes
and commands; the shell applies the changes, runs the commands in order (orders and cancels
through the router, records to the bus), turns the router's answers into events with
``outcome_event``, and commits when an event's whole cascade is done (a bar's, each fired
timer's, each order answer's; and at the router's write-ahead before each order or cancel),
so no intermediate phase is ever saved without what caused it. The view's quote is the one
read that may ask the venue, at most once per stimulus. It never reads the wall clock and
never sleeps, so a backtest runs as fast as the CPU allows and the same input gives the same
audit trail.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from fsmtrader.audit import EventBus
from fsmtrader.clock import Clock, SimClock
from fsmtrader.engine import bars, durable, entry, errors, monitor, protect, report
from fsmtrader.engine.commands import (
    Decision,
    Fire,
    Refresh,
    Then,
    decide,
)
from fsmtrader.engine.executor import Executor
from fsmtrader.engine.exit import FORCE_EXIT
from fsmtrader.engine.live_view import LiveView
from fsmtrader.engine.outcomes import order_update
from fsmtrader.engine.policy import EnginePolicy
from fsmtrader.engine.risk import reserve_fee_rate, slots_used
from fsmtrader.engine.timeouts import deadline, live_top
from fsmtrader.engine.view import SymbolView
from fsmtrader.errors import ExchangeError
from fsmtrader.exchange.types import Exchange, Ticker
from fsmtrader.fsm.machine import SymbolMachine, Transition
from fsmtrader.fsm.phases import Action, Event, Phase
from fsmtrader.fsm.table import ON_BAR, TABLE, BarCheck
from fsmtrader.markets import MarketFilters
from fsmtrader.orders.router import OrderRouter
from fsmtrader.portfolio import Portfolio
from fsmtrader.state.books import Books
from fsmtrader.state.delta import Snapshot
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import Record
from fsmtrader.state.symbol import SymbolState
from fsmtrader.strategy import BothTouch, DropSignal, check_exit

if TYPE_CHECKING:
    from fsmtrader.store.sqlite import SqliteStore

log = logging.getLogger("fsmtrader.engine")
ZERO = Decimal(0)
P, E, A = Phase, Event, Action
ENTRY = BarCheck.ENTRY
BarHandler = Callable[[SymbolState, int, float, float], None]


class Engine:
    """One engine per session: the same object in backtest, paper and live; only its plugs
    (clock, exchange, filters, bus, store) differ. ``starting_cash`` overrides the policy's
    (a paper session continuing a wallet)."""

    def __init__(
        self,
        policy: EnginePolicy,
        *,
        clock: Clock,
        exchange: Exchange,
        filters: dict[str, MarketFilters],
        bus: EventBus | None = None,
        starting_cash: Decimal | None = None,
    ) -> None:
        unknown = [sym for sym in policy.symbols if sym not in filters]
        if unknown:
            raise ValueError(f"unknown symbol(s) on {exchange.name}: {', '.join(unknown)}")
        self.policy = policy
        self.clock = clock
        self.exchange = exchange
        self.filters = filters
        self.bus = bus or EventBus()
        cash = policy.starting_cash if starting_cash is None else starting_cash
        self.router = self._make_router(Portfolio(quote=policy.quote, cash=cash))
        self.machine = SymbolMachine(
            self._on_transition, self._on_rejected, policy.idempotency_expiry_ms
        )
        now = clock.now_ms()
        self.symbols = list(policy.symbols)
        e = policy.entry
        sma = e.sma_window_min if e.sma_filter else 0
        self.states = {
            sym: SymbolState(
                sym, entered_ms=now, signal=DropSignal(e.anchor_window_min, e.drop_trigger_pct, sma)
            )
            for sym in self.symbols
        }
        self._timers: list[tuple[int, int, str]] = []
        self.halted = ""
        self.entries_stopped = ""  # who stopped new entries (a control), "" = not
        self.counts: Counter[str] = Counter()
        self.store: SqliteStore | None = None
        self.dirty: set[str] = set()  # symbols changed since the last commit
        self.pending_audit: list[Record] = []  # bus records since the last commit (with a store)
        self.meta_saved: tuple[str, str, int] | None = None  # (halt, stop, counts) saved
        # Quotes fetched during one stimulus, until the next order or cancel (see quote).
        self._quotes: dict[str, Ticker | None] = {}
        self._views = {sym: LiveView(self, sym) for sym in self.symbols}
        self._on_bar = self._bar_handlers()
        self._executor = Executor(self)
        self._stop_asked: dict[str, int] = {}  # when each symbol's resting stop was asked about
        # A backtest's candles (drive.step_bar): the symbols in POSITION or with a signal
        # waiting in open_entries for the next open (a bar's ``at_open``).
        self.watching: set[str] = set()
        self.open_entries: dict[str, bars.OpenEntry] = {}
        for st in self.states.values():
            self.schedule(st)

    @property
    def portfolio(self) -> Portfolio:
        """The books. The router holds them (it books every fill and reservation); the
        engine reads them through it, so one object holds the one reference."""
        return self.router.portfolio

    def _make_router(self, portfolio: Portfolio) -> OrderRouter:
        """The router, sizing each symbol's buy reservations for its venue's fee."""
        p = self.policy
        rates = {s: reserve_fee_rate(f, p.risk.reserve_fee) for s, f in self.filters.items()}
        cfg = replace(p.router, fee_rate=p.risk.reserve_fee, fee_rates=rates)
        router = OrderRouter(self.exchange, portfolio, self.filters, self.clock, self.bus, cfg)
        router.on_race = self._on_race
        router.before_send = self.commit  # write-ahead (with a store) and fresh quotes
        router.on_fatal = self.halt
        return router

    def _bar_handlers(self) -> dict[BarCheck, BarHandler]:
        """What each meaning of a bar (``fsm.table.ON_BAR``) runs; ENTRY is inline."""
        return {
            BarCheck.WARM: self._bar_warm,
            BarCheck.EXIT: self._bar_exit,
            BarCheck.POLL: self._bar_poll,
        }

    # --- driving ------------------------------------------------------------------------
    def on_bar(
        self,
        ts: int,
        symbol: str,
        high: float,
        low: float,
        close: float,
        vol: float,
        quote: Ticker | None = None,
        at_open: bool = False,
    ) -> None:
        """One bar (or tick) of one symbol. The hot path: keep it lean (no view, no
        command when nothing fires). The driver runs ``run_timers`` first for anything
        due before ``ts``. ``at_open``: an entry signal waits for the next candle's open."""
        quotes = self._quotes
        if quotes:
            quotes.clear()
        if quote is not None:  # the caller just asked the venue: no second request
            quotes[symbol] = quote
        st = self.states[symbol]
        sig = st.signal
        sig.update(ts, close, vol)
        check = ON_BAR.get(st.phase)
        if check is ENTRY:  # the common case, inline: no trigger costs two comparisons
            if (
                sig.triggered(close)
                and ts >= st.entry_block_until
                and not (self.halted or self.entries_stopped)
            ):
                if at_open:
                    self.open_entries[symbol] = (ts, close, sig.anchor)
                    self.watching.add(symbol)
                else:
                    self._decided(st, entry.signal(symbol, ts, close, sig.anchor))
        elif check is not None:
            self._on_bar[check](st, ts, close, low)

    # --- a backtest's candle (drive.step_bar; engine.bars) ------------------------------
    def candle_exit(
        self, ts: int, symbol: str, o: float, h: float, lo: float, c: float, rule: BothTouch
    ) -> tuple[str, Decimal] | None:
        """The exit a held position's candle path meets: (reason, the bid it stands for)."""
        st = self.states[symbol]
        peak = st.exit.peak if st.phase is P.POSITION and st.exit is not None else None
        if peak is None:
            return None
        hit = bars.candle_exit(st, ts, (o, h, lo, c), rule, self.filters[symbol].tick_size)
        if st.exit is not None and st.exit.peak != peak and self.store is not None:
            self.dirty.add(symbol)  # the peak the path moved is saved at once, as a tick's
            self.commit()
        return hit

    def fire_exit(self, symbol: str, reason: str) -> None:
        """The exit a candle met: down the exit ladder from the bid the venue now quotes."""
        self.fire(self.states[symbol], E.EXIT_SIGNAL, reason)

    def enter_at_open(self, ts: int, symbol: str) -> None:
        """Decide the signal that waited for this open (``open_entries``), if any."""
        st, stopped = self.states[symbol], bool(self.halted or self.entries_stopped)
        self.watching.discard(symbol)
        decision = bars.open_entry(st, ts, self.open_entries, stopped)
        if decision is not None:
            self._quotes.clear()
            self._decided(st, decision)

    def _bar_exit(self, st: SymbolState, ts: int, close: float, low: float) -> None:
        ex = st.exit
        if ex is None:
            raise KeyError(f"{st.symbol}: no exit tracker")
        peak = ex.peak
        reason = check_exit(ex, close)
        if ex.peak != peak and self.store is not None:
            self.dirty.add(st.symbol)
            self.commit()
        moved = ex.peak != peak and not reason  # (an exit cancels the stop anyway)
        if self.policy.protect is not None and self._protect_bar(st, ts, low, moved):
            return  # the protective stop sold the position
        if reason and ts >= st.exit_block_until:
            self.fire(st, E.EXIT_SIGNAL, reason)

    def _protect_bar(self, st: SymbolState, ts: int, low: float, new_peak: bool) -> bool:
        """The resting stop on a bar: asked about when the low reached it (and at least
        every ``STOP_REFRESH_MS``: a polled tick shows no wick), raised with a
        trailing stop. True when the symbol left POSITION (the stop sold it)."""
        asked = self._stop_asked.setdefault(st.symbol, ts)
        due = protect.poll_due(self.view(st.symbol), low, ts - asked >= protect.STOP_REFRESH_MS)
        if due is not None:
            self._stop_asked[st.symbol] = ts
            self._decided(st, decide(Refresh(due), Then(partial(protect.stop_news, ts))))
        if new_peak and st.exit is not None and st.exit.trail_active and st.phase is P.POSITION:
            self._decided(st, decide(protect.sync(ts, trail=True)))
        return st.phase is not P.POSITION

    def _bar_warm(self, st: SymbolState, ts: int, close: float, low: float) -> None:
        if st.signal.warm(ts):
            self.fire(st, E.WARMUP_DONE, "history filled the anchor window")

    def _bar_poll(self, st: SymbolState, ts: int, close: float, low: float) -> None:
        rec = self._active_record(st)
        if rec is not None and rec.live and self._run(st, decide(Refresh(rec.intent.intent_id))):
            self.commit()

    def run_timers(self, now: int) -> None:
        """Fire every phase timeout and router retry due by ``now``, in time order."""
        sim = self.clock if isinstance(self.clock, SimClock) else None
        self._quotes.clear()
        budget = 100_000  # a livelock must not freeze the engine silently
        while True:
            budget -= 1
            if budget == 0:
                self.halt("timer livelock: more than 100,000 timeouts due at once")
                break
            r_due = self.router.next_due()
            due = self.next_due()
            if due is None or due > now:
                break
            if sim is not None and due > sim.now_ms():
                sim.set(due)
            if r_due is not None and r_due == due:
                for rec in self.router.run_due(due, self._order_step_failed):  # (drops stale)
                    self.on_order_update(rec)
                continue
            _, seq, symbol = heapq.heappop(self._timers)
            st = self.states[symbol]
            if st.seq == seq:
                self.fire(st, E.TIMEOUT, f"{st.phase} timed out")
        if sim is not None and now > sim.now_ms():
            sim.set(now)
        self.commit()

    def next_due(self) -> int | None:
        """When the engine next needs to run (a live phase timeout or a router retry)."""
        t = live_top(self._timers, self.states)  # (a driver never stops for a stale one)
        r = self.router.next_due()
        if t is None:
            return r
        return t if r is None else min(t, r)

    # --- the queue ----------------------------------------------------------------------
    def fire(self, st: SymbolState, event: Event, reason: str = "", key: str | None = None) -> None:
        """Feed one event to a symbol, run everything it leads to, then commit."""
        self._decided(st, decide(Fire(event, reason, key)))

    def _decided(self, st: SymbolState, decision: Decision) -> None:
        """Run a decision and everything it leads to; commit if a phase moved."""
        if self._run(st, decision):
            self.commit()

    def _order_step_failed(self, rec: OrderRecord, exc: Exception) -> None:
        """A router retry or look-up raised (a fill it cannot book, a bug): its symbol
        faults like a failing command, and a broken accounting invariant halts."""
        st = self.states[rec.intent.symbol]
        log.error("%s: order %s failed: %s", st.symbol, rec.client_order_id, exc)
        self._decided(st, errors.fault(st, None, exc))

    def on_order_update(self, rec: OrderRecord) -> None:
        """News of an order arriving later (a retry, a look-up, a restart)."""
        st = self.states[rec.intent.symbol]
        if rec.intent.stop_price is not None:  # the protective stop's (engine/protect.py)
            now = self.clock.now_ms()
            self._run(st, protect.stop_news(now, st, self.view(st.symbol), self.policy))
            self.commit()
            return
        if self._run(st, order_update(st, rec, self.held(st.symbol))):
            self.commit()
        if self.policy.protect is not None and rec.intent.side == "buy" and st.phase is P.POSITION:
            self._run(st, decide(protect.sync(self.clock.now_ms())))  # a late buy fill too
            self.commit()

    def _run(self, st: SymbolState, first: Decision) -> bool:
        return self._executor.run(st, first)

    def view(self, symbol: str) -> SymbolView:
        """The read-only view the decisions of ``symbol`` see."""
        return self._views[symbol]

    # --- durability ---------------------------------------------------------------------
    def attach_store(self, store: SqliteStore) -> None:
        """Make every change durable: audit records go to the store and are committed
        with the state they describe; the router commits before each exchange call."""
        self.store = store
        self.bus.subscribe(self.pending_audit.append)
        self.router.keep_fills = True
        self.dirty.update(self.states)
        self.portfolio.dirty = True

    def commit(self) -> None:
        """Runs when a stimulus is done and before every order or cancel (the router's
        write-ahead), which is also when a quote stops being current. The store gets what
        changed as values; each owner forgets its changes only once they are saved."""
        self._quotes.clear()
        if self.store is None:
            return
        changes = durable.delta(self)
        if changes is None:
            return
        self.store.save(changes)
        self.meta_saved = durable.meta_signature(self)
        self.dirty.clear()
        self.pending_audit.clear()
        self.router.mark_saved()
        self.portfolio.mark_saved()

    def persistent_counters(self) -> dict[str, Any]:
        return report.persistent_counters(self.counts, self.router)

    def books(self) -> Books:
        """The books reconcile compares with the exchange."""
        return Books(self.router.records, self.portfolio, self.symbols, self.filters)

    def restore(self, snap: Snapshot) -> None:
        """Put a saved engine back: symbols in their phases with their timers, every
        intent, the portfolio with its reservations. Orders are re-checked by recovery."""
        durable.check_restorable(snap, set(self.symbols))
        if snap.portfolio is not None:
            snap.portfolio.mark_saved()  # it is what the store holds
            self.router.portfolio = snap.portfolio
        durable.restore_symbols(self, snap, self.policy.exit.rule)
        self.router.restore(snap.orders)
        self.halted = snap.meta.get("halted", "")
        self.entries_stopped = snap.meta.get("entries_stopped", "")
        counters = json.loads(snap.meta.get("counters", "{}") or "{}")
        self.counts.update(counters.get("engine", {}))
        self.router.restore_counters(counters)
        self._timers = []
        for st in self.states.values():
            self.schedule(st)
        self.watching = {sym for sym, st in self.states.items() if st.phase is P.POSITION}
        self.open_entries = {}

    # --- the machine's listeners and timers ---------------------------------------------
    def _on_transition(self, t: Transition) -> None:
        self.counts["transitions"] += 1
        if t.dst is P.POSITION:
            self.watching.add(t.symbol)
        elif t.src is P.POSITION:
            self.watching.discard(t.symbol)
        self.bus.publish(t.to_record())

    def _on_rejected(self, symbol: str, phase: Phase, event: Event, why: str) -> None:
        self.counts["rejected_events"] += 1
        log.warning(why)
        self.bus.publish(monitor.rejected_event(symbol, phase, event, self.clock.now_ms()))

    def schedule(self, st: SymbolState, t: Transition | None = None) -> None:
        """Arm the timeout of the phase ``st`` is now in (its rule in ``fsm.table``)."""
        at = deadline(
            st,
            t,
            self.clock.now_ms(),
            self._active_record(st),
            self.portfolio.positions.get(st.symbol),
            self.policy.timeouts,
        )
        if at is not None:
            heapq.heappush(self._timers, (at, st.seq, st.symbol))

    # --- controls -----------------------------------------------------------------------
    def recover(self, symbol: str) -> bool:
        """Manual recovery: take a symbol out of ERROR now instead of after its backoff."""
        st = self.states[symbol]
        if (st.phase, E.RECOVER) not in TABLE:  # (only ERROR takes it)
            return False
        self.fire(st, E.RECOVER, "manual recovery")
        return True

    def force_exit(self, symbol: str) -> bool:
        """A person's exit of a held position, down the exit ladder like any other; False
        when the symbol is not in POSITION (nothing held, or an order in flight)."""
        st = self.states[symbol]
        if st.phase is not P.POSITION:
            return False
        self.fire(st, E.EXIT_SIGNAL, FORCE_EXIT)
        return True

    def resume_entries(self) -> None:
        """Lift a halt (a person decided to): new entries are allowed again."""
        reason, self.halted = self.halted, ""
        self.bus.publish({"kind": "resume", "ts": self.clock.now_ms(), "was": reason})

    def _on_race(self, rec: OrderRecord) -> None:
        if self.policy.errors.halt_on_order_race and not self.halted:
            self.halt(f"order race: {rec.client_order_id} filled while being cancelled")

    def halt(self, reason: str) -> None:
        """Stop opening positions; keep managing open ones."""
        self.halted = reason
        log.error("HALT: %s", reason)
        self.bus.publish({"kind": "halt", "ts": self.clock.now_ms(), "reason": reason})

    # --- reads --------------------------------------------------------------------------
    def mode(self, symbol: str) -> str:
        """The symbol's effective mode: "observe", "paper" or "live" (``engine.modes``)."""
        return self.policy.mode(symbol)

    def _active_record(self, st: SymbolState) -> OrderRecord | None:
        iid = st.active_intent
        return self.router.records.get(iid) if iid is not None else None

    def held(self, symbol: str) -> Decimal:
        pos = self.portfolio.positions.get(symbol)
        return pos.qty if pos is not None else ZERO

    def slots_used(self, exclude: str = "") -> int:
        """Symbols that hold, acquire or sell a position, in whatever phase (ERROR and
        IDLE included): a slot is a position or an order in flight, not a phase name."""
        return slots_used(
            (st.phase, self.held(sym), len(self.router.open_intents(sym)))
            for sym, st in self.states.items()
            if sym != exclude
        )

    def quote(self, symbol: str) -> Ticker | None:
        """The symbol's quote, fetched once per stimulus: every guard and decision of one
        cascade sees the same quote, and live trading pays one request for it. ``commit``
        forgets it before each order or cancel, so a later step quotes afresh."""
        if symbol in self._quotes:
            return self._quotes[symbol]
        try:
            ticker: Ticker | None = self.exchange.fetch_ticker(symbol)
        except ExchangeError:
            ticker = None
        self._quotes[symbol] = ticker
        return ticker

    def stuck_symbols(self) -> list[SymbolState]:
        """Symbols in a waiting phase far longer than any timeout should allow."""
        now = self.clock.now_ms()
        return monitor.stuck_symbols(self.states.values(), self.held, now, self.policy.timeouts)

    def check_stuck(self) -> list[SymbolState]:
        """Publish one alert per stuck episode; returns the stuck symbols."""
        return monitor.alert_stuck(self.stuck_symbols(), self.counts, self.bus, self.clock)

    def summary(self) -> dict[str, Any]:
        return report.summary(
            self.portfolio,
            self.router,
            self.counts,
            self.states.values(),
            self.halted,
            self.policy.modes,
        )
