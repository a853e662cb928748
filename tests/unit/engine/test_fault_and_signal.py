"""The two decisions the shell used to make itself: what a failing decision or command
causes (errors.fault) and what a bar through the trigger starts (entry.signal)."""

from __future__ import annotations

from fsmtrader.engine import entry, errors
from fsmtrader.engine.commands import Fire, Halt
from fsmtrader.errors import PortfolioError
from fsmtrader.fsm.machine import Transition
from fsmtrader.fsm.phases import Action, Event, Phase
from fsmtrader.orders.intent import make_decision_id
from fsmtrader.state.symbol import SymbolState

SYM = "BTC/USDT"


def transition(action: Action) -> Transition:
    return Transition(SYM, 3, 1_000, Phase.WAIT_FILL, Event.TIMEOUT, Phase.ERROR, action, "d", "")


def test_a_failure_parks_the_symbol_with_its_error() -> None:
    d = errors.fault(SymbolState(SYM), transition(Action.CANCEL_BUY), ValueError("bad tick"))
    assert d.changes == {"last_error": "ValueError: bad tick"}
    assert d.commands == [Fire(Event.FAULT, "ValueError: bad tick")]


def test_a_failure_outside_a_transition_parks_too() -> None:
    d = errors.fault(SymbolState(SYM), None, KeyError("rec"))
    assert d.commands == [Fire(Event.FAULT, "KeyError: 'rec'")]


def test_a_failure_inside_errors_own_entry_does_not_loop() -> None:
    d = errors.fault(SymbolState(SYM), transition(Action.ENTER_ERROR), ValueError("x"))
    assert d.commands == [] and d.changes == {"last_error": "ValueError: x"}


def test_an_accounting_break_halts_even_an_engine_already_halted() -> None:
    exc = PortfolioError("release 5 > reserved 3")
    d = errors.fault(SymbolState(SYM), transition(Action.CANCEL_BUY), exc)
    halt, fire = d.commands
    assert isinstance(halt, Halt) and halt.always
    assert "accounting invariant broken" in halt.reason and SYM in halt.reason
    assert fire == Fire(Event.FAULT, "PortfolioError: release 5 > reserved 3")


def test_a_signal_starts_a_new_decision() -> None:
    d = entry.signal(SYM, 60_000, 97.0, 100.0)
    assert d.changes == {"decision_id": make_decision_id(SYM, 60_000, "entry")}
    assert d.commands == [Fire(Event.SIGNAL, "close=97.0 anchor=100.0")]
    assert entry.signal(SYM, 120_000, 97.0, 100.0).changes != d.changes
