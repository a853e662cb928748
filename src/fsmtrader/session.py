"""A durable paper-trading session: the engine with its SQLite store, a simulated exchange
with its own database file, and a synthetic market that keeps moving in (accelerated)
wall-clock time — also while the bot is down. Kill it at any instant and start it again:
it restores every symbol and order, resolves what it cannot be sure of by clientOrderId,
reconciles with the exchange, and carries on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.audit import EventBus, JsonlWriter, align_mirror
from fsmtrader.clock import Clock, WallClock
from fsmtrader.config import Settings
from fsmtrader.config_wiring import build_engine
from fsmtrader.control.desk import ControlDesk
from fsmtrader.control.execute import run_control
from fsmtrader.drive import step
from fsmtrader.engine import Engine
from fsmtrader.engine.modes import (
    LIVE,
    MODES_META,
    PAPER,
    adopt_modes,
    check_mode_change,
    encode_modes,
    saved_modes,
    without_off,
)
from fsmtrader.errors import CommitFailed, StoreError
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.exchange.timed import CallStats, TimedExchange
from fsmtrader.exchange.types import Exchange
from fsmtrader.feeds import merge, synthetic_market
from fsmtrader.lookups_only import LookupsOnly
from fsmtrader.markets import MarketFilters
from fsmtrader.progress import Progress
from fsmtrader.reconcile import ReconcileReport, write_report
from fsmtrader.reconcile.run import reconcile_and_book
from fsmtrader.rollout.guard import Guard
from fsmtrader.runner import filters_for, sim_exchange, sim_params
from fsmtrader.state.records import Record
from fsmtrader.store.lock import StateLock
from fsmtrader.store.owner import OWNER_KEY, SYNTHETIC, Owner, claim, held_owner
from fsmtrader.store.price_path import PricePath
from fsmtrader.store.sqlite import SqliteStore, open_store, store_path
from fsmtrader.store.statedir import SIM_FILE, inspect_state_dir

log = logging.getLogger("fsmtrader.session")
SESSION_START_MS = 1_767_225_600_000  # the synthetic market's first bar (2026-01-01)
# The prefix of a halt that only an unreadable exchange caused (lifted by a clean start).
INCOMPLETE = "reconcile incomplete: "
SERVE_EVERY_BARS = 500  # controls are served at least this often while catching up
MARKS_EVERY_S = 2.0  # how often the last prices are saved for `fsmtrader status`


@dataclass
class SessionInfo:
    start_sim_ms: int
    start_wall_s: float
    speed: float
    minutes: int
    warmup: int
    seed: int

    @property
    def end_ms(self) -> int:
        return self.start_sim_ms + self.minutes * 60_000


class DurableSession(ABC):
    """What every durable session shares: one bot per state directory (lock), the SQLite
    store, restoring the engine, the JSONL mirror of the audit table, and recovery with
    reconciliation on start. Subclasses provide the clock, the exchange and the prices."""

    exact_balances = True  # the bot owns the whole (simulated) account
    live_venue = False  # "live" symbols go to a real venue (trade --live), else "paper"
    clock: Clock  # each session's own: accelerated simulated time, or the wall clock

    def __init__(
        self, settings: Settings, state_dir: Path, owner: Owner, *, send: bool = True
    ) -> None:
        self.s = settings
        self.state_dir = state_dir
        self.send = send  # False: creates and cancels are held back (reconcile, recover)
        self.held_back: list[str] = []
        # Controls from other threads (the API), run by the loop between two stimuli.
        self.desk = ControlDesk()
        self.guard: Guard | None = None  # kill switch and loss breakers, from the first pass
        self.marks: dict[str, float] = {}  # last price per symbol: replaced, never mutated
        # With the control plane on, every exchange call is timed for the metrics.
        self.calls: CallStats | None = (
            CallStats() if settings.api.enabled or settings.telegram.enabled else None
        )
        self._marks_saved = 0.0
        db = store_path(state_dir, settings.database_url)
        inspect_state_dir(state_dir, db, owner)  # read-only: a refusal touches nothing
        self.lock = StateLock(state_dir).acquire()
        self.price_path = PricePath(state_dir)  # what preflight replays (entry parity)
        try:
            self.store: SqliteStore = open_store(db, synchronous=settings.store.synchronous)
        except BaseException:
            self.lock.release()
            raise
        try:
            self.snap = self.store.load()
            record = claim(self.snap.meta, owner, state_dir)  # again, now under the lock
            if record is not None:
                self.store.set_meta(OWNER_KEY, record.to_json())
                self.snap.meta[OWNER_KEY] = record.to_json()
        except BaseException:
            self.store.close()
            self.lock.release()
            raise

    def _make_engine(
        self,
        clock: Clock,
        exchange: Exchange,
        filters: dict[str, MarketFilters],
        starting_cash: Decimal | None = None,
    ) -> Engine:
        snap = self.snap
        self.bus = EventBus()
        if self.calls is not None:
            exchange = TimedExchange(exchange, self.calls)
        if not self.send:
            lookups = LookupsOnly(exchange)
            self.held_back = lookups.held_back
            exchange = lookups
        engine = build_engine(
            self.s,
            clock=self.price_path.clock(clock),  # its readings go into the price path
            exchange=exchange,
            filters=filters,
            bus=self.bus,
            starting_cash=starting_cash,
            live=self.live_venue,
        )
        adopted = self._start_modes(engine.policy.modes)
        self.restored = bool(snap.symbols or snap.orders)
        if self.restored:
            engine.restore(snap)
            engine.router.dirty.update(adopted)  # saved again, with their mode
        engine.attach_store(self.store)
        self._open_jsonl()
        self.store.on_committed.append(self._write_jsonl)
        self.engine = engine
        return engine

    def _start_modes(self, modes: Mapping[str, str]) -> list[str]:
        """Refuse a mode change of a symbol that is not flat (nothing written then), give
        older intents their mode, leave off symbols out, save the modes in force."""
        kind_mode = LIVE if self.live_venue else PAPER
        before = saved_modes(self.snap, kind_mode)
        check_mode_change(self.snap, before, modes)
        adopted = adopt_modes(self.snap.orders, before, kind_mode)
        without_off(self.snap, modes)
        self.store.set_meta(MODES_META, encode_modes(modes))
        self.snap.meta[MODES_META] = encode_modes(modes)
        return adopted

    # --- the JSONL mirror of the audit table --------------------------------------------
    def _write_jsonl(self, batch: list[tuple[int, Record]]) -> None:
        try:
            for audit_id, record in batch:
                self.audit({"audit_id": audit_id, **record})
            self.audit.flush()
        except OSError as exc:
            raise CommitFailed(f"{self.audit.path}: writing the audit failed ({exc})") from None

    def _open_jsonl(self) -> None:
        """Open audit.jsonl ending where the database does: cut what a lost WAL tail took
        from the database (its ids would be reused), append what a crash kept out of the
        file (it is written after each commit)."""
        path = self.state_dir / "audit.jsonl"
        db_last = self.store.last_audit_id()
        try:
            last = align_mirror(path, db_last)
            self.audit = JsonlWriter(path)
            if last < db_last:
                for audit_id, text in self.store.audit_since(last):
                    self.audit({"audit_id": audit_id, **json.loads(text)})
                self.audit.flush()
        except OSError as exc:
            raise StoreError(f"{path}: cannot write the audit ({exc})") from None

    @abstractmethod
    def start(self) -> ReconcileReport:
        """Catch up with the prices, then recover and reconcile (``_recover``)."""

    def _recover(self, now: int) -> ReconcileReport:
        """Resolve every intent whose outcome is unknown (by clientOrderId), feed the
        answers back to the symbols, fire what timed out while we were down, reconcile
        both ways: what the exchange explains is booked, anything else halts entries."""
        engine = self.engine
        self.price_path.recover(now)
        touched = engine.router.recover()
        for rec in touched:
            engine.on_order_update(rec)
        engine.run_timers(now)
        report = reconcile_and_book(
            engine,
            self.store,
            self.snap.meta,
            exact=self.exact_balances,
            visibility_ms=self.s.exchange.window_ms,
        )
        report.recovered_intents = len(touched)
        write_report(report, self.state_dir)
        if report.incomplete:
            # The exchange could not be read: the books are unproven, so no new entries
            # until a start that reads everything (which lifts this halt, and only this).
            if not engine.halted:
                engine.halt(INCOMPLETE + report.halt_reason())
        elif not report.ok and self.s.halts.on_reconcile_mismatch:
            engine.halt(report.halt_reason())
        elif report.ok and engine.halted.startswith(INCOMPLETE):
            engine.resume_entries()
        self._guard().kill.apply(engine, flatten=False)  # STOP: no entry from the first bar
        engine.commit()
        return report

    def reconcile_now(self) -> ReconcileReport:
        """On-demand reconciliation: resolve what is uncertain (look-ups only, nothing is
        sent), compare with the exchange both ways, book what it explains (a fill found
        on the exchange), write the report. No trading."""
        touched = self.engine.router.recover()
        report = reconcile_and_book(
            self.engine,
            self.store,
            self.snap.meta,
            exact=self.exact_balances,
            visibility_ms=self.s.exchange.window_ms,
        )
        report.recovered_intents = len(touched)
        write_report(report, self.state_dir)
        self.engine.commit()
        return report

    def retry_stats(self) -> Mapping[str, Any]:
        """What the venue adapter's retries counted (nothing to count on the simulator)."""
        return {}

    # --- between two stimuli: controls, marks -------------------------------------------
    def service(self) -> None:
        """Run the controls that came in, and publish the last prices (a new dict, so a
        reader in another thread never sees one half-written); then the kill switch and
        the loss breakers (``rollout.guard``); save the prices now and then for
        `fsmtrader status`."""
        self.desk.serve(lambda action, args, who: run_control(self, action, args, who))
        marks = {sym: st.signal.last_close for sym, st in self.engine.states.items()}
        self.marks = marks
        self._guard().service()
        wall = time.monotonic()
        if wall - self._marks_saved >= MARKS_EVERY_S and not self.store.broken:
            self._marks_saved = wall
            self.store.set_meta("marks", json.dumps(marks))

    def _guard(self) -> Guard:
        if self.guard is None:
            self.guard = Guard(self)
        return self.guard

    def idle(self, seconds: float) -> None:
        """Wait for the next round, at once when a control arrives."""
        self.desk.wait(seconds)

    def close(self) -> None:
        """Commit what is left (not after a failed write: the file stays as it was, and
        the next start resolves and reconciles from there), release everything."""
        self.desk.close()
        try:
            if not self.store.broken:
                self.engine.commit()
            with contextlib.suppress(OSError):  # the disk that failed a write
                self.audit.close()
            self.store.close()
            self.price_path.close()
            close = getattr(self.engine.exchange, "close", None)
            if close is not None:
                close()
        finally:
            self.lock.release()


