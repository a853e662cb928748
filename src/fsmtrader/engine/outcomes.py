"""What news of an order means for its symbol: one pure function from (phase, record,
held, how the news came) to the event to fire, a settle decision, or nothing.

It replaces the phase switches the shell had for the answer to a submit, a later update
(retry, look-up, restart), a poll and a cancel.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from fsmtrader.engine.commands import Decision, Fire, Settle, SymbolChanges, decide
from fsmtrader.fsm.phases import Event, Phase
from fsmtrader.orders.states import OrderState
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.symbol import SymbolState

P, E, S = Phase, Event, OrderState
ZERO = Decimal(0)
# The router's timer brings these back: nothing to decide yet.
PENDING = frozenset({S.RETRY, S.UNKNOWN, S.ERROR})


class Via(StrEnum):
    """How the news of an order arrived."""

    SUBMIT = "submit"  # the router's answer to our own Place
    UPDATE = "update"  # a retry, a look-up by clientOrderId or a restart
    POLL = "poll"  # a bar refreshed the live order
    CHECK = "check"  # the waiting phase was just entered
    CANCEL = "cancel"  # the answer to the phase's timeout cancel


def outcome_event(
    phase: Phase,
    rec: OrderRecord,
    held: Decimal,
    via: Via = Via.UPDATE,
    filled_before: Decimal = ZERO,
) -> Fire | Settle | None:
    """The event an order's news leads to in ``phase`` (``rec`` is the symbol's order in
    flight), a ``Settle`` when the order is over and its outcome must be decided, or None."""
    if phase is P.PLACE_BUY or phase is P.PLACE_SELL:
        return _placed(phase is P.PLACE_BUY, rec, held)
    if phase is P.WAIT_FILL or phase is P.WAIT_SELL_FILL:
        over = not rec.live if via is Via.CHECK else rec.done
        if over:
            escalate = via is not Via.CANCEL
            return Settle("buy" if phase is P.WAIT_FILL else "sell", escalate=escalate)
        if via is Via.POLL and phase is P.WAIT_FILL and rec.filled > filled_before:
            key = f"{rec.intent.intent_id}:{rec.filled}"
            return Fire(E.BUY_PARTIAL, f"filled {rec.filled}/{rec.amount}", key=key)
        return None
    if phase is P.IDLE and held > 0:
        # The symbol already gave this order up: whatever it filled is a position to
        # manage now (an IDLE symbol must never hold one unwatched).
        return Fire(E.HAS_POSITION, f"a late fill of {rec.client_order_id}")
    return None


def _placed(buy: bool, rec: OrderRecord, held: Decimal) -> Fire | None:
    """The router's answer to a submit (or its later retry) in PLACE_BUY / PLACE_SELL."""
    if rec.state is S.FAILED_FINAL:
        if buy:
            if held > 0:
                return Fire(E.BUY_FILLED, f"kept earlier fills; {rec.reason}")
            return Fire(E.BUY_ABORTED, rec.reason)
        if held <= 0:
            return Fire(E.SELL_FILLED, "nothing left to sell")
        return Fire(E.SELL_BLOCKED, rec.reason)
    if rec.state in PENDING:
        return None
    placed = E.BUY_PLACED if buy else E.SELL_PLACED
    return Fire(placed, rec.client_order_id, key=rec.intent.intent_id)


def order_update(st: SymbolState, rec: OrderRecord, held: Decimal) -> Decision:
    """Later news of an order (retry, look-up, restart). Only the order the symbol waits
    for matters, except in IDLE, where a late fill of an abandoned order is a position."""
    iid = rec.intent.intent_id
    if st.phase is not P.IDLE and st.active_intent != iid:
        return decide()
    changes = SymbolChanges()
    if st.phase is P.IDLE and rec.done and st.active_intent == iid:
        changes["active_intent"] = None  # the symbol gave it up; now it is over
    outcome = outcome_event(st.phase, rec, held, Via.UPDATE)
    return Decision(changes, [outcome] if outcome is not None else [])
