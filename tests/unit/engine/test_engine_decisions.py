"""The engine's decisions as pure functions: no exchange, no router, no clock.

Each decision takes (symbol state, transition, a read-only view, policy) and returns state
changes and commands. These tests build the view from plain values (``FixedView``) and
check the money rules directly, with Hypothesis over random quotes, positions, filters and
policies: a sell never goes below the flash-crash floor, never a market sell with
never_market_sells, a buy stays within its budget after the router's quantization, and
every command list is one the transition table accepts.
"""

from __future__ import annotations

from dataclasses import fields, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fsmtrader.engine.actions import DECISIONS
from fsmtrader.engine.commands import (
    Cancel,
    ClosePosition,
    Count,
    Decision,
    DiscardEmpty,
    Fire,
    Halt,
    Place,
    Publish,
    Refresh,
    Settle,
    SymbolChanges,
    Then,
)
from fsmtrader.engine.entry import buy_outcome, evaluate_entry, guards, plan_buy
from fsmtrader.engine.errors import enter_error, leave_error
from fsmtrader.engine.exit import flash_floor, next_rung, plan_sell, trade_recorded
from fsmtrader.engine.outcomes import Via, order_update, outcome_event
from fsmtrader.engine.policy import (
    EnginePolicy,
    EntryPolicy,
    ErrorPolicy,
    ExitPolicy,
    RiskLimits,
    TimeoutPolicy,
)
from fsmtrader.engine.risk import budget, reserve_fee_rate, slots_used
from fsmtrader.engine.timeouts import deadline
from fsmtrader.exchange.types import Ticker
from fsmtrader.fsm.machine import Transition, apply, error_backoff_ms, step
from fsmtrader.fsm.phases import Action, Event, Phase
from fsmtrader.fsm.table import TABLE, TIMEOUTS, TRANSIENT
from fsmtrader.markets import MarketFilters, can_afford, preflight
from fsmtrader.orders.intent import Intent
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import ClosedTrade, Position
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.symbol import SymbolState
from fsmtrader.strategy import open_exit
from fsmtrader_testing.views import FixedView

P, E, A, S = Phase, Event, Action, OrderState
D = Decimal
SYM = "X/USDT"
BPS = D(10_000)
STATE_FIELDS = {f.name for f in fields(SymbolState)}
CHANGEABLE = set(SymbolChanges.__optional_keys__)


# --- builders -----------------------------------------------------------------------------
def filt(tick: str = "0.01", step: str = "0.0001", min_qty: str = "0.0001", notional: str = "5"):
    return MarketFilters(SYM, D(tick), D(step), D(min_qty), D(notional), "X", "USDT")


def ticker(bid: Decimal, ask: Decimal | None = None) -> Ticker:
    return Ticker(SYM, 0, bid, bid if ask is None else ask, bid, D(0))


def position(qty: str, avg: str, locked: str = "0") -> Position:
    q = D(qty)
    return Position(
        SYM, "X-1-entry", 0, qty=q, bought_qty=q, buy_cost=q * D(avg), sell_locked=D(locked)
    )


def order(
    side: str = "buy", state: OrderState = S.SENT, filled: str = "0", amount: str = "1"
) -> OrderRecord:
    intent = Intent.create(
        decision_id="X-1-entry",
        symbol=SYM,
        side=side,  # type: ignore[arg-type]
        amount=D(amount),
        limit_price=D(100),
        ref_price=D(100),
        max_slippage_bps=D(50),
        time_in_force="IOC",
        leg=0,
        created_ms=0,
    )
    return OrderRecord(intent, "cid-1", state=state, amount=D(amount), filled=D(filled))


def entered(src: Phase, event: Event, **fields_: Any) -> tuple[SymbolState, Transition]:
    """A state that just took the table's row (src, event), as the machine applies it."""
    s = SymbolState(SYM, phase=src, **fields_)
    t = step(s, event, 1_000_000, "why")
    apply(s, t)
    return s, t


def policy(**parts: Any) -> EnginePolicy:
    return EnginePolicy(symbols=(SYM,), **parts)


def down_to(x: Decimal, unit: Decimal) -> Decimal:
    """``x`` floored to a multiple of ``unit`` (the tests' own, not the markets module's)."""
    return (x / unit).to_integral_value(ROUND_FLOOR) * unit


def up_to(x: Decimal, unit: Decimal) -> Decimal:
    return (x / unit).to_integral_value(ROUND_CEILING) * unit


# --- checking a command list against the table ---------------------------------------------
def check_commands(d: Decision, phase: Phase) -> list[Fire]:
    """The structure every decision keeps: known state fields, at most one Fire and only
    as the last command, and that Fire has a row in ``phase``."""
    assert set(d.changes) <= CHANGEABLE, d.changes
    fires = [c for c in d.commands if isinstance(c, Fire)]
    assert len(fires) <= 1, d.commands
    if fires:
        assert d.commands[-1] is fires[0], d.commands
        assert (phase, fires[0].event) in TABLE, (phase, fires[0].event)
    kinds = (Place, Cancel, Refresh, Fire, Publish, Halt, Count, DiscardEmpty)
    assert all(isinstance(c, (*kinds, ClosePosition, Settle, Then)) for c in d.commands)
    return fires


