"""The ERROR phase: what entering it decides (cancel, count, halt rule, alert) and what
leaving it does (give up the order in flight, then IDLE's check)."""

from __future__ import annotations

from fsmtrader.engine.commands import (
    Cancel,
    Command,
    Decision,
    Fire,
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
from fsmtrader.errors import PortfolioError
from fsmtrader.fsm.machine import Transition
from fsmtrader.fsm.phases import Action, Event
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


def fault(st: SymbolState, t: Transition | None, exc: Exception) -> Decision:
    """What a failing decision or command causes: the symbol records the error and is
    parked (FAULT), except inside ERROR's own entry (no loop). An accounting invariant
    break halts the engine too: it is not a transient error."""
    msg = f"{type(exc).__name__}: {exc}"
    commands: list[Command] = []
    if isinstance(exc, PortfolioError):
        commands.append(Halt(f"{st.symbol}: accounting invariant broken ({msg})", always=True))
    if t is None or t.action is not Action.ENTER_ERROR:
        commands.append(Fire(Event.FAULT, msg))
    return Decision(SymbolChanges(last_error=msg), commands)
