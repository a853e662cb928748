"""Exchange filters: floor quantization and the order pre-flight (reading a ccxt market
into filters is the adapter's, in ``tests/unit/exchange/test_ccxt_convert.py``).

Expected values are computed independently with ``fractions.Fraction`` (exact rational
arithmetic) rather than restated from the Decimal implementation.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmtrader.markets import (
    MarketFilters,
    PreflightResult,
    Side,
    can_afford,
    ceil_to,
    preflight,
    q_amount,
    q_price,
)

# The seed markets from the requirements (min_qty: one step unless the venue says more).
ZBT = MarketFilters(
    "ZBT/USDT", Decimal("0.0001"), Decimal("0.01"), Decimal("0.01"), Decimal("1"), "ZBT", "USDT"
)
BLESS = MarketFilters(
    "BLESS/USDT", Decimal("0.000001"), Decimal("1"), Decimal("1"), Decimal("5"), "BLESS", "USDT"
)
BTC = MarketFilters(
    "BTC/USDT",
    Decimal("0.01"),
    Decimal("0.00001"),
    Decimal("0.00001"),
    Decimal("10"),
    "BTC",
    "USDT",
)
SEED_MARKETS = [ZBT, BLESS, BTC]
SIDES: tuple[Side, Side] = ("buy", "sell")


def frac(x: Decimal | str | int) -> Fraction:
    return Fraction(Decimal(x))


def floor_ref(value: Decimal | str, unit: Decimal | str) -> Fraction:
    """Exact floor to a multiple of ``unit`` in rational arithmetic."""
    u = frac(unit)
    return math.floor(frac(value) / u) * u


def min_valid_amount(price: Decimal, f: MarketFilters) -> Fraction:
    """Smallest on-grid amount meeting min_qty and min_notional at ``price`` (rational)."""
    step = frac(f.step_size)
    k = max(
        math.ceil(frac(f.min_notional) / (frac(price) * step)),
        math.ceil(frac(f.min_qty) / step),
        1,
    )
    return k * step


def on_grid(value: Decimal, unit: Decimal) -> bool:
    return (frac(value) / frac(unit)).denominator == 1


# --- q_price / q_amount ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tick", "expected"),
    [
        ("1.3", "0.2", "1.2"),
        ("1.4", "0.2", "1.4"),
        ("0.19", "0.2", "0"),
        ("250", "110", "220"),
        ("219.999", "110", "110"),
        ("330", "110", "330"),
        ("0.12349", "0.0001", "0.1234"),
        ("0.123456789", "0.00000001", "0.12345678"),
        ("43000.129", "0.01", "43000.12"),
        ("0.30000000000000004", "0.1", "0.3"),
        ("-0.05", "0.1", "-0.1"),  # floor, not truncation
    ],
)
def test_q_price_floors_to_any_tick(value: str, tick: str, expected: str) -> None:
    got = q_price(value, tick)
    assert isinstance(got, Decimal)
    assert got == Decimal(expected)
    assert Fraction(got) == floor_ref(value, tick)


@pytest.mark.parametrize("fn", [q_price, q_amount])
def test_quantize_results_have_no_float_noise(fn: Any) -> None:
    r = fn("0.30000000000000004", "0.1")
    assert r == Decimal("0.3")
    assert str(r) == "0.3"
    # 0.7 as a binary float is 0.69999999999999995559...; it must not floor to 0.6.
    assert str(fn(0.7, "0.1")) == "0.7"
    assert str(fn(0.1 + 0.2, 0.1)) == "0.3"
    assert fn(3e-8, 1e-8) == Decimal("0.00000003")
    # digits are exactly those of the grid point, not a long binary expansion
    assert len(fn(1.1, "0.01").as_tuple().digits) <= 3


@pytest.mark.parametrize(
    "value", ["12.345", Decimal("12.345"), 12.345], ids=["str", "Decimal", "float"]
)
def test_q_amount_accepts_str_decimal_float(value: Any) -> None:
    assert q_amount(value, "0.01") == Decimal("12.34")
    assert q_amount(value, Decimal("0.01")) == Decimal("12.34")
    assert q_amount(value, 0.01) == Decimal("12.34")


def test_q_amount_accepts_int() -> None:
    assert q_amount(17, 5) == Decimal(15)
    assert q_amount(17, "0.5") == Decimal(17)
    assert q_price(1234, 110) == Decimal(1210)


@pytest.mark.parametrize("fn", [q_price, q_amount])
@pytest.mark.parametrize("tick", [0, "0", -1, "-0.01", Decimal("-0.1"), 0.0])
def test_quantize_rejects_non_positive_tick(fn: Any, tick: Any) -> None:
    with pytest.raises(ValueError):
        fn("1.5", tick)


@pytest.mark.parametrize("fn", [q_price, q_amount])
@pytest.mark.parametrize(
    "bad",
    ["nan", "NaN", "sNaN", "inf", "-Infinity", float("nan"), float("inf"), Decimal("NaN")],
)
def test_quantize_rejects_nan_and_infinity(fn: Any, bad: Any) -> None:
    with pytest.raises(ValueError):
        fn(bad, "0.01")
    with pytest.raises(ValueError):
        fn("1.5", bad)


@pytest.mark.parametrize("fn", [q_price, q_amount])
@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "1,5", "0x10", "--1", None, True, [1]])
def test_quantize_rejects_garbage(fn: Any, bad: Any) -> None:
    with pytest.raises(ValueError):
        fn(bad, "0.01")
    with pytest.raises(ValueError):
        fn("1.5", bad)


# Values up to 16 significant digits and grids up to 3: the range real prices live in.
values = st.builds(
    lambda m, e: Decimal(m).scaleb(e),
    st.integers(-(10**16), 10**16),
    st.integers(-18, 2),
)
ticks = st.one_of(
    st.sampled_from([Decimal(t) for t in ("0.2", "110", "0.0001", "1e-8", "0.01", "1", "0.25")]),
    st.builds(lambda m, e: Decimal(m).scaleb(e), st.integers(1, 999), st.integers(-10, 3)),
)


@settings(max_examples=400, deadline=None)
@given(value=values, tick=ticks)
def test_quantize_floor_properties(value: Decimal, tick: Decimal) -> None:
    for fn in (q_price, q_amount):
        r = fn(value, tick)
        assert r <= value
        assert value - r < tick
        assert r % tick == 0
        assert Fraction(r) == floor_ref(value, tick)
        assert fn(r, tick) == r  # idempotent


# Beyond Decimal's default 28-digit context: 40-digit values, grids down to 1e-30.
long_values = st.builds(
    lambda m, e: Decimal(m).scaleb(e),
    st.integers(-(10**40), 10**40),
    st.integers(-45, 2),
)
long_ticks = st.builds(
    lambda m, e: Decimal(m).scaleb(e), st.integers(1, 10**6 - 1), st.integers(-30, 3)
)


@settings(max_examples=300, deadline=None)
@given(value=long_values, tick=long_ticks)
def test_quantize_is_exact_beyond_the_default_precision(value: Decimal, tick: Decimal) -> None:
    floored = q_price(value, tick)
    assert Fraction(floored) == floor_ref(value, tick)
    assert Fraction(q_amount(value, tick)) == Fraction(floored)
    ceiled = ceil_to(value, tick)
    u = frac(tick)
    assert Fraction(ceiled) == math.ceil(frac(value) / u) * u


def test_quantize_never_rounds_up_a_28_digit_value() -> None:
    v = Decimal("0.9999999999999999999999999999")  # 28 digits: fits the default context
    assert q_price(v, "0.2") <= v
    assert q_amount(v, "0.2") <= v
    w = Decimal("0.2000000000000000000000000001")
    assert ceil_to(w, "0.2") >= w


# --- preflight: the seed markets ----------------------------------------------------------


def assert_valid(r: PreflightResult, f: MarketFilters, budget: Decimal | None = None) -> None:
    assert r.ok, r
    assert on_grid(r.price, f.tick_size)
    assert on_grid(r.amount, f.step_size)
    assert r.amount >= f.min_qty
    assert r.price * r.amount >= f.min_notional
    if budget is not None:
        assert r.price * r.amount <= budget


@pytest.mark.parametrize(
    ("f", "price", "amount", "budget"),
    [
        (ZBT, "0.1234", "1", "5"),
        (ZBT, "0.0512", "0.01", "1.5"),
        (BLESS, "0.012345", "100", "10"),
        (BLESS, "0.000123", "1", "6"),
        (BTC, "43000.12", "0.0001", "20"),
        (BTC, "97123.45", "0.00001", "11"),
    ],
)
def test_small_buy_is_bumped_to_min_notional_within_budget(
    f: MarketFilters, price: str, amount: str, budget: str
) -> None:
    assert Decimal(price) * Decimal(amount) < f.min_notional  # really too small
    r = preflight("buy", price, amount, f, budget=budget)
    assert_valid(r, f, Decimal(budget))
    assert r.bumped
    assert r.notional == r.price * r.amount
    assert r.notional >= f.min_notional
    assert r.notional <= Decimal(budget)
    # bumped to the *smallest* valid amount, not just any valid one
    assert Fraction(r.amount) == min_valid_amount(r.price, f)
    assert r.price == Decimal(price)


@pytest.mark.parametrize(
    ("f", "price", "amount", "budget"),
    [
        (ZBT, "0.1234", "1", "0.9"),
        (BLESS, "0.012345", "100", "5"),  # 406 BLESS = 5.01207 > 5: the grid overshoots
        (BTC, "43000.12", "0.0001", "10"),  # 0.00024 BTC = 10.32 > 10
        (BTC, "43000.12", "0.0001", "0"),
    ],
)
def test_small_buy_is_aborted_when_min_notional_exceeds_budget(
    f: MarketFilters, price: str, amount: str, budget: str
) -> None:
    r = preflight("buy", price, amount, f, budget=budget)
    assert not r.ok
    assert r.reason == "min_notional_exceeds_budget"
    assert not r.bumped
    assert min_valid_amount(r.price, f) * frac(r.price) > frac(budget)


@pytest.mark.parametrize(
    ("f", "price", "amount", "reason"),
    [
        (ZBT, "0.5", "0.123", "below_min_notional"),  # 0.12 ZBT = 0.06 USDT
        (ZBT, "50", "0.009", "below_min_qty"),  # floors to 0
        (BLESS, "0.01", "300", "below_min_notional"),  # 3 USDT < 5
        (BLESS, "100", "0.5", "below_min_qty"),
        (BTC, "43000", "0.0002", "below_min_notional"),  # 8.6 USDT < 10
        (BTC, "43000", "0.000009", "below_min_qty"),
    ],
)
def test_small_sell_fails_and_is_never_bumped(
    f: MarketFilters, price: str, amount: str, reason: str
) -> None:
    for budget in (None, "1000000"):
        r = preflight("sell", price, amount, f, budget=budget)
        assert not r.ok
        assert r.reason == reason
        assert not r.bumped
        assert r.amount == q_amount(amount, f.step_size)
        assert r.amount <= Decimal(amount)


def test_off_grid_input_is_floored() -> None:
    r = preflight("buy", "43000.129", "0.000459", BTC)
    assert r.ok and not r.bumped
    assert r.price == Decimal("43000.12")
    assert r.amount == Decimal("0.00045")
    r = preflight("sell", "0.12349", "12.349", ZBT)
    assert r.ok and (r.price, r.amount) == (Decimal("0.1234"), Decimal("12.34"))
    r = preflight("buy", "0.0123459", "999.9", BLESS)
    assert r.ok and (r.price, r.amount) == (Decimal("0.012345"), Decimal("999"))


def test_budget_caps_a_large_buy_by_flooring() -> None:
    r = preflight("buy", "43000", "1", BTC, budget="100")
    assert r.ok and not r.bumped
    assert Fraction(r.amount) == floor_ref(Decimal(100) / Decimal(43000), BTC.step_size)
    assert r.notional <= 100
    assert r.notional + Decimal("43000") * BTC.step_size > 100  # the largest that fits


def test_price_below_one_tick_fails() -> None:
    r = preflight("buy", "0.00000099", "10", BLESS, budget="100")
    assert not r.ok and r.reason == "price_below_tick"


def test_preflight_rejects_unknown_side() -> None:
    with pytest.raises(ValueError):
        preflight("short", "1", "1", BTC)  # type: ignore[arg-type]


def price_strategy(f: MarketFilters) -> st.SearchStrategy[Decimal]:
    """Prices from ~0.5 tick up to ~1e6 ticks above a market-sensible level, off-grid."""
    places = -f.tick_size.as_tuple().exponent + 3  # type: ignore[operator]
    hi = int(f.tick_size * 10**7 * 10**places)
    return st.integers(1, hi).map(lambda n: Decimal(n).scaleb(-places))


def amount_strategy(f: MarketFilters) -> st.SearchStrategy[Decimal]:
    places = -f.step_size.as_tuple().exponent + 2  # type: ignore[operator]
    hi = int(f.step_size * 10**6 * 10**places)
    return st.integers(0, hi).map(lambda n: Decimal(n).scaleb(-places))


budgets = st.one_of(
    st.none(),
    st.integers(0, 10**8).map(lambda n: Decimal(n).scaleb(-4)),
)


@pytest.mark.parametrize("f", SEED_MARKETS, ids=lambda f: f.symbol)
@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_preflight_properties(f: MarketFilters, data: st.DataObject) -> None:
    price = data.draw(price_strategy(f), label="price")
    amount = data.draw(amount_strategy(f), label="amount")
    budget = data.draw(budgets, label="budget")
    side: Side = data.draw(st.sampled_from(SIDES), label="side")
    r = preflight(side, price, amount, f, budget=budget)
    assert r.price == q_price(price, f.tick_size)
    if r.ok:
        assert_valid(r, f, budget)
        assert r.price <= price
    if side == "sell":
        assert not r.bumped
        assert r.amount <= amount  # a sell never grows
        if r.ok and budget is None:
            assert r.amount == q_amount(amount, f.step_size)
        elif r.price > 0 and budget is None:
            assert frac(r.amount) < min_valid_amount(r.price, f)
            assert r.reason in ("below_min_qty", "below_min_notional")
    else:
        if r.price > 0 and (
            budget is None or min_valid_amount(r.price, f) * frac(r.price) <= frac(budget)
        ):
            assert r.ok, r
        if not r.ok and r.price > 0:
            assert r.reason == "min_notional_exceeds_budget"
        if r.bumped:
            assert Fraction(r.amount) == min_valid_amount(r.price, f)
            assert frac(q_amount(amount, f.step_size)) < min_valid_amount(r.price, f)


# --- can_afford ---------------------------------------------------------------------------


def test_can_afford_seed_cases() -> None:
    assert can_afford("43000.12", BTC, "10.33")  # 0.00024 BTC = 10.3200288
    assert not can_afford("43000.12", BTC, "10.31")
    assert can_afford("0.012345", BLESS, "5.02")  # 406 BLESS = 5.01207
    assert not can_afford("0.012345", BLESS, "5")
    assert can_afford("0.1234", ZBT, "1.01")  # 8.11 ZBT = 1.000774
    assert not can_afford("0.1234", ZBT, "1")
    assert not can_afford("0.0000001", BLESS, "1000")  # price floors to 0
    assert can_afford("43000.12", BTC, "10.3200288")  # exactly the smallest order fits


def test_min_qty_above_one_step_is_respected() -> None:
    f = MarketFilters("LOT/USDT", Decimal("0.01"), Decimal("0.01"), Decimal("0.105"), Decimal(0))
    r = preflight("buy", "2", "0.05", f, budget="1")
    assert r.ok and r.bumped and r.amount == Decimal("0.11")  # min_qty ceiled to the grid
    assert not preflight("buy", "2", "0.05", f, budget="0.21").ok
    r = preflight("sell", "2", "0.1", f)
    assert not r.ok and r.reason == "below_min_qty"
    assert can_afford("2", f, "0.22") and not can_afford("2", f, "0.2199")


@pytest.mark.parametrize("f", SEED_MARKETS, ids=lambda f: f.symbol)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_can_afford_matches_the_smallest_valid_buy(f: MarketFilters, data: st.DataObject) -> None:
    price = data.draw(price_strategy(f), label="price")
    budget = data.draw(st.integers(0, 10**7).map(lambda n: Decimal(n).scaleb(-3)))
    p = q_price(price, f.tick_size)
    expected = p > 0 and min_valid_amount(p, f) * frac(p) <= frac(budget)
    assert can_afford(price, f, budget) is expected
    assert preflight("buy", price, 0, f, budget=budget).ok is expected


def test_market_filters_reject_bad_grids() -> None:
    with pytest.raises(ValueError, match="X/Y"):
        MarketFilters("X/Y", Decimal(0), Decimal(1), Decimal(0), Decimal(0))
    with pytest.raises(ValueError, match="X/Y"):
        MarketFilters("X/Y", Decimal(1), Decimal(1), Decimal(-1), Decimal(0))