def follow_through(d: Decision, s: SymbolState, v: FixedView, p: EnginePolicy) -> list[Fire]:
    """Check ``d`` and the decisions its Then/Settle/ClosePosition lead to (as the shell
    would run them on the same view); returns every Fire."""
    for name, value in d.changes.items():
        setattr(s, name, value)
    fires = check_commands(d, s.phase)
    for c in d.commands:
        nxt: Decision | None = None
        if isinstance(c, Then):
            nxt = c.decider(s, v, p)
        elif isinstance(c, Settle):
            nxt = buy_outcome(s, v, p, c.escalate) if c.side == "buy" else next_rung(s, v, p)
        elif isinstance(c, ClosePosition):
            trade = ClosedTrade(
                SYM, "d", 0, 1, D(1), D(1), D(1), D(1), D(0), D(0), 1, D(0), D(0), c.reason
            )
            nxt = trade_recorded(trade, c.ts)
        if nxt is not None:
            fires += follow_through(nxt, s, v, p)
    return fires


# --- strategies -------------------------------------------------------------------------------
FILTERS = st.builds(
    filt,
    tick=st.sampled_from(["0.01", "0.0001", "0.5", "1", "0.000001"]),
    step=st.sampled_from(["0.00001", "0.01", "1", "0.1"]),
    min_qty=st.sampled_from(["0.00001", "0.01", "1"]),
    notional=st.sampled_from(["0", "1", "5", "10"]),
)
PRICES = st.decimals(min_value=D("0.0001"), max_value=D(100_000), places=6).filter(lambda x: x > 0)
LADDERS = st.lists(st.sampled_from([0, 5, 10, 25, 50, 100, 200]), min_size=1, max_size=6).map(
    lambda xs: tuple(D(x) for x in sorted(xs))
)
EXITS = st.builds(
    ExitPolicy,
    ladder_bps=LADDERS,
    never_market_sells=st.booleans(),
    flash_crash_guard_pct=st.sampled_from([D(1), D(5), D(10), D(50)]),
)


@st.composite
def quotes(draw: st.DrawFn) -> Ticker | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    bid = draw(PRICES)
    spread = draw(st.sampled_from([D(0), D("0.0002"), D("0.01")]))
    return ticker(bid, bid * (1 + spread))


@st.composite
def positions(draw: st.DrawFn) -> Position:
    qty = draw(st.decimals(min_value=D("0.00001"), max_value=D(1000), places=5))
    avg = draw(PRICES)
    locked = draw(st.sampled_from([D(0), D(0), D(0), qty / 2]))
    return Position(
        SYM, "X-1-entry", 0, qty=qty, bought_qty=qty, buy_cost=qty * avg, sell_locked=locked
    )


# --- properties -------------------------------------------------------------------------------
def expected_sell(
    f: MarketFilters, q: Ticker | None, pos: Position | None, x: ExitPolicy, rung: int
) -> str:
    """What plan_sell must do, worked out from the inputs alone: "fault", "locked",
    "no_quote", "dust", "never_market_sells", "market_sell_spent", "floor" or "place"."""
    if pos is None:
        return "fault"
    if pos.sell_locked > 0:
        return "locked"
    if q is None:
        return "no_quote"
    if not preflight("sell", q.bid, pos.qty - pos.sell_locked, f).ok:
        return "dust"
    n = len(x.ladder_bps)
    if rung >= n and x.never_market_sells:
        return "never_market_sells"
    if rung > n:
        return "market_sell_spent"
    price = down_to(q.bid * (1 - x.ladder_bps[rung] / BPS), f.tick_size) if rung < n else q.bid
    floor = pos.buy_cost / pos.bought_qty * (1 - x.flash_crash_guard_pct / 100)
    return "floor" if price < floor else "place"


BLOCKED_BECAUSE = {
    "locked": "still in an unsettled sell",
    "no_quote": "no quote",
    "never_market_sells": "never_market_sells",
    "market_sell_spent": "the market sell filled nothing",
    "floor": "flash-crash guard",
}


@st.composite
def maybe_positions(draw: st.DrawFn) -> Position | None:
    return None if draw(st.integers(0, 19)) == 0 else draw(positions())


def at_the_floor(
    f: MarketFilters, q: Ticker | None, pos: Position | None, x: ExitPolicy, rung: int
) -> Position | None:
    """``pos`` re-priced so that the flash-crash floor is exactly this rung's price (a sell
    at the floor is allowed), when that price divides exactly; else ``pos`` as it is."""
    if pos is None or q is None:
        return pos
    n = len(x.ladder_bps)
    price = down_to(q.bid * (1 - x.ladder_bps[min(rung, n - 1)] / BPS), f.tick_size)
    price = q.bid if rung >= n else price
    factor = 1 - x.flash_crash_guard_pct / 100
    avg = price / factor
    moved = replace(pos, buy_cost=pos.bought_qty * avg)
    exact = price > 0 and moved.buy_cost / moved.bought_qty * factor == price
    return moved if exact else pos


