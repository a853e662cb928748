"""Quantizing is exact on any finite grid (a tick of 1e-100, a price of 1e30), checked
against exact rational arithmetic; a grid too wide to compute is a ValueError naming
the field, never a raw decimal exception."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmtrader.markets import (
    Grid,
    MarketFilters,
    ceil_to,
    on_grid,
    preflight,
    q_amount,
    q_price,
)

D = Decimal

# Ticks from 1e-100 to 1e6 with up to 6 significant digits (0.2, 110, 1.5e-100, ...).
ticks = st.builds(
    lambda digits, exp: D(digits).scaleb(exp),
    st.integers(min_value=1, max_value=999_999),
    st.integers(min_value=-105, max_value=0),
).filter(lambda t: D("1e-100") <= t <= D("1e6"))
values = st.builds(
    lambda digits, exp: D(digits).scaleb(exp),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(min_value=-140, max_value=10),
)


@settings(max_examples=400, deadline=None)
@given(value=values, tick=ticks)
def test_floor_and_ceil_are_exact_on_any_grid(value: Decimal, tick: Decimal) -> None:
    v, t = Fraction(value), Fraction(tick)
    floor = q_price(value, tick)
    assert Fraction(floor) == math.floor(v / t) * t
    assert Fraction(q_amount(value, tick)) == Fraction(floor)
    ceil = ceil_to(value, tick)
    assert Fraction(ceil) == math.ceil(v / t) * t
    assert on_grid(floor, tick) and on_grid(ceil, tick)
    assert on_grid(value, tick) == ((v / t).denominator == 1)


def test_the_cases_an_80_digit_context_got_wrong() -> None:
    assert q_price(D("1e30"), D("1e-100")) == D("1e30")
    assert q_price(D("50000.123"), D("1e-100")) == D("50000.123")
    long = D("1." + "0" * 95 + "1")
    assert q_price(long, D("1e-100")) == long  # 97 digits: an 80-digit context rounds
    assert ceil_to(long, D("1e-96")) == long
    assert on_grid(D("50000"), D("1e-100"))
    assert not on_grid(D("1e-101"), D("1e-100"))


def test_a_tiny_tick_market_passes_preflight_exactly() -> None:
    m = MarketFilters("PEPE/USDT", D("1e-100"), D("1"), D("1"), D("5"), "PEPE", "USDT")
    pf = preflight("buy", D("0.00000123456789123456789"), D("10"), m, budget=D("1e9"))
    assert pf.ok and pf.bumped
    assert pf.notional >= 5 and (pf.amount - 1) * pf.price < 5  # the smallest valid buy


def test_an_unrepresentable_grid_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^price: .*digits"):
        q_price(D("1e30"), D("1e-9000"))
    with pytest.raises(ValueError, match=r"^amount: "):
        q_amount(D("1e5000"), D("1e-10"))
    with pytest.raises(ValueError, match="grid must be > 0"):
        q_price(D("1"), D("0"))


def test_a_market_whose_grid_cannot_be_represented_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="X/USDT: tick_size 1E-9000 is not a grid"):
        MarketFilters("X/USDT", D("1e-9000"), D("1"), D("1"), D("5"), "X", "USDT")
    with pytest.raises(ValueError, match="X/USDT: step_size"):
        MarketFilters("X/USDT", D("0.01"), D("1e-6000"), D("0"), D("5"), "X", "USDT")
    tiny = MarketFilters("X/USDT", D("1e-100"), D("1e-100"), D("0"), D("5"), "X", "USDT")
    assert q_price(D("1e18"), tiny.tick_size) == D("1e18")


units = st.one_of(ticks, st.sampled_from([D("1E+1"), D("2E+2"), D("110"), D("0.2"), D("1")]))


@settings(max_examples=400, deadline=None)
@given(value=values, unit=units)
def test_a_grid_quantizes_as_the_functions_do_digit_for_digit(
    value: Decimal, unit: Decimal
) -> None:
    """The depth loop's Grid is the same arithmetic: equal values, and the same digits
    (the audit trail prints them)."""
    for got, want in (
        (Grid(unit, "price").floor(value), q_price(value, unit)),
        (Grid(unit, "amount").floor(value), q_amount(value, unit)),
        (Grid(unit).ceil(value), ceil_to(value, unit)),
    ):
        assert str(got) == str(want)


def test_a_grid_refuses_what_the_functions_refuse_with_the_same_message() -> None:
    with pytest.raises(ValueError, match="grid must be > 0"):
        Grid(D("0"), "price")
    with pytest.raises(ValueError, match=r"^price: .*digits"):
        Grid(D("1e-9000"), "price").floor(D("1e30"))
    for bad in (D("NaN"), D("Infinity")):
        with pytest.raises(ValueError, match=r"^amount: must be finite"):
            Grid(D("0.001"), "amount").floor(bad)
        with pytest.raises(ValueError, match=r"^amount: must be finite"):
            q_amount(bad, D("0.001"))
