"""The pure exit check on a candle (``strategy.bar_exit``) against the one on a tick
(``strategy.check_exit``), the take-profit target net of fees, and the bid a level met
inside a candle stands for (``engine.bars.trigger_bid``)."""

from __future__ import annotations

import math
from dataclasses import astuple
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmtrader.engine.bars import trigger_bid
from fsmtrader.strategy import ExitRule, ExitState, bar_exit, calm, check_exit, open_exit, target

RULE = ExitRule(2.0, 3.0, 1.0, 0.5)  # target 102, stop 97, trailing armed at 101 by 0.5 %
PLAIN = ExitRule(2.0, 3.0, 0.0, 0.5)  # no trailing stop
RULES = ("stop_first", "target_first", "nearer_open_first")


def fresh(rule: ExitRule = RULE) -> ExitState:
    return open_exit(100.0, rule)


prices = st.lists(st.floats(90.0, 110.0, allow_nan=False), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(path=prices, rule=st.sampled_from(RULES), trailing=st.booleans())
def test_a_tick_gives_exactly_what_check_exit_gives(
    path: list[float], rule: str, trailing: bool
) -> None:
    one, other = fresh(RULE if trailing else PLAIN), fresh(RULE if trailing else PLAIN)
    for p in path:
        want = check_exit(one, p)
        got = bar_exit(other, p, p, p, p, rule)  # type: ignore[arg-type]
        assert got == (want, p)
        assert astuple(other) == astuple(one)
        if want:
            break


@pytest.mark.parametrize(
    ("candle", "want"),
    [
        ((100.0, 102.5, 99.9, 101.0), ("take_profit", 102.0)),
        ((100.0, 100.5, 96.0, 96.5), ("stop_loss", 97.0)),
        ((96.0, 96.5, 95.5, 96.2), ("stop_loss", 96.0)),  # opens past the stop
        ((103.0, 103.5, 102.8, 103.2), ("take_profit", 103.0)),  # opens past the target
        ((100.0, 100.9, 99.0, 100.5), ("", 100.5)),  # nothing: the close
    ],
)
def test_levels_are_met_inside_the_candle_at_the_level(
    candle: tuple[float, float, float, float], want: tuple[str, float]
) -> None:
    reason, price = bar_exit(fresh(PLAIN), *candle)
    assert reason == want[0] and price == pytest.approx(want[1], rel=1e-12)


BOTH = (100.0, 102.5, 96.5, 100.0)


@pytest.mark.parametrize(
    ("rule", "candle", "reason"),
    [
        ("stop_first", BOTH, "stop_loss"),
        ("target_first", BOTH, "take_profit"),
        ("nearer_open_first", BOTH, "take_profit"),  # 2 to the target, 3 to the stop
        ("nearer_open_first", (98.0, 102.5, 96.5, 100.0), "stop_loss"),  # 1 vs 4
        ("nearer_open_first", (99.5, 102.5, 96.5, 100.0), "stop_loss"),  # a tie: the stop
    ],
)
def test_both_touch_orders_the_low_and_the_high(
    rule: str, candle: tuple[float, float, float, float], reason: str
) -> None:
    assert bar_exit(fresh(PLAIN), *candle, rule)[0] == reason  # type: ignore[arg-type]


def test_nearer_open_first_measures_to_the_armed_trailing_stop() -> None:
    ex = fresh()
    assert bar_exit(ex, 101.5, 101.6, 101.4, 101.6) == ("", 101.6)  # armed, peak 101.60
    # the trailing stop (101.092) is 0.51 below the open, the target 0.40 above: target
    assert bar_exit(ex, 101.6, 102.5, 100.0, 101.0, "nearer_open_first")[0] == "take_profit"
    ex = fresh()
    bar_exit(ex, 101.5, 101.6, 101.4, 101.6)
    # opening at 101.50: the trailing stop 0.41 below, the target 0.50 above: the stop
    assert bar_exit(ex, 101.5, 102.5, 100.0, 101.0, "nearer_open_first")[0] == "trailing_stop"


def test_the_trailing_stop_follows_the_path() -> None:
    ex = fresh()
    # high first: armed at 101, peak 101.60, then the low goes through 101.60 * 0.995
    reason, price = bar_exit(ex, 100.0, 101.6, 100.9, 101.5, "target_first")
    assert reason == "trailing_stop" and price == pytest.approx(101.6 * 0.995, rel=1e-12)
    ex = fresh()
    assert bar_exit(ex, 100.0, 101.6, 100.9, 101.5, "stop_first") == ("", 101.5)
    assert (ex.peak, ex.trail_active) == (101.6, True)  # the peak came after the low
    reason, price = bar_exit(ex, 101.5, 101.55, 100.5, 100.8)
    assert reason == "trailing_stop" and price == pytest.approx(101.6 * 0.995, rel=1e-12)


def test_the_higher_of_the_two_stops_is_met_first_falling() -> None:
    ex = open_exit(100.0, ExitRule(10.0, 0.5, 0.1, 5.0))  # stop 99.5; trail 5 % below peak
    assert bar_exit(ex, 100.2, 100.2, 100.2, 100.2) == ("", 100.2)  # armed
    reason, price = bar_exit(ex, 100.2, 100.2, 90.0, 91.0)
    assert reason == "stop_loss" and price == pytest.approx(99.5, rel=1e-12)


def test_a_calm_candle_only_raises_the_peak() -> None:
    ex = fresh()
    assert calm(ex, 100.9, 97.1)
    assert bar_exit(ex, 100.0, 100.9, 97.1, 100.0) == ("", 100.0)
    assert (ex.peak, ex.trail_active) == (100.9, False)
    assert not calm(ex, 101.0, 99.0)  # would arm the trailing stop
    assert not calm(ex, 100.5, 97.0)  # reaches the stop
    assert not calm(ex, 102.0, 99.0)  # reaches the target


@settings(max_examples=300, deadline=None)
@given(
    o=st.floats(95.0, 105.0),
    up=st.floats(0.0, 5.0),
    down=st.floats(0.0, 5.0),
    c=st.floats(0.0, 1.0),
    rule=st.sampled_from(RULES),
)
def test_the_price_is_always_inside_the_candle(
    o: float, up: float, down: float, c: float, rule: str
) -> None:
    h, lo = o + up, o - down
    close = lo + (h - lo) * c
    reason, price = bar_exit(fresh(), o, h, lo, close, rule)  # type: ignore[arg-type]
    assert lo <= price <= h
    if not reason:
        assert price == close


def test_take_profit_net_of_fees() -> None:
    net = ExitRule(2.0, 3.0, 0.0, 0.5, take_profit_net_of_fees=True)
    x = target(100.0, net, 0.001)
    assert x == pytest.approx(102.0 * 1.001 / 0.999, rel=1e-12)
    assert (x * 0.999 - 100.0 * 1.001) / (100.0 * 1.001) == pytest.approx(0.02, rel=1e-9)
    assert target(100.0, PLAIN, 0.001) == pytest.approx(102.0, rel=1e-12)  # the fee unused
    assert open_exit(100.0, net, fee_rate=0.001).tp_at == x
    assert math.isinf(ExitState(peak=1.0).tp_at)  # a bare tracker never exits


D = Decimal
TICK = D("0.01")


@pytest.mark.parametrize(
    ("reason", "price", "low", "high", "want"),
    [
        ("take_profit", 102.3721, 100.0, 103.0, D("102.38")),  # the target: up to the grid
        ("stop_loss", 97.0079, 96.0, 99.0, D("97.00")),  # a stop: down to the grid
        ("trailing_stop", 101.092, 100.0, 102.0, D("101.09")),
        ("stop_loss", 60 * 0.97, 58.0, 59.0, D("58.20")),  # float noise cut first
        ("take_profit", 102.005, 101.0, 102.0, D("102.00")),  # never above the high
        ("stop_loss", 95.001, 95.005, 96.0, D("95.01")),  # never below the low
    ],
)
def test_the_bid_a_level_stands_for_is_on_the_grid_inside_the_candle(
    reason: str, price: float, low: float, high: float, want: Decimal
) -> None:
    assert trigger_bid(reason, price, TICK, low, high) == want