@settings(max_examples=400, deadline=None)
@given(
    f=FILTERS,
    q=quotes(),
    pos=maybe_positions(),
    x=EXITS,
    rung=st.integers(0, 8),
    boundary=st.booleans(),
)
def test_a_sell_respects_the_floor_the_ladder_and_never_market_sells(
    f: MarketFilters,
    q: Ticker | None,
    pos: Position | None,
    x: ExitPolicy,
    rung: int,
    boundary: bool,
) -> None:
    if boundary:
        pos = at_the_floor(f, q, pos, x, rung)
    p = policy(exit=x)
    s, t = entered(P.EXIT_EVAL, E.EXIT_CONFIRMED, step=rung, exit_reason="stop_loss")
    v = FixedView(SYM, f, position=pos, quote=q)
    d = plan_sell(s, t, v, p)
    fires = check_commands(d, s.phase)
    places = [c for c in d.commands if isinstance(c, Place)]
    want = expected_sell(f, q, pos, x, rung)
    # exactly one outcome, the one the inputs call for
    assert bool(places) == (want == "place"), (want, d.commands)
    assert (Count("flash_crash_guard") in d.commands) == (want == "floor"), (want, d.commands)
    if want != "place":
        (fire,) = fires
        assert not d.changes and d.commands[-1] is fire
        assert len(d.commands) == (2 if want == "floor" else 1)
        if want == "fault":
            assert fire.event is E.FAULT
        elif want == "dust":
            assert fire.event is E.SELL_FILLED and "dust" in fire.reason
        else:
            assert fire.event is E.SELL_BLOCKED and BLOCKED_BECAUSE[want] in fire.reason
    if pos is None:
        return
    if pos.sell_locked > 0 or q is None:
        assert not places and fires[0].event is E.SELL_BLOCKED
        return
    if not places:
        assert fires and fires[0].event in (E.SELL_BLOCKED, E.SELL_FILLED)
        return
    (place,) = places
    assert not fires and d.commands == [place]
    it = place.intent
    floor = flash_floor(pos, p)
    assert it.side == "sell" and it.amount == pos.sellable and it.time_in_force == "IOC"
    assert d.changes["active_intent"] == it.intent_id and d.changes["sell_leg"] == s.sell_leg + 1
    assert preflight("sell", q.bid, it.amount, f).ok  # a sell below the minimum is dust
    if it.limit_price is None:  # the market sell: only past the ladder, once, if allowed
        assert not x.never_market_sells and rung == len(x.ladder_bps)
        assert q.bid >= floor
    else:
        assert rung < len(x.ladder_bps)
        assert floor <= it.limit_price <= q.bid
        assert it.limit_price % f.tick_size == 0
        want_price = down_to(q.bid * (1 - x.ladder_bps[rung] / BPS), f.tick_size)
        assert it.limit_price == want_price


@st.composite
def remainders(draw: st.DrawFn, least: Decimal, step: Decimal) -> Decimal:
    """A quantity left to sell, often within a few steps of the smallest sellable one
    (and off the step grid, which the exchange floors)."""
    if draw(st.booleans()):
        return draw(st.decimals(min_value=D("0.00001"), max_value=D(1000), places=5))
    near = least + draw(st.integers(-3, 3)) * step
    off_grid = draw(st.sampled_from([D(0), D("0.5"), D("0.999")])) * step
    qty = max(near, D(0)) + off_grid
    return qty if qty > 0 else step / 2


@settings(max_examples=300, deadline=None)
@given(
    f=FILTERS,
    bid=PRICES,
    avg=PRICES,
    sold=st.sampled_from([D(0), D("0.5"), D(3)]),
    spread=st.sampled_from([D(0), D("0.01"), D("0.5")]),
    x=EXITS,
    rung=st.integers(0, 8),
    data=st.data(),
)
def test_a_remainder_below_the_exchange_minimum_is_dust_and_only_then(
    f: MarketFilters,
    bid: Decimal,
    avg: Decimal,
    sold: Decimal,
    spread: Decimal,
    x: ExitPolicy,
    rung: int,
    data: st.DataObject,
) -> None:
    price = down_to(bid, f.tick_size)  # the exchange prices a sell on the tick grid
    assume(price > 0)
    least = max(up_to(f.min_notional / price, f.step_size), up_to(f.min_qty, f.step_size))
    qty = data.draw(remainders(max(least, f.step_size), f.step_size), label="qty")
    pos = Position(SYM, "X-1-entry", 0, qty=qty, bought_qty=qty + sold, buy_cost=(qty + sold) * avg)
    amount = down_to(qty, f.step_size)
    dust = amount <= 0 or amount < f.min_qty or amount * price < f.min_notional
    s, t = entered(P.EXIT_EVAL, E.EXIT_CONFIRMED, step=rung, exit_reason="stop_loss")
    v = FixedView(SYM, f, position=pos, quote=ticker(bid, bid * (1 + spread)))  # sold at the bid
    d = plan_sell(s, t, v, policy(exit=x))
    fires = check_commands(d, s.phase)
    if dust:  # whatever the ladder, the rung or the floor: nothing is sold, the exit ends
        assert d.commands == [Fire(E.SELL_FILLED, f"remainder {qty} below exchange minimum: dust")]
        assert not d.changes
    else:
        assert not any(fire.event is E.SELL_FILLED for fire in fires), d.commands
        places = [c for c in d.commands if isinstance(c, Place)]
        assert places or fires[0].event is E.SELL_BLOCKED
        assert all(c.intent.amount == qty for c in places)


