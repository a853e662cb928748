"""Entry parity: the session's recorded price path (``store.price_path``) replayed through
the backtest engine — the same settings, a clock the replay moves, a fresh simulated
exchange — must make the same entry decisions: the same decision ids, each with the same
outcome (placed, blocked by the same guards, observed). Restarts are replayed as restarts
(the engine rebuilt from its own books), so a session killed and started again replays
as it ran. What steered the session's entries from outside its decisions (a halt, a loss
breaker, the kill switch, a person's controls) is applied to the replay at the same
moment, from the session's own audit records, so the decisions after it compare too."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsmtrader.audit import EventBus
from fsmtrader.config import Settings
from fsmtrader.config_wiring import build_engine
from fsmtrader.drive import step
from fsmtrader.engine import Engine
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.markets import MarketFilters
from fsmtrader.preflight.report import Criterion
from fsmtrader.runner import sim_exchange
from fsmtrader.state.records import Record
from fsmtrader.store.price_path import read_price_path
from fsmtrader.store.sqlite import SqliteStore

__all__ = ["ReplayClock", "entry_decisions", "entry_parity", "replay"]

BAR = "n/n identical, n >= 1 (the reference asks 10/10)"
NAME = "entry parity"


class ReplayClock:
    """The engine clock as the session read it: each row loads the readings the session's
    engine made during it, and every ``now_ms()`` answers the next one (after the last,
    the last again)."""

    def __init__(self) -> None:
        self._ms = 0
        self._queue: deque[int] = deque()

    def load(self, reads: Iterable[int], at: int | None = None) -> None:
        self._queue = deque(int(r) for r in reads)
        if at is not None:
            self._ms = int(at)

    def now_ms(self) -> int:
        if self._queue:
            self._ms = self._queue.popleft()
        return self._ms

    @property
    def ms(self) -> int:
        return self._ms


class ExchangeClock(ReplayClock):
    """The simulated exchange's clock as the session's exchange read it; past the last
    reading of a row, the engine clock's time."""

    def __init__(self, engine: ReplayClock) -> None:
        super().__init__()
        self._engine = engine

    def now_ms(self) -> int:
        if self._queue:
            self._ms = self._queue.popleft()
            return self._ms
        return self._engine.ms


KILL_SWITCH = "kill switch: STOP file"


def steering(records: Iterable[Mapping[str, Any]]) -> list[tuple[int, str, str]]:
    """``(ts, what, argument)`` of each outside change of the session's entries, in order:
    ``halt`` (its reason), ``resume``, ``stop`` / ``lift`` (entries stopped or allowed
    again), ``exit`` (a symbol's position forced out)."""
    out: list[tuple[int, str, str]] = []
    for r in records:
        kind, ts, action = r.get("kind"), int(r.get("ts", 0) or 0), r.get("action")
        if kind == "halt":
            out.append((ts, "halt", str(r.get("reason", ""))))
        elif kind == "resume":
            out.append((ts, "resume", ""))
        elif kind == "kill_switch" and action in ("stop", "lift"):
            out.append((ts, str(action), KILL_SWITCH))
        elif kind == "kill_switch" and action == "flatten":
            out.append((ts, "exit", str(r.get("symbol", ""))))
        elif kind == "control" and r.get("result") == 200:
            what = {"stopentry": "stop", "resume": "lift", "forceexit": "exit"}.get(str(action))
            if what is not None:
                out.append((ts, what, str(r.get("symbol", "")) or f"by {r.get('who')}"))
    return out


