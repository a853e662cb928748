"""Observe mode: the entry a symbol would have made, audited instead of placed.

An observed symbol runs the state machine and the strategy on the prices like any other,
and its guards decide as they would; where a traded symbol would hand its first buy to
the router, an observed one prices and sizes that buy the router's way (the slippage
cap, quantization, the min_notional bump within the budget: ``markets.preflight``),
publishes it as an ``observed`` record and goes back to IDLE with the entry-block
cooldown. Nothing is sent and nothing is reserved. Pure, like every decision.
"""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.engine.commands import Count, Decision, Fire, Publish, decide
from fsmtrader.engine.policy import EnginePolicy
from fsmtrader.engine.risk import budget
from fsmtrader.engine.view import SymbolView
from fsmtrader.exchange.types import Ticker
from fsmtrader.fsm.machine import Transition
from fsmtrader.fsm.phases import Event
from fsmtrader.markets import PreflightResult, preflight, q_price
from fsmtrader.state.records import ObservedRecord
from fsmtrader.state.symbol import SymbolState

BPS = Decimal(10_000)


def would_buy(v: SymbolView, p: EnginePolicy, ask: Decimal) -> tuple[PreflightResult, str]:
    """The first buy of an entry at ``ask`` as the router would send it, and its reason
    (``entry.plan_buy`` prices and sizes it, ``OrderRouter._prepare`` checks it)."""
    step_bps = p.entry.escalation_bps[0]
    price = q_price(ask * (1 + step_bps / BPS), v.filters.tick_size)
    guard = min(p.entry.max_slippage_bps, p.router.slippage_guard_bps)
    price = min(price, q_price(ask * (1 + guard / BPS), v.filters.tick_size))
    room = budget(v, p.risk)
    fee = 1 + v.fee_rate
    amount = p.risk.position_size / price / fee if price > 0 else Decimal(0)
    pf = preflight("buy", price, amount, v.filters, budget=room / fee, ref_price=ask)
    if not pf.ok:
        return pf, f"ghost: {pf.reason}"
    reason = f"entry step 0 (+{step_bps} bps)"
    return pf, reason + " bumped_to_min_notional" if pf.bumped else reason


def observe_entry(
    st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy, ticker: Ticker
) -> Decision:
    """The guards passed for an observed symbol: publish the buy, place nothing."""
    pf, reason = would_buy(v, p, ticker.ask)
    record: ObservedRecord = {
        "kind": "observed",
        "ts": t.ts,
        "symbol": st.symbol,
        "decision_id": st.decision_id,
        "side": "buy",
        "price": str(pf.price),
        "amount": str(pf.amount),
        "notional": str(pf.notional),
        "reason": reason,
    }
    return decide(Count("observed"), Publish(record), Fire(Event.OBSERVED, reason))