@settings(max_examples=300, deadline=None)
@given(
    f=FILTERS,
    ask=PRICES,
    size=st.sampled_from([D(5), D(25), D(100), D(1000)]),
    cash=st.sampled_from([D(0), D(3), D(30), D(1000), D(10**6)]),
    exposure=st.sampled_from([D(0), D(10), D(70)]),
    fee=st.sampled_from([D(0), D("0.001"), D("0.004")]),
    leg=st.integers(0, 4),
    spent=st.sampled_from([D(0), D(2), D(10)]),
)
def test_a_buy_stays_within_its_budget_after_quantization(
    f: MarketFilters,
    ask: Decimal,
    size: Decimal,
    cash: Decimal,
    exposure: Decimal,
    fee: Decimal,
    leg: int,
    spent: Decimal,
) -> None:
    risk = RiskLimits(position_size=size, max_total_exposure=max(size, D(100)))
    entry = EntryPolicy(escalation_bps=(D(0), D(10), D(25)))
    p = policy(risk=risk, entry=entry)
    pos = (
        Position(SYM, "X-1-entry", 0, qty=D(1), bought_qty=D(1), buy_cost=spent) if spent else None
    )
    s, t = entered(
        P.ENTRY_EVAL, E.GUARDS_PASSED, buy_leg=leg, decision_id="X-1-entry", entry_ref=ask
    )
    v = FixedView(
        SYM, f, position=pos, quote=ticker(ask, ask), cash=cash, exposure=exposure, fee_rate=fee
    )
    d = plan_buy(s, t, v, p)
    fires = check_commands(d, s.phase)
    places = [c for c in d.commands if isinstance(c, Place)]
    step_bps = entry.escalation_bps[min(leg, len(entry.escalation_bps) - 1)]
    want_limit = down_to(ask * (1 + step_bps / BPS), f.tick_size)
    assert bool(places) == (want_limit > 0), (want_limit, d.commands)  # a buy whenever one prices
    assert bool(fires) == (not places)
    if not places:  # only an ask below one tick
        assert fires[0].event is E.BUY_ABORTED and ask < f.tick_size
        return
    (place,) = places
    it = place.intent
    room = budget(v, risk)
    assert it.budget == room <= cash and room >= 0
    assert d.changes == {"active_intent": it.intent_id}
    assert place.live_ask == ask
    limit = it.limit_price
    assert limit is not None and limit % f.tick_size == 0
    steps = entry.escalation_bps
    assert limit <= ask * (1 + steps[min(leg, len(steps) - 1)] / BPS)
    assert limit == want_limit and d.commands == [place]
    # the intent is sized so that its cost plus the reserved fee is what is left to buy
    assert abs(it.amount * limit * (1 + fee) - (size - spent)) <= D("1e-18") * size
    # the router quantizes (and bumps) within the budget net of the fee it reserves
    if limit > 0 and it.budget is not None:
        pf = preflight("buy", limit, it.amount, f, budget=it.budget / (1 + fee))
        if pf.ok:
            assert pf.price * pf.amount * (1 + fee) <= it.budget * (1 + D("1e-20"))


