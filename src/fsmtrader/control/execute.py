"""Running a control in the engine's thread: the refusal rules first, then the engine's own
operation, then an audit record naming who asked and what came of it, committed with the
change it made."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from fsmtrader.config import Settings
from fsmtrader.control import rules
from fsmtrader.control.desk import ControlResult
from fsmtrader.engine import Engine
from fsmtrader.reconcile import ReconcileReport


class Steered(Protocol):
    """What a control needs of a running session (a ``Steered`` is one)."""

    s: Settings
    engine: Engine

    def reconcile_now(self) -> ReconcileReport: ...


ALL = "all"


def run_control(session: Steered, action: str, args: Mapping[str, str], who: str) -> ControlResult:
    """One control on a running session (the desk's runner)."""
    symbol = args.get("symbol", "")
    if action == "stopentry":
        result = _stopentry(session, who)
    elif action == "resume":
        result = _resume(session)
    elif action == "forceexit":
        result = _forceexit(session, symbol)
    elif action == "recover":
        result = _recover(session, symbol)
    else:
        result = _reconcile(session)
    engine = session.engine
    engine.bus.publish(
        {
            "kind": "control",
            "ts": engine.clock.now_ms(),
            "action": action,
            "who": who,
            "symbol": symbol,
            "result": result.status,
            "message": result.message,
        }
    )
    engine.commit()
    return result


def _stopentry(session: Steered, who: str) -> ControlResult:
    engine = session.engine
    why = rules.refuse_stopentry(engine.entries_stopped)
    if why:
        return ControlResult(409, why)
    at = datetime.fromtimestamp(engine.clock.now_ms() / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    engine.entries_stopped = f"by {who} at {at} UTC"
    return ControlResult(
        200, f"entries stopped {engine.entries_stopped}; open positions are still managed"
    )


def _resume(session: Steered) -> ControlResult:
    """Lift a person's stop; lift a halt only on books a reconcile finds right (the same
    rule as ``recover --clear-halt``)."""
    engine = session.engine
    why = rules.refuse_resume(engine.entries_stopped, engine.halted)
    if why:
        return ControlResult(409, why)
    said = []
    if engine.entries_stopped:
        said.append(f"stop lifted (it was {engine.entries_stopped})")
        engine.entries_stopped = ""
    if engine.halted:
        report = session.reconcile_now()
        if not report.ok:
            said.append(f"the halt stays ({engine.halted}): reconcile finds {report.summary()}")
            return ControlResult(409, "; ".join(said), {"reconcile": report.to_dict()})
        said.append(f"halt lifted after a clean reconcile (it was: {engine.halted})")
        engine.resume_entries()
    return ControlResult(200, "; ".join(said) + "; new entries allowed")


def _forceexit(session: Steered, symbol: str) -> ControlResult:
    engine = session.engine
    if symbol == ALL:
        started = [s for s in engine.symbols if engine.force_exit(s)]
        if not started:
            return ControlResult(409, "no symbol is in POSITION; nothing to force-exit")
        phases = {s: engine.states[s].phase.value for s in started}
        return ControlResult(
            200, f"force-exit started for {', '.join(started)}", {"symbols": phases}
        )
    why = rules.unknown_symbol(symbol, engine.symbols)
    if why:
        return ControlResult(400, why)
    st = engine.states[symbol]
    why = rules.refuse_forceexit(symbol, st.phase, engine.held(symbol))
    if why or not engine.force_exit(symbol):
        return ControlResult(409, why or f"{symbol} is in {st.phase.value}")
    now = engine.states[symbol].phase.value
    return ControlResult(
        200, f"{symbol}: force-exit started, now {now}", {"symbols": {symbol: now}}
    )


def _recover(session: Steered, symbol: str) -> ControlResult:
    engine = session.engine
    why = rules.unknown_symbol(symbol, engine.symbols)
    if why:
        return ControlResult(400, why)
    phase = engine.states[symbol].phase
    why = rules.refuse_recover(symbol, phase)
    if why or not engine.recover(symbol):
        return ControlResult(409, why or f"{symbol} is in {phase.value}, not in ERROR")
    now = engine.states[symbol].phase.value
    return ControlResult(200, f"{symbol}: recovered, now {now}", {"symbols": {symbol: now}})


def _reconcile(session: Steered) -> ControlResult:
    """Reconcile now, halting on a difference exactly as a start does."""
    engine = session.engine
    report = session.reconcile_now()
    if not report.ok and session.s.halts.on_reconcile_mismatch and not engine.halted:
        engine.halt(report.halt_reason())
    return ControlResult(200, report.summary(), {"reconcile": report.to_dict()})