def entry_decisions(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Each entry decision (a SIGNAL transition's decision id) and its outcome: ``placed``
    (an order was sent for it), ``observed`` (observe mode audited it), ``blocked: <the
    guards>``, or the event that ended it."""
    outcome: dict[str, str] = {}
    first: dict[str, str] = {}
    for r in records:
        kind, did = r.get("kind"), str(r.get("decision_id", ""))
        if kind == "phase" and r.get("event") == "SIGNAL":
            outcome.setdefault(did, "signal only")
        elif did not in outcome:
            continue
        elif kind == "phase" and did not in first:
            event = str(r.get("event"))
            first[did] = event
            if event == "GUARDS_BLOCKED":
                outcome[did] = f"blocked: {r.get('reason')}"
            elif event != "GUARDS_PASSED":
                outcome[did] = event
        elif kind == "order" and first.get(did) == "GUARDS_PASSED":
            outcome[did] = "placed"
        elif kind == "observed":
            outcome[did] = "observed"
    for did, event in first.items():
        if event == "GUARDS_PASSED" and outcome[did] == "signal only":
            outcome[did] = "passed, nothing placed"
    return outcome


@dataclass
class Replay:
    """A backtest engine that the recorded rows drive, rebuilt from its books at restarts."""

    settings: Settings
    filters: dict[str, MarketFilters]
    db: Path
    clock: ReplayClock = field(default_factory=ReplayClock)
    records: list[Record] = field(default_factory=list)
    last_bar_ts: int = 0
    steer: list[tuple[int, str, str]] = field(default_factory=list)  # still to apply

    def __post_init__(self) -> None:
        self.xclock = ExchangeClock(self.clock)
        self.exchange: SimExchange = sim_exchange(self.settings, self.filters, self.xclock)
        self.store = SqliteStore(self.db)
        self.engine: Engine | None = None

    def _build(self) -> Engine:
        bus = EventBus()
        bus.subscribe(self.records.append)
        engine = build_engine(
            self.settings, clock=self.clock, exchange=self.exchange, filters=self.filters, bus=bus
        )
        snap = self.store.load()
        if snap.symbols or snap.orders:
            engine.restore(snap)
        engine.attach_store(self.store)
        return engine

    def row(self, row: list[Any]) -> None:
        """One recorded row (see ``store.price_path``); its last two items: the engine's
        and the exchange's clock readings."""
        k, reads = row[0], row[-2]
        self.xclock.load(row[-1])
        at = row[-3] if k == "b" else row[1] if k in ("r", "v", "t") else None
        if at is not None and self.steer and self.steer[0][0] < at:
            self._steer(at)
        if k == "r":
            self.clock.load(reads, row[1])
            if self.engine is not None:
                self.engine.commit()
            self.engine = self._build()
            return
        e = self.engine
        if e is None:
            raise ValueError("the price path does not begin with a start")
        if k in ("v", "t", "b"):
            self.clock.load(reads, row[-3] if k == "b" else row[1])
        else:
            self.clock.load(reads)
        if k == "p":
            e.states[row[1]].signal.prime([(int(a), float(b), float(c)) for a, b, c in row[2]])
        elif k == "s":
            e.states[row[2]].signal.update(row[1], row[3], row[4])
        elif k in ("g", "m"):
            _, ts, sym, high, low, close, vol, _reads, _xreads = row
            self.exchange.update_market(sym, ts, close, high, low, vol)
            if k == "g":
                e.states[sym].signal.update(ts, close, vol)
        elif k == "v":
            for rec in e.router.recover():
                e.on_order_update(rec)
            e.run_timers(row[1])
            e.commit()
        elif k == "b":
            _, ts, sym, high, low, close, vol, _now, _reads, _xreads = row
            step(e, self.exchange, ts, sym, high, low, close, vol)
            self.last_bar_ts = max(self.last_bar_ts, ts)
        elif k == "t":
            e.run_timers(row[1])
        else:
            raise ValueError(f"unknown row kind {k!r}")

    def _steer(self, before: int) -> None:
        """Apply what steered the session before ``before`` (between its last row and
        this one: the session serves controls and guards between two rounds)."""
        e = self.engine
        while self.steer and self.steer[0][0] < before:
            _, what, arg = self.steer.pop(0)
            if e is None:
                continue
            if what == "halt":
                e.halt(arg)
            elif what == "resume":
                e.resume_entries()
            elif what == "stop":
                e.entries_stopped = arg
            elif what == "lift":
                e.entries_stopped = ""
            elif what == "exit" and arg in e.states:
                e.force_exit(arg)
            e.commit()

    def close(self) -> None:
        self.store.close()
        self.exchange.close()


def replay(
    settings: Settings,
    filters: dict[str, MarketFilters],
    path: Path,
    work: Path,
    steer: list[tuple[int, str, str]] | None = None,
) -> tuple[dict[str, str], int, int]:
    """(decisions, last bar ts, rows) of the recorded path replayed, ``steer`` applied."""
    rep = Replay(settings, filters, work / "replay.db", steer=list(steer or []))
    n = 0
    try:
        for row in read_price_path(path):
            rep.row(row)
            n += 1
    finally:
        rep.close()
    return entry_decisions(rep.records), rep.last_bar_ts, n


def _bar_ts(decision_id: str) -> int:
    """The bar a decision id names (``BTCUSDT-<ts>-entry``)."""
    try:
        return int(decision_id.rsplit("-", 2)[1])
    except (IndexError, ValueError):
        return 0


def entry_parity(
    settings: Settings,
    filters: dict[str, MarketFilters],
    path: Path,
    work: Path,
    session_records: Iterable[Mapping[str, Any]],
    books_until: int,
) -> Criterion:
    """``books_until``: the last bar the copied books had seen. A running bot's price path
    runs ahead of the copy; decisions are compared up to the bar both have complete."""
    if not path.is_file():
        return Criterion(
            NAME,
            False,
            "not measured",
            BAR,
            [
                f"no price path in the state directory ({path.name}): the session ran on a "
                "version that did not record it; run a new paper session"
            ],
        )
    try:
        records = list(session_records)
        replayed, last_ts, rows = replay(settings, filters, path, work, steering(records))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return Criterion(NAME, False, "failed", BAR, [f"{path.name}: cannot replay it ({exc!r})"])
    if last_ts > books_until:  # the bot went on after the copy: its last bar may be half done
        last_ts = books_until - 1
    session = {d: o for d, o in entry_decisions(records).items() if _bar_ts(d) <= last_ts}
    reasons = []
    matched = 0
    for did, outcome in session.items():
        theirs = replayed.get(did)
        if theirs == outcome:
            matched += 1
        else:
            reasons.append(
                f"{did}: the session {outcome}, the replay {theirs or 'made no decision'}"
            )
    extra = [d for d in replayed if d not in session and _bar_ts(d) <= last_ts]
    reasons += [f"{d}: only the replay decided ({replayed[d]})" for d in extra]
    n = len(session)
    if n == 0:
        reasons.append("no entry decision in the session to compare: run it longer")
    figure = f"{matched}/{n} identical ({len(extra)} only in the replay; {rows} rows replayed)"
    return Criterion(NAME, not reasons, figure, BAR, reasons[:20])