@settings(max_examples=300, deadline=None)
@given(
    f=FILTERS,
    q=quotes(),
    state=st.sampled_from([S.RECONCILED, S.FAILED_FINAL, S.SENT, S.PARTIAL]),
    filled=st.sampled_from(["0", "0.5", "1"]),
    leg=st.integers(0, 3),
    steps=st.integers(1, 4),
    escalate=st.booleans(),
    held=st.sampled_from(["0", "0.5", "0.1"]),
    cash=st.sampled_from([D(0), D(1000), D(20)]),
)
def test_escalation_only_steps_up_while_steps_and_budget_remain(
    f: MarketFilters,
    q: Ticker | None,
    state: OrderState,
    filled: str,
    leg: int,
    steps: int,
    escalate: bool,
    held: str,
    cash: Decimal,
) -> None:
    entry = EntryPolicy(escalation_bps=tuple(D(10 * i) for i in range(steps)))
    p = policy(entry=entry)
    s = SymbolState(SYM, phase=P.WAIT_FILL, buy_leg=leg)
    rec = order("buy", state, filled=filled)
    pos = position(held, "100") if held != "0" else None
    v = FixedView(SYM, f, position=pos, active=rec, quote=q, cash=cash)
    d = buy_outcome(s, v, p, escalate)
    (fire,) = check_commands(d, P.WAIT_FILL)
    assert d.commands == [fire]
    # worked out from the inputs: a full fill is done; else the next step whenever one is
    # left, asked for, and the smallest valid buy at the ask fits what may still be spent
    risk = p.risk
    room = max(min(cash, risk.max_total_exposure), D(0))  # the view's exposure is 0
    left = risk.position_size - pos.cost_basis if pos is not None else room
    full = state is S.RECONCILED and rec.filled >= rec.amount
    steps_up = False
    if not full and escalate and leg + 1 < steps and q is not None:
        steps_up = can_afford(q.ask, f, min(left, room))
    assert (fire.event is E.BUY_ESCALATE) == steps_up, (steps_up, fire)
    if state is S.RECONCILED and rec.filled >= rec.amount:
        assert fire.event is E.BUY_FILLED
    elif fire.event is E.BUY_ESCALATE:
        assert escalate and leg + 1 < steps and q is not None and cash > 0
        assert d.changes == {"buy_leg": leg + 1}
    else:
        assert fire.event is (E.BUY_FILLED if pos is not None else E.BUY_CANCELED)
        assert "buy_leg" not in d.changes


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(0, 10),
    limit=st.integers(1, 6),
    active=st.sampled_from([None, S.SENT, S.RECONCILED, S.UNKNOWN]),
)
def test_entering_error_counts_cancels_and_halts_by_the_rule(
    count: int, limit: int, active: OrderState | None
) -> None:
    p = policy(errors=ErrorPolicy(max_consecutive_errors=limit))
    s, t = entered(P.WAIT_FILL, E.FAULT, error_count=count)
    rec = order(state=active) if active is not None else None
    d = enter_error(s, t, FixedView(SYM, filt(), active=rec), p)
    check_commands(d, s.phase)
    assert d.changes == {"error_count": count + 1, "last_error": "why"}
    cancels = [c for c in d.commands if isinstance(c, Cancel)]
    assert bool(cancels) == (rec is not None and not rec.done)
    halts = [c for c in d.commands if isinstance(c, Halt)]
    assert bool(halts) == (count + 1 >= limit)
    alert = d.commands[-1]
    assert isinstance(alert, Publish) and alert.record["kind"] == "alert"
    assert alert.record["error_count"] == count + 1  # type: ignore[typeddict-item]


@settings(max_examples=300, deadline=None)
@given(
    f=FILTERS,
    q=quotes(),
    max_spread=st.sampled_from([1.0, 30.0, 1000.0]),
    min_volume=st.sampled_from([0.0, 1e6]),
    volume=st.sampled_from([0.0, 10.0, 2e6]),
    sma_filter=st.booleans(),
    sma_ok=st.booleans(),
    pos=st.one_of(st.none(), positions()),
    open_orders=st.integers(0, 2),
    other_slots=st.integers(0, 4),
    max_open=st.integers(1, 3),
    size=st.sampled_from([D(5), D(25)]),
    exposure=st.sampled_from([D(0), D(50), D(70)]),
    cash=st.sampled_from([D(0), D(3), D(30), D(1000)]),
)
def test_the_guards_block_an_entry_exactly_when_a_rule_says_so(
    f: MarketFilters,
    q: Ticker | None,
    max_spread: float,
    min_volume: float,
    volume: float,
    sma_filter: bool,
    sma_ok: bool,
    pos: Position | None,
    open_orders: int,
    other_slots: int,
    max_open: int,
    size: Decimal,
    exposure: Decimal,
    cash: Decimal,
) -> None:
    risk = RiskLimits(position_size=size, max_open_positions=max_open, max_total_exposure=D(75))
    entry = EntryPolicy(max_spread_bps=max_spread, min_volume=min_volume, sma_filter=sma_filter)
    p = policy(risk=risk, entry=entry)
    v = FixedView(
        SYM,
        f,
        position=pos,
        open_orders=open_orders,
        exposure=exposure,
        cash=cash,
        volume_quote=volume,
        sma_ok=sma_ok,
        quote=q,
        other_slots=other_slots,
    )
    room = max(min(cash, D(75) - exposure), D(0))
    rules = [
        ("no_quote", q is None),
        (
            "spread",
            q is not None and float((q.ask - q.bid) / (q.bid + q.ask) * 20_000) > max_spread,
        ),
        ("volume", min_volume > 0 and volume < min_volume),
        ("sma", sma_filter and not sma_ok),
        ("position_open", pos is not None and pos.qty > 0),
        ("order_in_flight", open_orders > 0),
        ("slots", other_slots >= max_open),
        ("exposure", exposure + size > D(75)),
        ("can_afford", q is not None and not can_afford(q.ask, f, room)),
    ]
    want = [name for name, blocks in rules if blocks]
    assert guards(v, p) == want
    s, t = entered(P.IDLE, E.SIGNAL)
    d = evaluate_entry(s, t, v, p)
    check_commands(d, s.phase)
    if want:
        assert d.commands == [Count("guards_blocked"), Fire(E.GUARDS_BLOCKED, ",".join(want))]
        assert not d.changes
    else:
        assert q is not None
        assert d.commands == [Fire(E.GUARDS_PASSED, f"ask={q.ask}")]
        assert d.changes == {"entry_ref": q.ask, "buy_leg": 0}


