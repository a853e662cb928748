"""Entry decisions: the guards, pricing a buy step, and what a finished buy leads to."""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.engine import protect
from fsmtrader.engine.commands import (
    Cancel,
    Count,
    Decision,
    Fire,
    Place,
    Publish,
    Then,
    decide,
    then,
)
from fsmtrader.engine.idle import abandon_active, after_idle
from fsmtrader.engine.modes import OBSERVE
from fsmtrader.engine.observe import observe_entry
from fsmtrader.engine.outcomes import Via, outcome_event
from fsmtrader.engine.policy import EnginePolicy
from fsmtrader.engine.risk import budget, taker_fee_rate
from fsmtrader.engine.view import SymbolView
from fsmtrader.fsm.machine import Transition
from fsmtrader.fsm.phases import Event
from fsmtrader.markets import can_afford, q_price
from fsmtrader.orders.intent import Intent, make_decision_id
from fsmtrader.orders.states import OrderState
from fsmtrader.state.records import PositionRecord
from fsmtrader.state.symbol import SymbolState
from fsmtrader.strategy import open_exit

BPS = Decimal(10_000)
ZERO = Decimal(0)
E = Event


def signal(symbol: str, ts: int, close: float, anchor: float) -> Decision:
    """A bar's close fell through the trigger: a new decision id for everything this entry
    leads to, and the SIGNAL event."""
    reason = f"close={close} anchor={anchor}"
    return decide(Fire(E.SIGNAL, reason), decision_id=make_decision_id(symbol, ts, "entry"))


def guards(v: SymbolView, p: EnginePolicy) -> list[str]:
    """Names of the guards that block an entry now (empty: go)."""
    e, r = p.entry, p.risk
    blocked = []
    ticker = v.quote
    if ticker is None:
        blocked.append("no_quote")
    if ticker is not None and ticker.spread_bps > e.max_spread_bps:
        blocked.append("spread")
    if e.min_volume > 0 and v.volume_quote < e.min_volume:
        blocked.append("volume")
    if e.sma_filter and not v.sma_ok:
        blocked.append("sma")
    if v.held > 0:
        blocked.append("position_open")
    if v.open_orders:
        blocked.append("order_in_flight")  # an earlier order is not settled yet
    if v.other_slots >= r.max_open_positions:
        blocked.append("slots")
    if v.exposure + r.position_size > r.max_total_exposure:
        blocked.append("exposure")
    if ticker is not None and not can_afford(ticker.ask, v.filters, budget(v, r)):
        blocked.append("can_afford")
    return blocked


def evaluate_entry(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    blocked = guards(v, p)
    ticker = v.quote  # the guards' quote: no second request
    if blocked or ticker is None:
        return decide(Count("guards_blocked"), Fire(E.GUARDS_BLOCKED, ",".join(blocked)))
    if p.mode(st.symbol) == OBSERVE:
        return observe_entry(st, t, v, p, ticker)
    return decide(Fire(E.GUARDS_PASSED, f"ask={ticker.ask}"), entry_ref=ticker.ask, buy_leg=0)


def block_entry(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    return then(decide(entry_block_until=t.ts + p.timeouts.block_ms), after_idle(st, v, p))


def abandon_buy(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    blocked = decide(Then(after_idle, "after_idle"), entry_block_until=t.ts + p.timeouts.block_ms)
    return then(abandon_active(v), blocked)


def plan_buy(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    """One step of the buy escalation: a limit a few bps above the ask, sized to what is
    left of the position (net of the reserved fee), capped by the budget."""
    steps = p.entry.escalation_bps
    leg = st.buy_leg
    pos = v.position
    spent = pos.cost_basis if pos is not None else ZERO
    size = p.risk.position_size - spent
    quote = v.quote  # current: fetched in this stimulus, before any order
    if quote is None:
        return decide(Fire(E.BUY_ABORTED, "no quote"))
    ask = quote.ask
    step_bps = steps[min(leg, len(steps) - 1)]
    price = q_price(ask * (1 + step_bps / BPS), v.filters.tick_size)
    if price <= 0:  # (the can_afford guard keeps such a quote from reaching here)
        return decide(Fire(E.BUY_ABORTED, f"price {price} below the tick"))
    intent = Intent.create(
        decision_id=st.decision_id,
        symbol=st.symbol,
        side="buy",
        amount=size / price / (1 + v.fee_rate),
        limit_price=price,
        ref_price=st.entry_ref if st.entry_ref is not None else ask,
        max_slippage_bps=p.entry.max_slippage_bps,
        time_in_force=p.entry.time_in_force,
        leg=leg,
        created_ms=t.ts,
        reason=f"entry step {leg} (+{step_bps} bps)",
        budget=budget(v, p.risk),
        mode=p.mode(st.symbol),
    )
    # The active intent is a state change, applied before the router's write-ahead commit:
    # the commit must record which intent this symbol waits for, or a crash orphans it.
    return decide(Place(intent, live_ask=ask), active_intent=intent.intent_id)


def check_buy(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    rec = v.active
    outcome = outcome_event(t.dst, rec, v.held, Via.CHECK) if rec is not None else None
    return decide(outcome) if outcome is not None else decide()


def cancel_buy(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    rec = v.active
    if rec is None:
        return decide(Fire(E.BUY_CANCELED, "no order"))
    return decide(Cancel(rec.intent.intent_id, settle=True))


def buy_outcome(st: SymbolState, v: SymbolView, p: EnginePolicy, escalate: bool) -> Decision:
    """The buy order is over: filled, the next escalation step, or done with what it got."""
    rec = v.active
    if rec is None:  # nothing to judge: keep what is held
        held = v.held
        return decide(Fire(E.BUY_FILLED if held > 0 else E.BUY_CANCELED, "no order"))
    if rec.state is OrderState.RECONCILED and rec.filled >= rec.amount:
        return decide(Fire(E.BUY_FILLED, f"filled {rec.filled} @ {rec.avg_price}"))
    leg = st.buy_leg
    if escalate and leg + 1 < len(p.entry.escalation_bps):
        pos = v.position
        room = budget(v, p.risk)
        left = p.risk.position_size - (pos.cost_basis if pos is not None else ZERO)
        if pos is None or pos.bought_qty == 0:
            left = room  # nothing bought yet: the entry may still be bumped
        ask = v.quote
        if ask is not None and can_afford(ask.ask, v.filters, min(left, room)):
            reason = f"filled {rec.filled}/{rec.amount}, step {leg + 1}"
            return decide(Fire(E.BUY_ESCALATE, reason), buy_leg=leg + 1)
    if v.held > 0:
        return decide(Fire(E.BUY_FILLED, f"kept partial {v.held}"))
    return decide(Fire(E.BUY_CANCELED, rec.reason or "nothing filled"))


def open_position(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    pos = v.position
    if pos is None:
        return decide(Fire(E.FAULT, "BUY_FILLED without a position"), active_intent=None)
    record: PositionRecord = {
        "kind": "position",
        "ts": t.ts,
        "symbol": st.symbol,
        "decision_id": pos.decision_id,
        "qty": str(pos.qty),
        "avg_entry": str(pos.avg_entry),
        "fees": str(pos.buy_fees),
    }
    fee = taker_fee_rate(v.filters, p.risk.reserve_fee)
    levels = open_exit(float(pos.avg_entry), p.exit.rule, fee_rate=fee)
    guard = [protect.sync(t.ts)] if p.protect is not None else []  # the resting stop
    return decide(Publish(record), *guard, active_intent=None, exit=levels, sell_leg=0)
