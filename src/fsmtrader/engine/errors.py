"""The ERROR phase: what entering it decides (cancel, count, halt rule, alert) and what
leaving it does (give up the order in flight, then IDLE's check)."""

from __future__ import annotations

from fsmtrader.engine.commands import (
    Cancel,
    Command,
    Decision,
    Halt,
    Publish,
    SymbolChanges,
    Then,
    decide,
    then,
)
from fsmtrader.engine.idle import abandon_active, after_idle
from fsmtrader.engine.policy import EnginePolicy
from fsmtrader.engine.view import SymbolView
from fsmtrader.fsm.machine import Transition
from fsmtrader.state.records import AlertRecord
from fsmtrader.state.symbol import SymbolState


def halts_after(error_count: int, p: EnginePolicy) -> bool:
    """The halt rule: this many consecutive faults stop new entries."""
    return error_count >= p.errors.max_consecutive_errors


def enter_error(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    count = st.error_count + 1
    commands: list[Command] = []
    rec = v.active
    if rec is not None and not rec.done:
        commands.append(Cancel(rec.intent.intent_id))
    if halts_after(count, p):
        commands.append(Halt(f"{st.symbol}: {count} consecutive errors ({t.reason})"))
    alert: AlertRecord = {
        "kind": "alert",
        "ts": t.ts,
        "symbol": st.symbol,
        "alert": "error",
        "detail": t.reason,
        "error_count": count,
    }
    commands.append(Publish(alert))
    return Decision(SymbolChanges(error_count=count, last_error=t.reason), commands)


def leave_error(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    # forgets the order only once it is over
    return then(abandon_active(v), decide(Then(after_idle, "after_idle")))