ROWS = sorted(TABLE.items(), key=lambda kv: (list(Phase).index(kv[0][0]), kv[0][1]))


@settings(max_examples=400, deadline=None)
@given(
    row=st.sampled_from(ROWS),
    f=FILTERS,
    q=quotes(),
    pos=st.one_of(st.none(), positions()),
    active=st.sampled_from([None, S.SENT, S.PARTIAL, S.RECONCILED, S.FAILED_FINAL, S.UNKNOWN]),
    x=EXITS,
    exposure=st.sampled_from([D(0), D(80)]),
    slots=st.integers(0, 4),
)
def test_every_decision_returns_commands_the_table_accepts(
    row: Any,
    f: MarketFilters,
    q: Ticker | None,
    pos: Position | None,
    active: OrderState | None,
    x: ExitPolicy,
    exposure: Decimal,
    slots: int,
) -> None:
    (src, event), _ = row
    p = policy(exit=x)
    extra: dict[str, Any] = {}
    if pos is not None and src in (P.POSITION, P.EXIT_EVAL, P.PLACE_SELL, P.WAIT_SELL_FILL):
        extra["exit"] = open_exit(float(pos.avg_entry), x.rule)
    s, t = entered(src, event, decision_id="X-1-entry", **extra)
    rec = order("buy" if src in (P.PLACE_BUY, P.WAIT_FILL) else "sell", active) if active else None
    v = FixedView(
        SYM,
        f,
        position=pos,
        active=rec,
        quote=q,
        cash=D(1000),
        exposure=exposure,
        other_slots=slots,
    )
    d = DECISIONS[t.action](s, t, v, p)
    fires = follow_through(d, s, v, p)
    if t.dst in TRANSIENT:  # a decision phase is always left within the stimulus
        assert fires, (src, event, d)


# --- examples ---------------------------------------------------------------------------------
def test_guards_name_every_blocking_reason() -> None:
    p = policy(
        risk=RiskLimits(max_open_positions=1),
        entry=EntryPolicy(max_spread_bps=5, min_volume=1e6, sma_filter=True),
    )
    v = FixedView(
        SYM,
        filt(notional="10"),
        position=position("1", "100"),
        open_orders=1,
        exposure=D(70),
        cash=D(1),
        quote=ticker(D(100), D(101)),
        volume_quote=10.0,
        sma_ok=False,
        other_slots=1,
    )
    assert guards(v, p) == [
        "spread",
        "volume",
        "sma",
        "position_open",
        "order_in_flight",
        "slots",
        "exposure",
        "can_afford",
    ]
    assert guards(replace(v, quote=None), p)[0] == "no_quote"
    clean = FixedView(SYM, filt(), quote=ticker(D(100), D(100)), cash=D(1000))
    assert guards(clean, policy()) == []


def test_flash_crash_guard_blocks_a_sell_below_its_floor_and_counts_it() -> None:
    p = policy(exit=ExitPolicy(flash_crash_guard_pct=D(10)))
    s, t = entered(P.EXIT_EVAL, E.EXIT_CONFIRMED, step=0)
    v = FixedView(SYM, filt(), position=position("1", "100"), quote=ticker(D("89.99")))
    d = plan_sell(s, t, v, p)
    assert [type(c) for c in d.commands] == [Count, Fire]
    assert d.commands[0] == Count("flash_crash_guard")
    assert d.commands[1].event is E.SELL_BLOCKED and "flash-crash" in d.commands[1].reason  # type: ignore[union-attr]
    assert not d.changes
    ok = plan_sell(s, t, replace(v, quote=ticker(D(90))), p)
    assert isinstance(ok.commands[0], Place) and ok.commands[0].intent.limit_price == D(90)


def test_ladder_end_market_sell_once_unless_never_market_sells() -> None:
    v = FixedView(SYM, filt(), position=position("1", "100"), quote=ticker(D(100)))
    ladder = ExitPolicy(ladder_bps=(D(0), D(50)), never_market_sells=False)
    s, t = entered(P.EXIT_EVAL, E.EXIT_CONFIRMED, step=1)
    rung1 = plan_sell(s, t, v, policy(exit=ladder)).commands[0]
    assert isinstance(rung1, Place) and rung1.intent.limit_price == D("99.50")
    s.step = 2
    market = plan_sell(s, t, v, policy(exit=ladder)).commands[0]
    assert isinstance(market, Place) and market.intent.limit_price is None
    s.step = 3
    (again,) = plan_sell(s, t, v, policy(exit=ladder)).commands
    assert isinstance(again, Fire) and "market sell filled nothing" in again.reason
    s.step = 2
    never = replace(ladder, never_market_sells=True)
    (blocked,) = plan_sell(s, t, v, policy(exit=never)).commands
    assert isinstance(blocked, Fire) and "never_market_sells" in blocked.reason


