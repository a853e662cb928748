"""The loss breakers as a pure function: each breaker crosses exactly at its limit, names
its setting and figures, never overwrites a halt, is off at 0, starts a new daily baseline
at each UTC midnight, and after a person lifts its halt starts again from the current
figures, so the same losses do not trip it at once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmtrader.config.rollout_sections import BreakerSettings
from fsmtrader.portfolio import Portfolio, Position
from fsmtrader.rollout.breakers import (
    DAY_MS,
    PREFIX,
    BreakerState,
    Figures,
    armed,
    check,
    equity,
)

D = Decimal
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
OFF = BreakerSettings(max_daily_loss=D(0), max_drawdown_pct=0, max_consecutive_losses=0)


def limits(**kw: object) -> BreakerSettings:
    return OFF.model_copy(update=kw)


def fig(
    *, ms: int = T0, pnl: str = "0", eq: str = "1000", trades: int = 0, new: tuple[str, ...] = ()
) -> Figures:
    return Figures(
        now_ms=ms,
        realized_pnl=D(pnl),
        equity=D(eq),
        trades=trades,
        new_pnls=tuple(D(x) for x in new),
        quote="USDT",
    )


def test_the_daily_loss_crosses_at_its_limit_and_names_the_figures() -> None:
    lim = limits(max_daily_loss=D("50"))
    state, c = check(BreakerState(), fig(pnl="10"), lim, halted="")
    assert c is None and state.day_start_pnl == D("10")
    state, c = check(state, fig(ms=T0 + 1000, pnl="-39.99"), lim, halted="")
    assert c is None  # 49.99 lost
    state, c = check(state, fig(ms=T0 + 2000, pnl="-40"), lim, halted="")
    assert c is not None and c.breaker == "max_daily_loss"
    assert c.reason == (
        "breaker: daily realised loss 50 USDT >= max_daily_loss 50 (since 2026-01-01 00:00 UTC)"
    )
    assert c.figures["loss"] == "50" and state.tripped == c.reason


def test_a_new_utc_day_starts_a_new_baseline() -> None:
    lim = limits(max_daily_loss=D("50"))
    state, _ = check(BreakerState(), fig(ms=T0 + DAY_MS - 60_000), lim, halted="")
    state, c = check(state, fig(ms=T0 + DAY_MS - 1, pnl="-49"), lim, halted="")
    assert c is None
    state, c = check(state, fig(ms=T0 + DAY_MS, pnl="-49"), lim, halted="")
    assert c is None and state.day_start_pnl == D("-49") and state.day == (T0 + DAY_MS) // DAY_MS
    state, c = check(state, fig(ms=T0 + DAY_MS + 5, pnl="-99"), lim, halted="")
    assert c is not None and "since 2026-01-02 00:00 UTC" in c.reason


def test_the_drawdown_is_from_the_peak_equity() -> None:
    lim = limits(max_drawdown_pct=10.0)
    state, _ = check(BreakerState(), fig(eq="1000"), lim, halted="")
    state, c = check(state, fig(eq="1200"), lim, halted="")
    assert c is None and state.peak_equity == D("1200")
    state, c = check(state, fig(eq="1080.01"), lim, halted="")
    assert c is None  # 9.999 % down from 1200
    state, c = check(state, fig(eq="1080"), lim, halted="")
    assert c is not None and c.breaker == "max_drawdown_pct"
    assert c.reason == (
        "breaker: drawdown 10% from peak equity 1200 USDT (equity 1080 USDT) >= max_drawdown_pct 10"
    )


def test_the_losing_streak_counts_losses_in_a_row_and_a_win_or_zero_resets_it() -> None:
    lim = limits(max_consecutive_losses=3)
    state, c = check(BreakerState(), fig(), lim, halted="")
    state, c = check(state, fig(trades=2, new=("-1", "-2")), lim, halted="")
    assert c is None and state.streak == 2
    state, c = check(state, fig(trades=3, new=("0",)), lim, halted="")
    assert c is None and state.streak == 0
    state, c = check(state, fig(trades=6, new=("-1", "-1", "-0.00000001")), lim, halted="")
    assert c is not None and c.breaker == "max_consecutive_losses"
    assert c.reason == "breaker: 3 losing trades in a row >= max_consecutive_losses 3"
    assert state.trades_seen == 6


def test_zero_turns_every_breaker_off() -> None:
    state, _ = check(BreakerState(), fig(eq="1000"), OFF, halted="")
    state, c = check(
        state, fig(pnl="-1000000", eq="1", trades=50, new=("-1",) * 50), OFF, halted=""
    )
    assert c is None and state.streak == 50


def test_a_halt_is_never_overwritten_and_a_lift_re_arms_from_the_current_figures() -> None:
    lim = limits(max_daily_loss=D("5"), max_drawdown_pct=1.0, max_consecutive_losses=2)
    state, _ = check(BreakerState(), fig(), lim, halted="")
    other = "reconcile: 1 difference"
    state, c = check(state, fig(pnl="-9", eq="991", trades=2, new=("-4", "-5")), lim, halted=other)
    assert c is None and state.tripped == ""  # halted already, by something else
    state, c = check(state, fig(pnl="-9", eq="991", trades=2), lim, halted="")
    assert c is not None and c.breaker == "max_daily_loss"
    ours = c.reason
    state, c = check(state, fig(pnl="-9", eq="991", trades=2), lim, halted=ours)
    assert c is None and state.tripped == ours  # still ours
    # a person lifts it: armed from now, nothing crosses on the same figures
    state, c = check(state, fig(pnl="-9", eq="991", trades=2), lim, halted="")
    assert c is None and state.tripped == ""
    assert (state.streak, state.peak_equity, state.day_start_pnl) == (0, D("991"), D("-9"))
    state, c = check(state, fig(pnl="-14", eq="986", trades=3, new=("-5",)), lim, halted="")
    assert c is not None and c.breaker == "max_daily_loss" and "loss 5 USDT" in c.reason


def test_a_committed_halt_whose_state_was_not_saved_is_adopted() -> None:
    """A crash between the halt's commit and the state's save: the restart's state does
    not know the halt is its own, and takes it back (so a later lift re-arms)."""
    lim = limits(max_consecutive_losses=1)
    state = armed(fig())
    halt = "breaker: 1 losing trades in a row >= max_consecutive_losses 1"
    state, c = check(state, fig(trades=1, new=("-1",)), lim, halted=halt)
    assert c is None and state.tripped == halt
    state, c = check(state, fig(trades=1), lim, halted="")
    assert c is None and state.streak == 0


def test_the_state_round_trips_through_json_and_a_damaged_one_is_refused() -> None:
    state = BreakerState(
        day=20454,
        day_start_pnl=D("-1.5"),
        peak_equity=D("1000.1"),
        streak=2,
        trades_seen=9,
        tripped="breaker: x",
    )
    assert BreakerState.from_json(state.to_json()) == state
    assert BreakerState.from_json("") == BreakerState()
    with pytest.raises(ValueError, match="damaged"):
        BreakerState.from_json('{"day": 1}')


def test_equity_is_cash_reservations_and_holdings_at_the_last_prices() -> None:
    pf = Portfolio(quote="USDT", cash=D("900"))
    pf.reserved["i1"] = D("25")
    pf.positions["BTC/USDT"] = Position(
        "BTC/USDT", "d", 0, qty=D("0.001"), bought_qty=D("0.001"), buy_cost=D("50")
    )
    pf.positions["ETH/USDT"] = Position(
        "ETH/USDT", "d", 0, qty=D("0.01"), bought_qty=D("0.01"), buy_cost=D("30")
    )
    pf.dust["SOL/USDT"] = D("0.5")
    marks = {"BTC/USDT": 40_000.0, "SOL/USDT": 100.0, "ETH/USDT": 0.0}
    # BTC at its mark (40), ETH without a price at its entry (30), SOL dust at 100 (50)
    assert equity(pf, marks) == D("900") + D("25") + D("40") + D("30") + D("50")
    # a broken feed's mark is no mark: never an infinite or NaN equity
    for bad in (float("inf"), float("nan"), -1.0):
        assert equity(pf, {**marks, "BTC/USDT": bad}) == D("900") + D("25") + D("50") + D("30") + D(
            "50"
        )


MOVES = st.lists(
    st.tuples(
        st.integers(0, 3 * DAY_MS // 4),  # time step
        st.integers(-3000, 3000),  # realised change (cents)
        st.integers(-5000, 5000),  # equity change (cents)
        st.lists(st.integers(-500, 500), max_size=3),  # new trades' PnL (cents)
        st.booleans(),  # a person lifts the halt before this step
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(moves=MOVES, daily=st.integers(0, 60), dd=st.integers(0, 20), streak=st.integers(0, 4))
def test_any_path_crosses_only_when_armed_and_never_right_after_a_lift(
    moves: list[tuple[int, int, int, list[int], bool]], daily: int, dd: int, streak: int
) -> None:
    lim = limits(max_daily_loss=D(daily), max_drawdown_pct=float(dd), max_consecutive_losses=streak)
    ms, pnl, eq, trades = T0, D(0), D(1000), 0
    state, halted = BreakerState(), ""
    for step, dpnl, deq, new, lift in moves:
        ms, pnl, eq = ms + step, pnl + D(dpnl) / 100, max(eq + D(deq) / 100, D(1))
        trades += len(new)
        f = Figures(ms, pnl, eq, trades, tuple(D(x) / 100 for x in new), "USDT")
        if lift and halted:
            halted = ""
            state, c = check(state, f, lim, halted=halted)
            # a lift is seen on the first check after it: nothing crosses on those figures
            assert c is None and state.tripped == "" and state.streak == 0
            continue
        before = halted
        state, c = check(state, f, lim, halted=halted)
        assert state.peak_equity >= eq and state.trades_seen == trades
        if c is None:
            continue
        assert not before, "crossed while halted"
        assert c.reason.startswith(PREFIX) and c.breaker in c.reason
        assert getattr(lim, c.breaker) not in (0, D(0))
        halted = c.reason
        assert state.tripped == halted
