"""Exit decisions: confirming an exit on the bid, the sell ladder (flash-crash guard, dust,
the one market sell), the next rung after a sell, and booking the closed trade."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

from fsmtrader.engine import protect
from fsmtrader.engine.commands import (
    Cancel,
    ClosePosition,
    Count,
    Decision,
    Fire,
    Place,
    Publish,
    SymbolChanges,
    Then,
    decide,
    then,
)
from fsmtrader.engine.idle import abandon_active
from fsmtrader.engine.outcomes import Via, outcome_event
from fsmtrader.engine.policy import EnginePolicy
from fsmtrader.engine.risk import taker_fee_rate
from fsmtrader.engine.view import SymbolView
from fsmtrader.fsm.machine import Transition
from fsmtrader.fsm.phases import Event, Phase
from fsmtrader.markets import preflight, q_price
from fsmtrader.orders.intent import Intent
from fsmtrader.portfolio import ClosedTrade, Position
from fsmtrader.state.records import TradeRecord
from fsmtrader.state.symbol import SymbolState
from fsmtrader.strategy import open_exit, peek_exit

BPS = Decimal(10_000)
E = Event
SELLING = frozenset({Phase.PLACE_SELL, Phase.WAIT_SELL_FILL})


def resume_position(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    """Back to watching the position; coming from a sell, that sell is given up first."""
    if t.src in SELLING:  # decided once the cancel's answer (and its fills) are in
        return then(abandon_active(v), decide(Then(partial(_resume, t), "resume")))
    return _resume(t, st, v, p)


def _resume(t: Transition, st: SymbolState, v: SymbolView, p: EnginePolicy) -> Decision:
    pos = v.position
    if pos is None:
        return decide(Fire(E.FAULT, "POSITION without a position"))
    changes = SymbolChanges()
    if st.exit is None:
        fee = taker_fee_rate(v.filters, p.risk.reserve_fee)
        changes["exit"] = open_exit(float(pos.avg_entry), p.exit.rule, fee_rate=fee)
    if t.event is E.SELL_BLOCKED:
        changes["exit_block_until"] = t.ts + p.timeouts.block_ms
    return Decision(changes, [protect.sync(t.ts)] if p.protect is not None else [])


FORCE_EXIT = "force_exit"  # the exit reason of a control's force-exit


def evaluate_exit(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    """Confirm an exit signal on the bid (a bar's close is not a price we can sell at);
    the max-hold timeout exits whatever the price."""
    ticker = v.quote
    if t.event is E.TIMEOUT:
        reason = "max_hold"
    elif t.reason == FORCE_EXIT:  # a person asked: sell whatever the levels say
        reason = FORCE_EXIT
    else:
        reason = ""
        if ticker is not None:
            if st.exit is None:
                return decide(Fire(E.FAULT, "EXIT_EVAL without exit levels"))
            reason = peek_exit(st.exit, float(ticker.bid))
        if not reason:
            return decide(Fire(E.EXIT_HOLD, f"{t.reason} not confirmed by the bid"))
    if ticker is None:
        return decide(Fire(E.EXIT_HOLD, "no quote"))
    return decide(Fire(E.EXIT_CONFIRMED, reason), exit_reason=reason, step=0, exit_ref=ticker.bid)


def sell_price(v: SymbolView, p: EnginePolicy, rung: int, bid: Decimal) -> Decimal | None:
    """The limit of ladder rung ``rung`` below the bid, quantized down to the tick; None
    past the ladder (the market sell)."""
    ladder = p.exit.ladder_bps
    if rung >= len(ladder):
        return None
    return q_price(bid * (1 - ladder[rung] / BPS), v.filters.tick_size)


def flash_floor(pos: Position, p: EnginePolicy) -> Decimal:
    """No sell below this: a loss beyond the flash-crash guard waits for the price."""
    return pos.avg_entry * (1 - p.exit.flash_crash_guard_pct / 100)


def plan_sell(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    """The next sell of the exit: a rung of the ladder, or the one market sell past it;
    a protective stop is cancelled first, and the sell waits for that to settle."""
    if p.protect is not None and v.protective_stops:
        return protect.cancel_before_sell(v, Then(partial(_after_stop_cancel, t), "sell"))
    return _plan_sell(st, t, v, p)


def _after_stop_cancel(t: Transition, st: SymbolState, v: SymbolView, p: EnginePolicy) -> Decision:
    after = protect.after_cancel(v)
    return after if after is not None else _plan_sell(st, t, v, p)


def _plan_sell(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    pos = v.position
    if pos is None:
        return decide(Fire(E.FAULT, "PLACE_SELL without a position"))
    if pos.sell_locked > 0:
        # An earlier sell is not settled yet (its outcome is being looked up): selling
        # the rest now could oversell, and the rest is not dust.
        return decide(Fire(E.SELL_BLOCKED, f"{pos.sell_locked} still in an unsettled sell"))
    qty = pos.sellable
    ticker = v.quote
    if ticker is None:
        return decide(Fire(E.SELL_BLOCKED, "no quote"))
    if not preflight("sell", ticker.bid, qty, v.filters).ok:
        return decide(Fire(E.SELL_FILLED, f"remainder {qty} below exchange minimum: dust"))
    rung, ladder = st.step, p.exit.ladder_bps
    if rung >= len(ladder) and p.exit.never_market_sells:
        return decide(Fire(E.SELL_BLOCKED, "exit ladder exhausted (never_market_sells)"))
    if rung > len(ladder):  # one market sell per exit attempt, then wait
        return decide(Fire(E.SELL_BLOCKED, "the market sell filled nothing; retry later"))
    price = sell_price(v, p, rung, ticker.bid)
    floor = flash_floor(pos, p)
    if (price if price is not None else ticker.bid) < floor:
        guard = Fire(E.SELL_BLOCKED, f"flash-crash guard: {price} < {floor}")
        return decide(Count("flash_crash_guard"), guard)
    intent = Intent.create(
        decision_id=pos.decision_id,
        symbol=st.symbol,
        side="sell",
        amount=qty,
        limit_price=price,
        ref_price=st.exit_ref if st.exit_ref is not None else ticker.bid,
        max_slippage_bps=p.exit.max_slippage_bps,
        time_in_force="IOC",
        leg=st.sell_leg,
        created_ms=t.ts,
        reason=f"{st.exit_reason} rung {rung}",
        mode=p.mode(st.symbol),
    )
    # Set before the router's write-ahead commit (see plan_buy).
    return decide(Place(intent), sell_leg=st.sell_leg + 1, active_intent=intent.intent_id)


def check_sell(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    rec = v.active
    outcome = outcome_event(t.dst, rec, v.held, Via.CHECK) if rec is not None else None
    return decide(outcome) if outcome is not None else decide()


def cancel_sell(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    rec = v.active
    if rec is None:
        return decide(Fire(E.SELL_UNFILLED, "no order"))
    return decide(Cancel(rec.intent.intent_id, settle=True))


def next_rung(st: SymbolState, v: SymbolView, p: EnginePolicy) -> Decision:
    """A sell is over: the position is closed (the rest is dust), or the next rung sells
    the rest."""
    pos = v.position
    if pos is None:
        return decide(Fire(E.FAULT, "a sell settled without a position"))
    ticker = v.quote
    bid = ticker.bid if ticker is not None else pos.avg_entry
    if pos.qty <= 0 or not preflight("sell", bid, pos.qty, v.filters).ok:
        return decide(Fire(E.SELL_FILLED, f"sold {pos.sold_qty}, dust {pos.qty}"))
    rec = v.active
    if rec is not None and rec.filled > 0:
        return decide(Fire(E.SELL_PARTIAL, f"filled {rec.filled}/{rec.amount}"), step=st.step + 1)
    return decide(Fire(E.SELL_UNFILLED, "rung filled nothing"), step=st.step + 1)


def record_trade(st: SymbolState, t: Transition, v: SymbolView, p: EnginePolicy) -> Decision:
    return decide(ClosePosition(st.exit_reason, t.ts), active_intent=None, exit=None)


def trade_recorded(trade: ClosedTrade, ts: int, mode: str = "") -> Decision:
    """The closed trade is booked: publish it (with the mode it ran in); a completed
    trade ends an error streak."""
    record: TradeRecord = {"kind": "trade", "ts": ts, "mode": mode, **trade.to_record()}
    return decide(
        Publish(record), Fire(E.TRADE_RECORDED, f"pnl={trade.realized_pnl}"), error_count=0
    )