def test_dust_ends_the_exit_instead_of_selling() -> None:
    v = FixedView(SYM, filt(notional="10"), position=position("0.05", "100"), quote=ticker(D(100)))
    s, t = entered(P.EXIT_EVAL, E.EXIT_CONFIRMED)
    (fire,) = plan_sell(s, t, v, policy()).commands
    assert isinstance(fire, Fire) and fire.event is E.SELL_FILLED and "dust" in fire.reason
    s2 = SymbolState(SYM, phase=P.WAIT_SELL_FILL, step=2)
    d = next_rung(s2, replace(v, quote=None, active=order("sell", S.RECONCILED)), policy())
    assert d.commands == [Fire(E.SELL_FILLED, "sold 0, dust 0.05")] and not d.changes
    big = replace(v, position=position("1", "100"), active=order("sell", S.RECONCILED, "0.4"))
    rung = next_rung(s2, big, policy())
    assert rung.commands == [Fire(E.SELL_PARTIAL, "filled 0.4/1")] and rung.changes == {"step": 3}


def test_leaving_error_gives_up_the_order_then_checks_idle() -> None:
    s, t = entered(P.ERROR, E.RECOVER, active_intent="i-1")
    live = leave_error(s, t, FixedView(SYM, filt(), active=order(state=S.SENT)), policy())
    assert isinstance(live.commands[0], Cancel) and live.commands[0].forget
    assert isinstance(live.commands[1], Then) and not live.changes
    over = leave_error(s, t, FixedView(SYM, filt(), active=order(state=S.RECONCILED)), policy())
    assert over.changes == {"active_intent": None} and isinstance(over.commands[0], Then)
    held = over.commands[0].decider(
        s, FixedView(SYM, filt(), position=position("1", "1")), policy()
    )
    assert held.commands == [Fire(E.HAS_POSITION, "position held")]
    empty = over.commands[0].decider(s, FixedView(SYM, filt()), policy())
    assert empty.commands == [DiscardEmpty()]


@pytest.mark.parametrize(
    ("phase", "state", "held", "via", "want"),
    [
        (P.PLACE_BUY, S.FAILED_FINAL, "0", Via.SUBMIT, E.BUY_ABORTED),
        (P.PLACE_BUY, S.FAILED_FINAL, "1", Via.SUBMIT, E.BUY_FILLED),
        (P.PLACE_BUY, S.UNKNOWN, "0", Via.SUBMIT, None),
        (P.PLACE_BUY, S.RETRY, "0", Via.UPDATE, None),
        (P.PLACE_BUY, S.SENT, "0", Via.SUBMIT, E.BUY_PLACED),
        (P.PLACE_BUY, S.RECONCILED, "0", Via.UPDATE, E.BUY_PLACED),
        (P.PLACE_SELL, S.FAILED_FINAL, "0", Via.SUBMIT, E.SELL_FILLED),
        (P.PLACE_SELL, S.FAILED_FINAL, "1", Via.SUBMIT, E.SELL_BLOCKED),
        (P.PLACE_SELL, S.ERROR, "1", Via.SUBMIT, None),
        (P.PLACE_SELL, S.PARTIAL, "1", Via.UPDATE, E.SELL_PLACED),
        (P.IDLE, S.RECONCILED, "1", Via.UPDATE, E.HAS_POSITION),
        (P.IDLE, S.RECONCILED, "0", Via.UPDATE, None),
        (P.POSITION, S.RECONCILED, "1", Via.UPDATE, None),
        (P.WAIT_FILL, S.SENT, "0", Via.UPDATE, None),
    ],
)
def test_outcome_event_maps_router_answers_to_events(
    phase: Phase, state: OrderState, held: str, via: Via, want: Event | None
) -> None:
    out = outcome_event(phase, order(state=state), D(held), via)
    assert (out.event if isinstance(out, Fire) else out) == want
    if isinstance(out, Fire) and want in (E.BUY_PLACED, E.SELL_PLACED):
        assert out.key == order().intent.intent_id  # a duplicate report is dropped


