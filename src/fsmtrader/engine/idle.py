"""Going back to IDLE: give up the order in flight, and never forget a position."""

from __future__ import annotations

from fsmtrader.engine import protect
from fsmtrader.engine.commands import Cancel, Decision, DiscardEmpty, Fire, decide
from fsmtrader.engine.policy import EnginePolicy
from fsmtrader.engine.view import SymbolView
from fsmtrader.fsm.machine import Transition
from fsmtrader.fsm.phases import Event, Phase
from fsmtrader.state.symbol import SymbolState


def after_idle(st: SymbolState, v: SymbolView, p: EnginePolicy) -> Decision:
    """IDLE must not forget a position (after an abandoned buy, ERROR or a restart), nor
    a trade a protective stop closed meanwhile (while the symbol was in ERROR)."""
    if p.protect is not None and protect.sold_by_stop(v):
        return protect.closed_by_stop(v)
    if v.held > 0:
        return decide(Fire(Event.HAS_POSITION, "position held"))
    return decide(DiscardEmpty())


def settle_idle(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    """A row with no action of its own: only arriving in IDLE has something to check."""
    return after_idle(st, v, p) if t.dst is Phase.IDLE else decide()


def abandon_active(v: SymbolView) -> Decision:
    """Give up the order in flight: the router cancels it (or makes sure it is never
    sent) and releases what it held. If that cannot be confirmed yet, the router keeps
    it and books whatever it turns out to have filled."""
    rec = v.active
    if rec is not None and not rec.done:
        return decide(Cancel(rec.intent.intent_id, forget=True))
    return decide(active_intent=None)
