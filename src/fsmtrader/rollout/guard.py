"""The session-side shell of the rollout guards: run by ``DurableSession.service`` (each
loop pass, and every 500 bars of a catch-up), it brings the engine in line with the kill
switch's file, then checks the loss breakers on the books and the last prices. A crossing
halts through ``engine.halt`` and its ``breaker`` audit record is committed with the halt;
the breakers' own state is saved in the engine meta (key ``breakers``) right after, so a
restart neither forgets a loss nor counts a trade twice.

Durable sessions only (``paper``, ``trade``): a backtest or demo never calls ``service``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from fsmtrader.config import Settings
from fsmtrader.engine import Engine
from fsmtrader.rollout.breakers import BreakerState, Crossing, Figures, check, equity
from fsmtrader.rollout.kill_switch import KillSwitch
from fsmtrader.state.delta import Snapshot
from fsmtrader.state.records import BreakerRecord
from fsmtrader.store.sqlite import SqliteStore

__all__ = ["META_KEY", "Guard", "Guarded"]

log = logging.getLogger("fsmtrader.guard")
META_KEY = "breakers"
SAVE_PEAK_EVERY_S = 2.0  # a peak that only rose is saved this often (a stale one is safe)


class Guarded(Protocol):
    """What the guard needs of a durable session."""

    s: Settings
    engine: Engine
    store: SqliteStore
    state_dir: Path
    snap: Snapshot
    marks: dict[str, float]


class Guard:
    """Kill switch and loss breakers of one running session."""

    def __init__(self, session: Guarded) -> None:
        self.session = session
        self.kill = KillSwitch(session.state_dir)
        try:
            self.state = BreakerState.from_json(session.snap.meta.get(META_KEY, ""))
        except ValueError as exc:  # re-armed from the current figures on the first check
            log.error("%s; the breakers start again from the current figures", exc)
            self.state = BreakerState()
        self._saved = self.state
        self._saved_at = 0.0

    def service(self) -> None:
        """One pass: the kill switch, then the breakers; commits what they changed."""
        session = self.session
        if session.store.broken:
            return  # the session is failing its writes; a restart puts things right
        engine = session.engine
        changed = self.kill.apply(engine)
        changed = self._breakers(engine, session.marks) or changed
        if changed:
            engine.commit()
        self._save()

    def _breakers(self, engine: Engine, marks: Mapping[str, float]) -> bool:
        pf = engine.portfolio
        seen = min(self.state.trades_seen, len(pf.trades))
        figures = Figures(
            now_ms=engine.clock.now_ms(),
            realized_pnl=pf.realized_pnl,
            equity=equity(pf, marks),
            trades=len(pf.trades),
            new_pnls=tuple(t.realized_pnl for t in pf.trades[seen:]),
            quote=pf.quote,
        )
        before = self.state
        self.state, crossing = check(before, figures, self.session.s.breakers, halted=engine.halted)
        if crossing is not None:
            engine.halt(crossing.reason)
            self._publish(engine, "halt", crossing)
            return True
        if before.tripped and not self.state.tripped:
            lifted = Crossing(
                "",
                f"re-armed from the current figures (the lifted halt was: {before.tripped})",
                {
                    "peak_equity": str(self.state.peak_equity),
                    "day_start_pnl": str(self.state.day_start_pnl),
                },
            )
            self._publish(engine, "rearm", lifted)
            return True
        return False

    def _publish(self, engine: Engine, action: str, c: Crossing) -> None:
        record: BreakerRecord = {
            "kind": "breaker",
            "ts": engine.clock.now_ms(),
            "action": action,
            "breaker": c.breaker,
            "reason": c.reason,
            "figures": c.figures,
        }
        engine.bus.publish(record)

    def _save(self) -> None:
        """Save the state when it changed: at once, unless only the peak rose."""
        state, saved = self.state, self._saved
        if state == saved:
            return
        now = time.monotonic()
        only_peak = replace(state, peak_equity=saved.peak_equity) == saved
        if only_peak and now - self._saved_at < SAVE_PEAK_EVERY_S:
            return
        self.session.store.set_meta(META_KEY, state.to_json())
        self._saved, self._saved_at = state, now