def test_outcome_event_settles_wait_phases_by_how_the_news_came() -> None:
    done, live = order(state=S.RECONCILED), order(state=S.SENT, filled="0.3")
    assert outcome_event(P.WAIT_FILL, done, D(0), Via.UPDATE) == Settle("buy", escalate=True)
    assert outcome_event(P.WAIT_FILL, done, D(0), Via.CANCEL) == Settle("buy", escalate=False)
    assert outcome_event(P.WAIT_SELL_FILL, done, D(0), Via.POLL) == Settle("sell")
    # entering the phase: anything not live is over (an order that never went out too)
    assert outcome_event(P.WAIT_FILL, order(state=S.RETRY), D(0), Via.CHECK) == Settle("buy")
    assert outcome_event(P.WAIT_FILL, order(state=S.RETRY), D(0), Via.UPDATE) is None
    partial = outcome_event(P.WAIT_FILL, live, D(0), Via.POLL, filled_before=D("0.1"))
    assert partial == Fire(E.BUY_PARTIAL, "filled 0.3/1", key=f"{live.intent.intent_id}:0.3")
    assert outcome_event(P.WAIT_FILL, live, D(0), Via.POLL, filled_before=D("0.3")) is None
    assert outcome_event(P.WAIT_SELL_FILL, live, D(0), Via.POLL) is None


def test_order_update_only_for_the_order_in_flight_except_in_idle() -> None:
    rec = order(state=S.RECONCILED)
    other = SymbolState(SYM, phase=P.WAIT_FILL, active_intent="someone-else")
    assert order_update(other, rec, D(0)) == Decision({}, [])
    idle = SymbolState(SYM, phase=P.IDLE, active_intent=rec.intent.intent_id)
    d = order_update(idle, rec, D(1))
    assert d.changes == {"active_intent": None}
    assert d.commands == [Fire(E.HAS_POSITION, "a late fill of cid-1")]


def test_deadlines_follow_the_timeout_rules() -> None:
    tp = TimeoutPolicy()
    now = 5_000_000
    for phase in TRANSIENT | {P.IDLE}:
        assert deadline(SymbolState(SYM, phase=phase), None, now, None, None, tp) is None
    for phase in TIMEOUTS:
        assert (
            deadline(SymbolState(SYM, phase=phase, entered_ms=now), None, now, None, None, tp)
            is not None
        )
    wait = SymbolState(SYM, phase=P.WAIT_FILL, entered_ms=now)
    assert deadline(wait, None, now, None, None, tp) == now + tp.buy_fill_ms
    partly = order(state=S.PARTIAL, filled="0.5")
    assert deadline(wait, None, now, partly, None, tp) == now + tp.ioc_ttl_ms  # IOC left open
    gtc = OrderRecord(
        replace(partly.intent, time_in_force="GTC"), "c", state=S.PARTIAL, filled=D(1)
    )
    assert deadline(wait, None, now, gtc, None, tp) == now + tp.partial_fill_ms
    _, loop = entered(P.WAIT_FILL, E.TIMEOUT)
    assert deadline(wait, loop, now, None, None, tp) == now + tp.buy_fill_ms  # retry the cancel
    held = SymbolState(SYM, phase=P.POSITION, entered_ms=now)
    pos = Position(SYM, "d", entry_ms=now - tp.max_hold_ms - 1)
    _, back = entered(P.PLACE_SELL, E.SELL_BLOCKED)
    assert deadline(held, back, now, None, pos, tp) == now + tp.block_ms  # past max hold
    assert deadline(held, None, now, None, pos, tp) == now - 1  # restored: due at once
    held.exit_block_until = now + 10**9
    assert deadline(held, back, now, None, pos, tp) == now + 10**9
    err = SymbolState(SYM, phase=P.ERROR, entered_ms=now, error_count=3)
    assert deadline(err, None, now, None, None, tp) == now + error_backoff_ms(3, 10.0, 300.0)


def test_decisions_may_change_only_what_the_machine_does_not_own() -> None:
    assert CHANGEABLE < STATE_FIELDS
    assert not CHANGEABLE & {"phase", "seq", "entered_ms", "history", "symbol"}


def test_reservation_fee_is_the_venues_dearer_fee_else_the_risk_setting() -> None:
    live_shaped = filt()  # a venue whose market data says nothing about fees
    assert reserve_fee_rate(live_shaped, D("0.0025")) == D("0.0025")
    stated = replace(live_shaped, maker_fee=D("0.002"), taker_fee=D("0.001"))
    assert reserve_fee_rate(stated, D("0.0025")) == D("0.002")
    assert reserve_fee_rate(replace(live_shaped, taker_fee=D("0.0005")), D(1)) == D("0.0005")


def test_slots_count_positions_and_orders_in_any_phase() -> None:
    assert (
        slots_used(
            [(P.IDLE, D(0), 0), (P.ERROR, D(1), 0), (P.IDLE, D(0), 1), (P.WAIT_FILL, D(0), 0)]
        )
        == 3
    )


def test_a_decision_changes_nothing_in_what_it_was_given() -> None:
    s, t = entered(P.EXIT_EVAL, E.EXIT_CONFIRMED, step=1, exit_reason="take_profit")
    before = (s.step, s.sell_leg, s.active_intent, s.phase)
    pos = position("1", "100")
    v = FixedView(SYM, filt(), position=pos, quote=ticker(D(101)))
    d = plan_sell(s, t, v, policy())
    assert isinstance(d.commands[0], Place)
    assert (s.step, s.sell_leg, s.active_intent, s.phase) == before
    assert pos.qty == 1 and pos.sell_locked == 0
