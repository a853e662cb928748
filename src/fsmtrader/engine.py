"""The engine: the imperative shell around the symbol machines and the router.

It takes its plugs (clock, exchange, settings; a feed drives it from outside), turns
prices into events, runs the action each transition names, and feeds order outcomes back
as events. It never reads the wall clock and never sleeps, so a backtest runs as fast as
the CPU allows and the same input gives the same audit trail.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fsmtrader.audit import EventBus
from fsmtrader.clock import Clock, SimClock
from fsmtrader.config import Settings
from fsmtrader.errors import ExchangeError, StoreError
from fsmtrader.exchange.types import Exchange, Ticker
from fsmtrader.fsm.machine import SymbolMachine, Transition, error_backoff_ms
from fsmtrader.fsm.phases import Action, Event, Phase
from fsmtrader.markets import MarketFilters, can_afford, preflight, q_price
from fsmtrader.orders.intent import Intent, make_decision_id
from fsmtrader.orders.router import OrderRouter, RouterConfig
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import Portfolio, Position
from fsmtrader.state.books import Books
from fsmtrader.state.delta import Snapshot, StateDelta
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import Record
from fsmtrader.state.symbol import ExitState, SymbolState
from fsmtrader.strategy import DropSignal, ExitRule, check_exit, open_exit, peek_exit

if TYPE_CHECKING:
    from fsmtrader.store.sqlite import SqliteStore

log = logging.getLogger("fsmtrader.engine")
BPS = Decimal(10_000)
ZERO = Decimal(0)
P, E, A = Phase, Event, Action
# Phases in which a symbol holds, or is acquiring, a position: they use a slot.
BUSY = frozenset(
    {P.PLACE_BUY, P.WAIT_FILL, P.POSITION, P.EXIT_EVAL, P.PLACE_SELL, P.WAIT_SELL_FILL}
)


class Engine:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        exchange: Exchange,
        filters: dict[str, MarketFilters],
        bus: EventBus | None = None,
        starting_cash: Decimal | None = None,
    ) -> None:
        self.s = settings
        self.clock = clock
        self.exchange = exchange
        self.filters = filters
        self.bus = bus or EventBus()
        unknown = [sym for sym in settings.market.symbols if sym not in filters]
        if unknown:
            raise ValueError(f"unknown symbol(s) on {exchange.name}: {', '.join(unknown)}")
        cash = settings.market.starting_balance if starting_cash is None else starting_cash
        self.portfolio = Portfolio(quote=settings.market.quote, cash=cash)
        # A resting buy may fill as maker: reserve for the dearer of the two fees.
        fee_rate = max(settings.sim.taker_fee_bps, settings.sim.maker_fee_bps) / BPS
        self.router = OrderRouter(
            exchange,
            self.portfolio,
            filters,
            clock,
            self.bus,
            RouterConfig(
                max_retries=settings.router.max_retries,
                backoff_ms=settings.router.backoff_ms,
                slippage_guard_bps=Decimal(str(settings.router.slippage_guard_bps)),
                fee_rate=fee_rate,
            ),
        )
        self.machine = SymbolMachine(
            self._on_transition,
            self._on_rejected,
            int(settings.router.idempotency_expiry_s * 1000),
        )
        now = clock.now_ms()
        self.symbols = list(settings.market.symbols)
        self.states = {sym: SymbolState(sym, entered_ms=now) for sym in self.symbols}
        e = settings.entry
        self.signals = {
            sym: DropSignal(
                e.anchor_window_min, e.drop_trigger_pct, e.sma_window_min if e.sma_filter else 0
            )
            for sym in self.symbols
        }
        x = settings.exit
        self.exit_rule = ExitRule(
            x.take_profit_pct, x.stop_loss_pct, x.trailing_activation_pct, x.trailing_distance_pct
        )
        self._timers: list[tuple[int, int, str]] = []
        self.halted = ""
        self.counts: Counter[str] = Counter()
        self.store: SqliteStore | None = None
        self._dirty: set[str] = set()  # symbols changed since the last commit
        self._audit: list[Record] = []  # bus records since the last commit (with a store)
        self._meta_saved: tuple[str, int] | None = None  # (halted, counts) last saved
        self._depth = 0  # nesting of fire(): commit when the outermost event is done
        # Quotes fetched during one stimulus, until the next order or cancel (see _quote).
        self._quotes: dict[str, Ticker | None] = {}
        self.router.on_race = self._on_race
        self.router.before_send = self.commit  # write-ahead (with a store) and fresh quotes
        self.router.on_fatal = self.halt
        self._actions: dict[Action, Callable[[SymbolState, Transition], None]] = {
            A.NONE: self._noop,
            A.BLOCK_ENTRY: self._block_entry,
            A.EVALUATE_ENTRY: self._evaluate_entry,
            A.SUBMIT_BUY: self._submit_buy,
            A.CHECK_BUY: self._check_buy,
            A.CANCEL_BUY: self._cancel_buy,
            A.ABANDON_BUY: self._abandon_buy,
            A.OPEN_POSITION: self._open_position,
            A.EVALUATE_EXIT: self._evaluate_exit,
            A.SUBMIT_SELL: self._submit_sell,
            A.CHECK_SELL: self._check_sell,
            A.CANCEL_SELL: self._cancel_sell,
            A.RESUME_POSITION: self._resume_position,
            A.RECORD_TRADE: self._record_trade,
            A.START_COOLDOWN: self._noop,
            A.ENTER_ERROR: self._enter_error,
            A.LEAVE_ERROR: self._leave_error,
        }
        for st in self.states.values():
            self._schedule(st)

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
    ) -> None:
        """One bar (or tick) of one symbol. The hot path: keep it lean. The driver runs
        ``run_timers`` first for anything due before ``ts``."""
        if self._quotes:
            self._quotes.clear()
        if quote is not None:  # the caller just asked the venue: no second request
            self._quotes[symbol] = quote
        sig = self.signals[symbol]
        sig.update(ts, close, vol)
        st = self.states[symbol]
        phase = st.phase
        if phase is P.IDLE:
            if sig.triggered(close) and ts >= st.entry_block_until and not self.halted:
                st.decision_id = make_decision_id(symbol, ts, "entry")
                self.fire(st, E.SIGNAL, f"close={close} anchor={sig.anchor}")
        elif phase is P.POSITION:
            ex = _exit_of(st)
            peak = ex.peak
            reason = check_exit(ex, close)
            if ex.peak != peak and self.store is not None:
                self._dirty.add(symbol)
                self.commit()
            if reason and ts >= st.exit_block_until:
                self.fire(st, E.EXIT_SIGNAL, reason)
        elif phase is P.WARMUP:
            if sig.warm(ts):
                self.fire(st, E.WARMUP_DONE, "history filled the anchor window")
        elif phase is P.WAIT_FILL or phase is P.WAIT_SELL_FILL:
            try:
                self._poll(st)
            except Exception as exc:  # an adapter bug parks the symbol, not the engine
                log.exception("%s: polling the order failed", symbol)
                self.fire(st, E.FAULT, f"{type(exc).__name__}: {exc}")

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
                for rec in self.router.run_due(due):  # (drops stale entries too)
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
        """When the engine next needs to run (a phase timeout or a router retry)."""
        t = self._timers[0][0] if self._timers else None
        r = self.router.next_due()
        if t is None:
            return r
        return t if r is None else min(t, r)

    # --- the machine --------------------------------------------------------------------
    def fire(self, st: SymbolState, event: Event, reason: str = "", key: str | None = None) -> None:
        t = self.machine.fire(st, event, self.clock.now_ms(), reason, key)
        if t is None:
            return
        self._dirty.add(st.symbol)
        self._schedule(st, t)
        self._depth += 1
        try:
            self._actions[t.action](st, t)
        except Exception as exc:  # an action bug must park the symbol, not kill the engine
            log.exception("%s: action %s failed", st.symbol, t.action)
            st.last_error = f"{type(exc).__name__}: {exc}"
            if st.phase is not P.ERROR or t.action is not A.ENTER_ERROR:
                self.fire(st, E.FAULT, st.last_error)
        finally:
            self._depth -= 1
        if self._depth == 0:
            self.commit()

    # --- durability ---------------------------------------------------------------------
    def attach_store(self, store: SqliteStore) -> None:
        """Make every change durable: audit records go to the store and are committed
        with the state they describe; the router commits before each exchange call."""
        self.store = store
        self.bus.subscribe(self._audit.append)
        self.router.keep_fills = True
        self._dirty.update(self.states)
        self.portfolio.dirty = True

    def commit(self) -> None:
        """Runs when a stimulus is done and before every order or cancel (the router's
        write-ahead), which is also when a quote stops being current. The store gets what
        changed as values; each owner forgets its changes only once they are saved."""
        self._quotes.clear()
        store = self.store
        router, pf = self.router, self.portfolio
        if store is None or not (self._dirty or router.dirty or pf.dirty or self._audit):
            return
        # Counters change only with orders, the portfolio, a halt or an engine count:
        # check that cheaply instead of rewriting (and re-encoding) them every commit.
        sig = (self.halted, self.counts.total() - self.counts["transitions"])
        meta = {}
        if router.dirty or pf.dirty or sig != self._meta_saved:
            meta = {
                "halted": self.halted,
                "counters": json.dumps(self.persistent_counters(), sort_keys=True),
            }
        states = self.states
        store.save(
            StateDelta(
                symbols=[states[sym] for sym in self._dirty],
                orders=[router.records[iid] for iid in router.dirty],
                portfolio=pf if pf.dirty else None,
                fills=router.fills,
                audit=self._audit,
                meta=meta,
            )
        )
        self._meta_saved = sig
        self._dirty.clear()
        self._audit.clear()
        router.mark_saved()
        pf.mark_saved()

    def persistent_counters(self) -> dict[str, Any]:
        # transitions are counted by the audit table itself, not rewritten per commit
        engine = {k: v for k, v in self.counts.items() if k != "transitions"}
        return {"engine": engine, **self.router.counters()}

    def books(self) -> Books:
        """The books reconcile compares with the exchange."""
        return Books(self.router.records, self.portfolio, self.symbols, self.filters)

    def restore(self, snap: Snapshot) -> None:
        """Put a saved engine back: symbols in their phases with their timers, every
        intent, the portfolio with its reservations. Orders are re-checked by recovery."""
        known = set(self.symbols)
        stray = [
            s
            for s in snap.symbols
            if s not in known and (snap.portfolio is not None and s in snap.portfolio.positions)
        ]
        stray += sorted(
            {r.intent.symbol for r in snap.orders if not r.done and r.intent.symbol not in known}
        )
        if stray:
            raise StoreError(
                f"market.symbols: {', '.join(sorted(set(stray)))} still has an open position or "
                "order in the state database; add it back to market.symbols to manage it"
            )
        if snap.portfolio is not None:
            self.portfolio = snap.portfolio
            self.router.portfolio = snap.portfolio
        for sym, st in snap.symbols.items():
            if sym not in known:
                continue
            self.states[sym] = st
            pos = self.portfolio.positions.get(sym)
            saved, st.exit = st.exit, None
            if pos is not None and pos.bought_qty > 0:  # the levels come from the position
                peak, trail = (saved.peak, saved.trail_active) if saved else (None, False)
                st.exit = open_exit(float(pos.avg_entry), self.exit_rule, peak, trail)
        self.router.restore(snap.orders)
        self.halted = snap.meta.get("halted", "")
        counters = json.loads(snap.meta.get("counters", "{}") or "{}")
        self.counts.update(counters.get("engine", {}))
        self.router.restore_counters(counters)
        self._timers = []
        for st in self.states.values():
            self._schedule(st)

    def _on_transition(self, t: Transition) -> None:
        self.counts["transitions"] += 1
        self.bus.publish(t.to_record())

    def _on_rejected(self, symbol: str, phase: Phase, event: Event, why: str) -> None:
        self.counts["rejected_events"] += 1
        log.warning(why)
        self.bus.publish(
            {
                "kind": "rejected_event",
                "ts": self.clock.now_ms(),
                "symbol": symbol,
                "phase": phase.value,
                "event": event.value,
            }
        )

    def _schedule(self, st: SymbolState, t: Transition | None = None) -> None:
        """Arm the timeout of the phase ``st`` is now in (every waiting phase has one)."""
        tm = self.s.timeouts
        now = self.clock.now_ms()
        ph = st.phase
        if ph is P.IDLE:
            return
        if t is not None and t.event is E.TIMEOUT and t.src is t.dst:
            deadline = now + int(tm.buy_fill_timeout_s * 1000)  # try the cancel again
        elif ph is P.WARMUP:
            deadline = st.entered_ms + int(tm.warmup_timeout_s * 1000)
        elif ph in (P.ENTRY_EVAL, P.EXIT_EVAL, P.POST_TRADE):
            deadline = st.entered_ms + int(tm.stuck_state_s * 1000)
        elif ph is P.PLACE_BUY:
            deadline = st.entered_ms + int(tm.buy_fill_timeout_s * 1000)
        elif ph is P.WAIT_FILL:
            deadline = st.entered_ms + int(tm.buy_fill_timeout_s * 1000)
            rec = self._active_record(st.symbol)
            if rec is not None and rec.filled > 0:  # a partial fill must not sit for long
                deadline = min(deadline, now + int(tm.partial_fill_stuck_s * 1000))
            if rec is not None and rec.live and rec.intent.time_in_force == "IOC":
                # an IOC the venue reports open (MEXC, ccxt issue 25003): cancel the rest
                deadline = min(deadline, now + tm.exit_ioc_ttl_ms)
        elif ph is P.POSITION:
            pos = self.portfolio.positions.get(st.symbol)
            start = pos.entry_ms if pos is not None else now
            deadline = start + int(self.s.exit.max_hold_min * 60_000)
            if t is not None and t.src is not P.POSITION and deadline <= now:
                # back in POSITION past the max hold (exit blocked, no quote, ...): wait
                # before the timed exit tries again instead of firing at once, forever
                deadline = now + int(self.s.entry.entry_block_cooldown_s * 1000)
            deadline = max(deadline, st.exit_block_until)
        elif ph is P.PLACE_SELL:
            deadline = st.entered_ms + int(tm.sell_fill_timeout_s * 1000)
        elif ph is P.WAIT_SELL_FILL:
            deadline = st.entered_ms + tm.exit_ioc_ttl_ms
        elif ph is P.COOLDOWN:
            deadline = st.entered_ms + int(self.s.exit.cooldown_s * 1000)
        else:  # ERROR
            er = self.s.errors
            deadline = st.entered_ms + error_backoff_ms(
                st.error_count, er.backoff_base_s, er.backoff_max_s
            )
        heapq.heappush(self._timers, (deadline, st.seq, st.symbol))

    # --- entry --------------------------------------------------------------------------
    def _noop(self, st: SymbolState, t: Transition) -> None:
        if st.phase is P.IDLE:
            self._after_idle(st)

    def _block_entry(self, st: SymbolState, t: Transition) -> None:
        st.entry_block_until = t.ts + int(self.s.entry.entry_block_cooldown_s * 1000)
        self._after_idle(st)

    def _evaluate_entry(self, st: SymbolState, t: Transition) -> None:
        blocked = self.entry_guards(st.symbol)
        if blocked:
            self.counts["guards_blocked"] += 1
            self.fire(st, E.GUARDS_BLOCKED, ",".join(blocked))
            return
        ticker = self._quote(st.symbol)  # the guards' quote: no second request
        assert ticker is not None  # a missing quote blocks the entry ("no_quote")
        st.entry_ref = ticker.ask
        st.buy_leg = 0
        self.fire(st, E.GUARDS_PASSED, f"ask={ticker.ask}")

    def entry_guards(self, symbol: str) -> list[str]:
        """Names of the guards that block an entry now (empty: go)."""
        e, r = self.s.entry, self.s.risk
        blocked = []
        ticker = self._quote(symbol)
        if ticker is None:
            blocked.append("no_quote")
        if ticker is not None and ticker.spread_bps > e.max_spread_bps:
            blocked.append("spread")
        sig = self.signals[symbol]
        if e.min_volume > 0 and sig.last_volume * sig.last_close < e.min_volume:
            blocked.append("volume")
        if e.sma_filter and not sig.sma_ok():
            blocked.append("sma")
        if self._held(symbol) > 0:
            blocked.append("position_open")
        if self.router.open_intents(symbol):
            blocked.append("order_in_flight")  # an earlier order is not settled yet
        if self.slots_used(exclude=symbol) >= r.max_open_positions:
            blocked.append("slots")
        if self.portfolio.exposure() + r.position_size > r.max_total_exposure:
            blocked.append("exposure")
        if ticker is not None and not can_afford(ticker.ask, self.filters[symbol], self._budget()):
            blocked.append("can_afford")
        return blocked

    def _submit_buy(self, st: SymbolState, t: Transition) -> None:
        sym = st.symbol
        steps = self.s.entry.buy_escalation_bps
        leg = st.buy_leg
        pos = self.portfolio.positions.get(sym)
        spent = pos.cost_basis if pos is not None else ZERO
        size = self.s.risk.position_size - spent
        quote = self._quote(sym)  # current: fetched in this stimulus, before any order
        if quote is None:
            self.fire(st, E.BUY_ABORTED, "no quote")
            return
        ask = quote.ask
        step_bps = Decimal(str(steps[min(leg, len(steps) - 1)]))
        price = q_price(ask * (1 + step_bps / BPS), self.filters[sym].tick_size)
        intent = Intent.create(
            decision_id=st.decision_id,
            symbol=sym,
            side="buy",
            amount=size / price / (1 + self.router.cfg.fee_rate),
            limit_price=price,
            ref_price=st.entry_ref if st.entry_ref is not None else ask,
            max_slippage_bps=Decimal(str(self.s.entry.max_entry_slippage_bps)),
            time_in_force=self.s.router.time_in_force,
            leg=leg,
            created_ms=t.ts,
            reason=f"entry step {leg} (+{step_bps} bps)",
            budget=self._budget(),
        )
        # Before submit: the router's write-ahead commit must record which intent this
        # symbol is waiting for, or a crash would leave it orphaned.
        st.active_intent = intent.intent_id
        rec = self.router.submit(intent, live_ask=ask)  # priced just now: no second quote
        self._after_buy_submit(st, rec)

    def _after_buy_submit(self, st: SymbolState, rec: OrderRecord) -> None:
        if rec.state is OrderState.FAILED_FINAL:
            if self._held(st.symbol) > 0:
                self.fire(st, E.BUY_FILLED, f"kept earlier fills; {rec.reason}")
            else:
                self.fire(st, E.BUY_ABORTED, rec.reason)
        elif rec.state in (OrderState.RETRY, OrderState.UNKNOWN, OrderState.ERROR):
            return  # the router's timer will bring it back
        else:
            self.fire(st, E.BUY_PLACED, rec.client_order_id, key=rec.intent.intent_id)

    def _check_buy(self, st: SymbolState, t: Transition) -> None:
        rec = self._active_record(st.symbol)
        if rec is None or rec.live:
            return
        self._finish_buy(st, rec, escalate=True)

    def _finish_buy(self, st: SymbolState, rec: OrderRecord, escalate: bool) -> None:
        sym = st.symbol
        if rec.state is OrderState.RECONCILED and rec.filled >= rec.amount:
            self.fire(st, E.BUY_FILLED, f"filled {rec.filled} @ {rec.avg_price}")
            return
        leg = st.buy_leg
        if escalate and leg + 1 < len(self.s.entry.buy_escalation_bps):
            pos = self.portfolio.positions.get(sym)
            pos = self.portfolio.positions.get(sym)
            left = self.s.risk.position_size - (pos.cost_basis if pos is not None else ZERO)
            if pos is None or pos.bought_qty == 0:
                left = self._budget()  # nothing bought yet: the entry may still be bumped
            ask = self._quote(sym)
            if ask is not None and can_afford(
                ask.ask, self.filters[sym], min(left, self._budget())
            ):
                st.buy_leg = leg + 1
                self.fire(st, E.BUY_ESCALATE, f"filled {rec.filled}/{rec.amount}, step {leg + 1}")
                return
        if self._held(sym) > 0:
            self.fire(st, E.BUY_FILLED, f"kept partial {self._held(sym)}")
        else:
            self.fire(st, E.BUY_CANCELED, rec.reason or "nothing filled")

    def _cancel_buy(self, st: SymbolState, t: Transition) -> None:
        rec = self._active_record(st.symbol)
        if rec is None:
            self.fire(st, E.BUY_CANCELED, "no order")
            return
        rec = self.router.cancel(rec.intent.intent_id)
        if rec.done:
            self._finish_buy(st, rec, escalate=False)

    def _abandon_active(self, symbol: str) -> None:
        """Give up the order in flight: the router cancels it (or makes sure it is never
        sent) and releases what it held. If that cannot be confirmed yet, the router keeps
        it and books whatever it turns out to have filled."""
        rec = self._active_record(symbol)
        if rec is not None and not rec.done:
            rec = self.router.cancel(rec.intent.intent_id)
        if rec is None or rec.done:
            self.states[symbol].active_intent = None

    def _abandon_buy(self, st: SymbolState, t: Transition) -> None:
        self._abandon_active(st.symbol)
        st.entry_block_until = t.ts + int(self.s.entry.entry_block_cooldown_s * 1000)
        self._after_idle(st)

    def _after_idle(self, st: SymbolState) -> None:
        """IDLE must not forget a position (after an abandoned buy, ERROR or a restart)."""
        if self._held(st.symbol) > 0:
            self.fire(st, E.HAS_POSITION, "position held")
        else:
            self.portfolio.discard_empty(st.symbol)

    def _open_position(self, st: SymbolState, t: Transition) -> None:
        st.active_intent = None
        pos = self.portfolio.positions[st.symbol]
        st.exit = open_exit(float(pos.avg_entry), self.exit_rule)
        st.sell_leg = 0
        self.bus.publish(
            {
                "kind": "position",
                "ts": t.ts,
                "symbol": st.symbol,
                "decision_id": pos.decision_id,
                "qty": str(pos.qty),
                "avg_entry": str(pos.avg_entry),
                "fees": str(pos.buy_fees),
            }
        )

    # --- exit ---------------------------------------------------------------------------
    def _resume_position(self, st: SymbolState, t: Transition) -> None:
        if t.src in (P.PLACE_SELL, P.WAIT_SELL_FILL):
            self._abandon_active(st.symbol)
        pos = self.portfolio.positions.get(st.symbol)
        if pos is None:
            self.fire(st, E.FAULT, "POSITION without a position")
            return
        if st.exit is None:
            st.exit = open_exit(float(pos.avg_entry), self.exit_rule)
        if t.event is E.SELL_BLOCKED:
            st.exit_block_until = t.ts + int(self.s.entry.entry_block_cooldown_s * 1000)

    def _evaluate_exit(self, st: SymbolState, t: Transition) -> None:
        sym = st.symbol
        ticker = self._quote(sym)
        if t.event is E.TIMEOUT:
            reason = "max_hold"
        else:
            reason = peek_exit(_exit_of(st), float(ticker.bid)) if ticker is not None else ""
            if not reason:
                self.fire(st, E.EXIT_HOLD, f"{t.reason} not confirmed by the bid")
                return
        if ticker is None:
            self.fire(st, E.EXIT_HOLD, "no quote")
            return
        st.exit_reason = reason
        st.step = 0
        st.exit_ref = ticker.bid
        self.fire(st, E.EXIT_CONFIRMED, reason)

    def _submit_sell(self, st: SymbolState, t: Transition) -> None:
        sym = st.symbol
        x = self.s.exit
        f = self.filters[sym]
        pos = self.portfolio.positions[sym]
        if pos.sell_locked > 0:
            # An earlier sell is not settled yet (its outcome is being looked up): selling
            # the rest now could oversell, and the rest is not dust.
            self.fire(st, E.SELL_BLOCKED, f"{pos.sell_locked} still in an unsettled sell")
            return
        qty = pos.sellable
        ticker = self._quote(sym)
        if ticker is None:
            self.fire(st, E.SELL_BLOCKED, "no quote")
            return
        if not preflight("sell", ticker.bid, qty, f).ok:
            self.fire(st, E.SELL_FILLED, f"remainder {qty} below exchange minimum: dust")
            return
        ladder = x.exit_ladder_bps
        rung = st.step
        if rung >= len(ladder):
            if x.never_market_sells:
                self.fire(st, E.SELL_BLOCKED, "exit ladder exhausted (never_market_sells)")
                return
            if rung > len(ladder):  # one market sell per exit attempt, then wait
                self.fire(st, E.SELL_BLOCKED, "the market sell filled nothing; retry later")
                return
            price: Decimal | None = None
        else:
            price = q_price(ticker.bid * (1 - Decimal(str(ladder[rung])) / BPS), f.tick_size)
        floor = pos.avg_entry * (1 - Decimal(str(x.flash_crash_guard_pct)) / 100)
        if (price if price is not None else ticker.bid) < floor:
            self.counts["flash_crash_guard"] += 1
            self.fire(st, E.SELL_BLOCKED, f"flash-crash guard: {price} < {floor}")
            return
        leg = st.sell_leg
        st.sell_leg = leg + 1
        intent = Intent.create(
            decision_id=pos.decision_id,
            symbol=sym,
            side="sell",
            amount=qty,
            limit_price=price,
            ref_price=st.exit_ref if st.exit_ref is not None else ticker.bid,
            max_slippage_bps=Decimal(str(x.max_exit_slippage_bps)),
            time_in_force="IOC",
            leg=leg,
            created_ms=t.ts,
            reason=f"{st.exit_reason} rung {rung}",
        )
        # Before submit: the router's write-ahead commit must record which intent this
        # symbol is waiting for, or a crash would leave it orphaned.
        st.active_intent = intent.intent_id
        rec = self.router.submit(intent)
        self._after_sell_submit(st, rec)

    def _after_sell_submit(self, st: SymbolState, rec: OrderRecord) -> None:
        if rec.state is OrderState.FAILED_FINAL:
            if self._held(st.symbol) <= 0:
                self.fire(st, E.SELL_FILLED, "nothing left to sell")
            else:
                self.fire(st, E.SELL_BLOCKED, rec.reason)
        elif rec.state in (OrderState.RETRY, OrderState.UNKNOWN, OrderState.ERROR):
            return
        else:
            self.fire(st, E.SELL_PLACED, rec.client_order_id, key=rec.intent.intent_id)

    def _check_sell(self, st: SymbolState, t: Transition) -> None:
        rec = self._active_record(st.symbol)
        if rec is None or rec.live:
            return  # an IOC reported open (MEXC): the TTL timeout cancels it
        self._next_rung(st, rec)

    def _next_rung(self, st: SymbolState, rec: OrderRecord) -> None:
        sym = st.symbol
        pos = self.portfolio.positions[sym]
        ticker = self._quote(sym)
        bid = ticker.bid if ticker is not None else pos.avg_entry
        if pos.qty <= 0 or not preflight("sell", bid, pos.qty, self.filters[sym]).ok:
            self.fire(st, E.SELL_FILLED, f"sold {pos.sold_qty}, dust {pos.qty}")
            return
        st.step += 1
        if rec.filled > 0:
            self.fire(st, E.SELL_PARTIAL, f"filled {rec.filled}/{rec.amount}")
        else:
            self.fire(st, E.SELL_UNFILLED, "rung filled nothing")

    def _cancel_sell(self, st: SymbolState, t: Transition) -> None:
        rec = self._active_record(st.symbol)
        if rec is None:
            self.fire(st, E.SELL_UNFILLED, "no order")
            return
        rec = self.router.cancel(rec.intent.intent_id)
        if rec.done:
            self._next_rung(st, rec)

    def _record_trade(self, st: SymbolState, t: Transition) -> None:
        sym = st.symbol
        st.active_intent = None
        st.exit = None
        trade = self.portfolio.close_position(sym, t.ts, st.exit_reason)
        st.error_count = 0
        self.bus.publish({"kind": "trade", "ts": t.ts, **trade.to_record()})
        self.fire(st, E.TRADE_RECORDED, f"pnl={trade.realized_pnl}")

    # --- errors -------------------------------------------------------------------------
    def _enter_error(self, st: SymbolState, t: Transition) -> None:
        st.error_count += 1
        st.last_error = t.reason
        rec = self._active_record(st.symbol)
        if rec is not None and not rec.done:
            self.router.cancel(rec.intent.intent_id)
        if st.error_count >= self.s.errors.max_consecutive_errors and not self.halted:
            self.halt(f"{st.symbol}: {st.error_count} consecutive errors ({t.reason})")
        self.bus.publish(
            {
                "kind": "alert",
                "ts": t.ts,
                "symbol": st.symbol,
                "alert": "error",
                "detail": t.reason,
                "error_count": st.error_count,
            }
        )

    def _leave_error(self, st: SymbolState, t: Transition) -> None:
        self._abandon_active(st.symbol)  # forgets the order only once it is over
        self._after_idle(st)

    def recover(self, symbol: str) -> bool:
        """Manual recovery: take a symbol out of ERROR now instead of after its backoff."""
        st = self.states[symbol]
        if st.phase is not P.ERROR:
            return False
        self.fire(st, E.RECOVER, "manual recovery")
        return True

    def resume_entries(self) -> None:
        """Lift a halt (a person decided to): new entries are allowed again."""
        reason, self.halted = self.halted, ""
        self.bus.publish({"kind": "resume", "ts": self.clock.now_ms(), "was": reason})

    def _on_race(self, rec: OrderRecord) -> None:
        if self.s.halts.on_order_race and not self.halted:
            self.halt(f"order race: {rec.client_order_id} filled while being cancelled")

    def halt(self, reason: str) -> None:
        """Stop opening positions; keep managing open ones."""
        self.halted = reason
        log.error("HALT: %s", reason)
        self.bus.publish({"kind": "halt", "ts": self.clock.now_ms(), "reason": reason})

    # --- order outcomes arriving later (retries, lookups, polls) ------------------------
    def on_order_update(self, rec: OrderRecord) -> None:
        sym = rec.intent.symbol
        st = self.states[sym]
        if st.phase is P.IDLE:
            # The symbol already gave this order up: whatever it filled is a position to
            # manage now (an IDLE symbol must never hold one unwatched).
            if rec.done and st.active_intent == rec.intent.intent_id:
                st.active_intent = None
            if self._held(sym) > 0:
                self.fire(st, E.HAS_POSITION, f"a late fill of {rec.client_order_id}")
            return
        if st.active_intent != rec.intent.intent_id:
            return
        if st.phase is P.PLACE_BUY:
            self._after_buy_submit(st, rec)
        elif st.phase is P.PLACE_SELL:
            self._after_sell_submit(st, rec)
        elif st.phase is P.WAIT_FILL and rec.done:
            self._finish_buy(st, rec, escalate=True)
        elif st.phase is P.WAIT_SELL_FILL and rec.done:
            self._next_rung(st, rec)

    def _poll(self, st: SymbolState) -> None:
        rec = self._active_record(st.symbol)
        if rec is None or not rec.live:
            return
        before = rec.filled
        rec = self.router.refresh(rec.intent.intent_id)
        if st.phase is P.WAIT_FILL:
            if rec.done:
                self._finish_buy(st, rec, escalate=True)
            elif rec.filled > before:
                self.fire(
                    st,
                    E.BUY_PARTIAL,
                    f"filled {rec.filled}/{rec.amount}",
                    key=f"{rec.intent.intent_id}:{rec.filled}",
                )
        elif rec.done:
            self._next_rung(st, rec)

    # --- helpers ------------------------------------------------------------------------
    def _active_record(self, symbol: str) -> OrderRecord | None:
        iid = self.states[symbol].active_intent
        return self.router.records.get(iid) if iid is not None else None

    def slots_used(self, exclude: str = "") -> int:
        """Symbols that hold, acquire or sell a position, in whatever phase (ERROR and
        IDLE included): a slot is a position or an order in flight, not a phase name."""
        return sum(
            1
            for sym, st in self.states.items()
            if sym != exclude
            and (st.phase in BUSY or self._held(sym) > 0 or self.router.open_intents(sym))
        )

    def _budget(self) -> Decimal:
        """What one buy may spend at most (position_size is the target; a bump up to the
        exchange minimum may use free cash within the exposure limit)."""
        room = self.s.risk.max_total_exposure - self.portfolio.exposure()
        return max(min(self.portfolio.cash, room), ZERO)

    def _held(self, symbol: str) -> Decimal:
        pos: Position | None = self.portfolio.positions.get(symbol)
        return pos.qty if pos is not None else ZERO

    def _quote(self, symbol: str) -> Ticker | None:
        """The symbol's quote, fetched once per stimulus: every guard and action of one
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
        limit = int(self.s.timeouts.stuck_state_s * 1000)
        hold = int(self.s.exit.max_hold_min * 60_000)
        out = []
        for st in self.states.values():
            if st.phase is P.IDLE and self._held(st.symbol) > 0:
                out.append(st)  # a position nobody watches
                continue
            if st.phase in (P.IDLE, P.WARMUP, P.COOLDOWN, P.ERROR):
                continue
            allowed = hold + limit if st.phase is P.POSITION else limit
            if now - st.entered_ms > allowed:
                out.append(st)
        return out

    def check_stuck(self) -> list[SymbolState]:
        """Publish one alert per stuck episode; returns the stuck symbols."""
        stuck = self.stuck_symbols()
        for st in stuck:
            if not st.stuck_alerted:
                st.stuck_alerted = True
                self.counts["stuck_alerts"] += 1
                self.bus.publish(
                    {
                        "kind": "alert",
                        "ts": self.clock.now_ms(),
                        "symbol": st.symbol,
                        "alert": "stuck",
                        "detail": f"{st.phase} since {st.entered_ms}",
                    }
                )
        return stuck

    def summary(self) -> dict[str, Any]:
        pf = self.portfolio
        wins = sum(1 for t in pf.trades if t.realized_pnl > 0)
        return {
            "trades": len(pf.trades),
            "wins": wins,
            "win_rate": round(wins / len(pf.trades), 4) if pf.trades else 0.0,
            "realized_pnl": str(pf.realized_pnl),
            "fees": str(pf.fees_paid),
            "cash": str(pf.cash),
            "open_positions": {s: str(p.qty) for s, p in pf.positions.items()},
            "orders": len(self.router.records),
            "orders_by_final_state": dict(sorted(self.router.final_states.items())),
            "ghosts": len(pf.ghosts),
            "ghosts_by_reason": dict(sorted(self.router.ghost_reasons.items())),
            "rejected_orders": sum(self.router.rejections.values()),
            "rejections_by_reason": dict(sorted(self.router.rejections.items())),
            "dust": {s: str(q) for s, q in sorted(pf.dust.items())},
            "transitions": self.counts["transitions"],
            "rejected_events": self.counts["rejected_events"],
            "guards_blocked": self.counts["guards_blocked"],
            "phases": dict(Counter(st.phase.value for st in self.states.values())),
            "halted": self.halted,
        }


def _exit_of(st: SymbolState) -> ExitState:
    if st.exit is None:
        raise KeyError(f"{st.symbol}: no exit tracker")
    return st.exit
