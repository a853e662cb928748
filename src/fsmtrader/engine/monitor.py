"""Stuck-state detection: a symbol far longer in a phase than any timeout allows, or a
position held in IDLE (nobody watches it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal

from fsmtrader.audit import EventBus
from fsmtrader.clock import Clock
from fsmtrader.engine.policy import TimeoutPolicy
from fsmtrader.fsm.phases import Event, Phase
from fsmtrader.fsm.table import LONG_BY_DESIGN
from fsmtrader.state.records import AlertRecord, RejectedEventRecord
from fsmtrader.state.symbol import SymbolState

P = Phase


def is_stuck(st: SymbolState, held: Decimal, now: int, p: TimeoutPolicy) -> bool:
    if st.phase is P.IDLE and held > 0:
        return True  # a position nobody watches
    if st.phase in LONG_BY_DESIGN:
        return False
    allowed = p.max_hold_ms + p.stuck_ms if st.phase is P.POSITION else p.stuck_ms
    return now - st.entered_ms > allowed


def stuck_symbols(
    states: Iterable[SymbolState], held: Callable[[str], Decimal], now: int, p: TimeoutPolicy
) -> list[SymbolState]:
    return [st for st in states if is_stuck(st, held(st.symbol), now, p)]


def stuck_alert(st: SymbolState, now: int) -> AlertRecord:
    return {
        "kind": "alert",
        "ts": now,
        "symbol": st.symbol,
        "alert": "stuck",
        "detail": f"{st.phase} since {st.entered_ms}",
    }


def alert_stuck(
    stuck: list[SymbolState], counts: Counter[str], bus: EventBus, clock: Clock
) -> list[SymbolState]:
    """Publish one alert per stuck episode (counted); returns ``stuck``."""
    for st in stuck:
        if not st.stuck_alerted:
            st.stuck_alerted = True
            counts["stuck_alerts"] += 1
            bus.publish(stuck_alert(st, clock.now_ms()))
    return stuck


def rejected_event(symbol: str, phase: Phase, event: Event, now: int) -> RejectedEventRecord:
    """The record of an event the table has no row for in ``phase``."""
    return {
        "kind": "rejected_event",
        "ts": now,
        "symbol": symbol,
        "phase": phase.value,
        "event": event.value,
    }
