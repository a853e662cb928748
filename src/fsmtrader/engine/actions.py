"""Which decision each action of the transition table runs (data, like the table)."""

from __future__ import annotations

from collections.abc import Callable

from fsmtrader.engine import entry, errors, exit, idle
from fsmtrader.engine.commands import Decision
from fsmtrader.engine.policy import EnginePolicy
from fsmtrader.engine.view import SymbolView
from fsmtrader.fsm.machine import Transition
from fsmtrader.fsm.phases import Action
from fsmtrader.state.symbol import SymbolState

A = Action
ActionDecider = Callable[[SymbolState, Transition, SymbolView, EnginePolicy], Decision]

DECISIONS: dict[Action, ActionDecider] = {
    A.NONE: idle.settle_idle,
    A.BLOCK_ENTRY: entry.block_entry,
    A.EVALUATE_ENTRY: entry.evaluate_entry,
    A.SUBMIT_BUY: entry.plan_buy,
    A.CHECK_BUY: entry.check_buy,
    A.CANCEL_BUY: entry.cancel_buy,
    A.ABANDON_BUY: entry.abandon_buy,
    A.OPEN_POSITION: entry.open_position,
    A.EVALUATE_EXIT: exit.evaluate_exit,
    A.SUBMIT_SELL: exit.plan_sell,
    A.CHECK_SELL: exit.check_sell,
    A.CANCEL_SELL: exit.cancel_sell,
    A.RESUME_POSITION: exit.resume_position,
    A.RECORD_TRADE: exit.record_trade,
    A.START_COOLDOWN: idle.settle_idle,
    A.ENTER_ERROR: errors.enter_error,
    A.LEAVE_ERROR: errors.leave_error,
}