class PaperSession(DurableSession):
    """A durable paper session on a synthetic market and a simulated exchange that keeps
    its own database file (it outlives the bot)."""

    def __init__(
        self,
        settings: Settings,
        state_dir: Path,
        *,
        hours: float,
        speed: float,
        send: bool = True,
    ) -> None:
        super().__init__(settings, state_dir, Owner("paper", SYNTHETIC), send=send)
        try:
            self._open(hours, speed)
        except BaseException:
            sim = getattr(self, "exchange", None)  # opened before a refused start
            if sim is not None:
                sim.close()
            self.store.close()
            self.lock.release()
            raise

    def _open(self, hours: float, speed: float) -> None:
        s, snap = self.s, self.snap
        if "session" in snap.meta:
            self.info = SessionInfo(**json.loads(snap.meta["session"]))
        else:
            warm = s.entry.anchor_window_min
            self.info = SessionInfo(
                start_sim_ms=SESSION_START_MS + warm * 60_000,
                start_wall_s=time.time(),
                speed=speed,
                minutes=int(hours * 60),
                warmup=warm,
                seed=s.seed,
            )
            self.store.set_meta("session", json.dumps(self.info.__dict__))
        info = self.info
        market = synthetic_market(
            s.market.symbols,
            minutes=info.warmup + info.minutes,
            seed=info.seed,
            start_ms=SESSION_START_MS,
        )
        self.history = [c.slice(0, info.warmup) for c in market]
        self.series = [c.slice(info.warmup, info.warmup + info.minutes) for c in market]
        self.filters = sim_params(s).with_fees(filters_for(market, s.market.quote))
        self.clock = WallClock(
            info.speed, origin_ms=info.start_sim_ms, origin_wall_s=info.start_wall_s
        )
        sim_clock = self.price_path.exchange_clock(self.clock)
        self.exchange = open_sim_exchange(s, self.state_dir, self.filters, sim_clock)
        running = self._make_engine(self.clock, self.exchange, self.filters).states
        self.history = [c for c in self.history if c.symbol in running]  # not the off ones
        self.series = [c for c in self.series if c.symbol in running]
        self.last_bar_ts = int(snap.meta.get("last_bar_ts", "0"))

    # --- running ------------------------------------------------------------------------
    def start(self) -> ReconcileReport:
        """Catch up with the market, recover open intents, reconcile, write the report."""
        now = self.clock.now_ms()
        engine, path = self.engine, self.price_path
        path.restart(now)
        for hist in self.history:
            primer = list(zip(hist.ts, hist.close, hist.volume, strict=True))
            path.prime(hist.symbol, primer)
            engine.states[hist.symbol].signal.prime(primer)
        for ts, sym, _o, _h, _lo, c, v in self._bars(after=0, upto=min(now, self.last_bar_ts)):
            path.signal(ts, sym, c, v)
            engine.states[sym].signal.update(ts, c, v)
        # The exchange moved on while we were down: it sees the bars we missed.
        for ts, sym, _o, h, lo, c, v in self._bars(after=self.last_bar_ts, upto=now):
            path.gap(ts, sym, h, lo, c, v)
            self.exchange.update_market(sym, ts, c, h, lo, v)
            engine.states[sym].signal.update(ts, c, v)
            self.last_bar_ts = ts
        self.store.set_meta("last_bar_ts", str(self.last_bar_ts))
        return self._recover(now)

    def run(
        self,
        *,
        stop_after_s: float | None = None,
        progress: Progress | None = None,
        poll_s: float = 0.02,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> dict[str, Any]:
        """Trade until the session's simulated end (or ``stop_after_s`` of wall time, or
        until ``should_stop`` says so, e.g. after SIGTERM)."""
        engine, ex = self.engine, self.exchange
        wall_stop = time.monotonic() + stop_after_s if stop_after_s is not None else None
        total = sum(len(c) for c in self.series)
        done = sum(1 for _ in self._bars(after=0, upto=self.last_bar_ts))
        while True:
            now = min(self.clock.now_ms(), self.info.end_ms)
            for ts, sym, _o, h, lo, c, v in self._bars(after=self.last_bar_ts, upto=now):
                self.price_path.bar(ts, sym, h, lo, c, v, self.clock.now_ms())
                step(engine, ex, ts, sym, h, lo, c, v, None, self._seen)
                done += 1
                if done % SERVE_EVERY_BARS == 0:  # a long catch-up still takes controls
                    self.service()
            self.price_path.timers(now, engine.next_due())
            engine.run_timers(now)
            self.price_path.flush()
            engine.check_stuck()
            self.service()
            if progress is not None:
                progress(done, total)
            if (
                now >= self.info.end_ms
                or (wall_stop is not None and time.monotonic() >= wall_stop)
                or should_stop()
            ):
                break
            self.idle(poll_s)
        return engine.summary()

    def _seen(self, ts: int) -> None:
        """The bar at ``ts`` is the last one the exchange has seen; the engine's next
        commit makes that durable, and a restart feeds the exchange the bars after it."""
        self.last_bar_ts = ts
        self.store.set_meta("last_bar_ts", str(ts))

    def _bars(
        self, *, after: int, upto: int
    ) -> Iterator[tuple[int, str, float, float, float, float, float]]:
        parts = []
        for c in self.series:
            lo = bisect_right(c.ts, after)
            hi = bisect_right(c.ts, upto)
            if hi > lo:
                parts.append(c.slice(lo, hi))
        return merge(parts) if parts else iter(())


def session_kind(state_dir: Path, s: Settings) -> str:
    """'paper', 'paper-live', 'live' or '' (nothing there), read without locking or
    changing anything."""
    try:
        rows = SqliteStore.read_meta(store_path(state_dir, s.database_url))
    except StoreError:
        return "paper"  # let the session's own checks explain what is wrong with the file
    owner = held_owner(rows or {})
    return owner.kind if owner is not None else ""


def open_sim_exchange(
    s: Settings, state_dir: Path, filters: dict[str, MarketFilters], clock: Clock
) -> SimExchange:
    """The session's exchange, in its own database file (it outlives the bot); a file of
    other markets or parameters is refused in one line, untouched."""
    try:
        return sim_exchange(s, filters, clock, path=state_dir / SIM_FILE)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


def session_filters(s: Settings) -> dict[str, MarketFilters]:
    """Filters of a session's symbols, derived from the synthetic market's first price."""
    first = synthetic_market(s.market.symbols, minutes=1, seed=s.seed, start_ms=SESSION_START_MS)
    return sim_params(s).with_fees(filters_for(first, s.market.quote))
