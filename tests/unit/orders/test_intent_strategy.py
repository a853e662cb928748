"""Order intents (deterministic ids) and the strategy's signal and exit math."""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmtrader.orders.intent import (
    CLIENT_ID_PREFIX,
    DEFAULT_CLIENT_ID_LEN,
    Intent,
    client_order_id,
    make_decision_id,
    make_intent_id,
)
from fsmtrader.strategy import DropSignal, ExitRule, check_exit, open_exit, peek_exit

MIN = 60_000
# Binance's newClientOrderId pattern (MEXC allows a subset of it, up to 32 characters)
BINANCE_COID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


def make_intent(**overrides: object) -> Intent:
    kwargs: dict[str, object] = {
        "decision_id": make_decision_id("BTC/USDT", 1_767_225_600_000, "entry"),
        "symbol": "BTC/USDT",
        "side": "buy",
        "amount": Decimal("0.00024"),
        "limit_price": Decimal("43000.12"),
        "ref_price": Decimal("43000.5"),
        "max_slippage_bps": Decimal("20"),
        "time_in_force": "IOC",
        "leg": 0,
        "created_ms": 1_767_225_600_123,
        "reason": "drop 3%",
        "budget": Decimal("25"),
    }
    kwargs.update(overrides)
    return Intent.create(**kwargs)  # type: ignore[arg-type]


# --- ids ----------------------------------------------------------------------------------


def test_decision_id_is_readable_and_deterministic() -> None:
    d = make_decision_id("BTC/USDT", 1_767_225_600_000, "entry")
    assert d == make_decision_id("BTC/USDT", 1_767_225_600_000, "entry")
    assert "/" not in d and "BTCUSDT" in d and "1767225600000" in d and "entry" in d
    assert d != make_decision_id("BTC/USDT", 1_767_225_660_000, "entry")
    assert d != make_decision_id("ETH/USDT", 1_767_225_600_000, "entry")
    assert d != make_decision_id("BTC/USDT", 1_767_225_600_000, "exit")


def test_intent_id_is_deterministic_per_decision_side_and_leg() -> None:
    a = make_intent_id("BTCUSDT-1-entry", "buy", 0)
    assert a == make_intent_id("BTCUSDT-1-entry", "buy", 0)
    others = {
        make_intent_id("BTCUSDT-1-entry", "buy", 1),
        make_intent_id("BTCUSDT-1-entry", "sell", 0),
        make_intent_id("BTCUSDT-2-entry", "buy", 0),
    }
    assert a not in others and len(others) == 3
    assert re.fullmatch(r"[0-9a-f]+", a)
    assert make_intent(leg=3).intent_id == make_intent(leg=3).intent_id
    assert make_intent(leg=3).intent_id != make_intent(leg=4).intent_id


def test_client_order_id_shape() -> None:
    iid = make_intent_id("BTCUSDT-1-entry", "buy", 0)
    coid = client_order_id(iid)
    assert coid.startswith("fsm") and CLIENT_ID_PREFIX == "fsm"
    assert len(coid) <= 32 == DEFAULT_CLIENT_ID_LEN
    assert BINANCE_COID.match(coid)
    assert iid[:8] in coid  # derived from the intent id, so it can be looked up again
    assert coid == client_order_id(iid)  # stable
    short = client_order_id(iid, max_len=16)
    assert len(short) <= 16 and short.startswith("fsm")
    assert client_order_id("x" * 100).startswith("fsm") and len(client_order_id("x" * 100)) <= 32


@settings(max_examples=200, deadline=None)
@given(
    decision=st.text(min_size=1, max_size=80),
    side=st.sampled_from(["buy", "sell"]),
    leg=st.integers(0, 10_000),
    max_len=st.integers(8, 36),
)
def test_client_order_id_properties(decision: str, side: str, leg: int, max_len: int) -> None:
    iid = make_intent_id(decision, side, leg)  # type: ignore[arg-type]
    assert iid == make_intent_id(decision, side, leg)  # type: ignore[arg-type]
    for coid in (client_order_id(iid), client_order_id(iid, max_len=max_len)):
        assert coid.startswith("fsm")
        assert BINANCE_COID.match(coid)
    assert len(client_order_id(iid)) <= 32
    assert len(client_order_id(iid, max_len=max_len)) <= max_len
    assert client_order_id(iid, max_len=max_len) == client_order_id(iid, max_len=max_len)


def test_client_order_ids_do_not_collide_across_legs() -> None:
    ids = {client_order_id(make_intent_id("ZBTUSDT-9-exit", "sell", leg)) for leg in range(2_000)}
    assert len(ids) == 2_000


def test_intent_is_frozen_and_serialisable() -> None:
    intent = make_intent()
    with pytest.raises(dataclasses.FrozenInstanceError):
        intent.amount = Decimal(1)  # type: ignore[misc]
    assert intent.intent_id == make_intent_id(intent.decision_id, "buy", 0)
    assert intent.order_type == "limit"
    rec = intent.to_record()
    back = json.loads(json.dumps(rec))
    assert back == rec
    assert Decimal(back["amount"]) == intent.amount
    assert Decimal(back["limit_price"]) == intent.limit_price
    assert Decimal(back["budget"]) == intent.budget
    assert back["intent_id"] == intent.intent_id and back["leg"] == 0

    market = make_intent(side="sell", limit_price=None, budget=None, leg=2)
    assert market.order_type == "market"
    rec = json.loads(json.dumps(market.to_record()))
    assert rec["limit_price"] is None and rec["budget"] is None and rec["side"] == "sell"
    assert market.intent_id != intent.intent_id


# --- DropSignal ---------------------------------------------------------------------------


def test_rolling_max_forgets_bars_older_than_the_window() -> None:
    s = DropSignal(window_min=5, drop_pct=3.0)
    s.update(0, 100.0, 1.0)
    s.update(2 * MIN, 98.0, 1.0)
    assert s.anchor == 100.0
    s.update(5 * MIN - 1, 97.0, 1.0)
    assert s.anchor == 100.0  # still inside (now - 5 min, now]
    s.update(5 * MIN, 96.0, 1.0)
    assert s.anchor == 98.0  # the 100 at t=0 is exactly one window old: gone
    assert not s.triggered(96.0)  # 96 is only ~2% below the new anchor
    assert s.last_close == 96.0


@settings(max_examples=200, deadline=None)
@given(
    window_min=st.integers(1, 10),
    bars=st.lists(
        st.tuples(st.integers(0, 15 * MIN), st.integers(1, 50).map(float)),
        min_size=1,
        max_size=80,
    ),
)
def test_rolling_max_equals_brute_force(window_min: int, bars: list[tuple[int, float]]) -> None:
    s = DropSignal(window_min=window_min, drop_pct=5.0)
    window = window_min * MIN
    seen: list[tuple[int, float]] = []
    ts = 1_000_000
    for gap, close in bars:
        ts += gap
        s.update(ts, close, 1.0)
        seen.append((ts, close))
        expected = max(c for t, c in seen if t > ts - window)
        assert s.anchor == expected
        assert s.triggered(expected * 0.9)  # 10% below the brute-force anchor
        assert not s.triggered(expected * 0.99)  # 1% below: less than the 5% trigger


def test_prime_equals_updates() -> None:
    bars = [(i * MIN, 100.0 + (i % 7) - (i % 3), 10.0 + i) for i in range(200)]
    a, b = DropSignal(30, 2.0, sma_window=20), DropSignal(30, 2.0, sma_window=20)
    a.prime(bars)
    for bar in bars:
        b.update(*bar)
    assert (a.anchor, a.sma(), a.last_close, a.last_volume) == (
        b.anchor,
        b.sma(),
        b.last_close,
        b.last_volume,
    )
    assert a.warm(bars[-1][0]) and b.warm(bars[-1][0])


@pytest.mark.parametrize(
    ("anchor", "drop_pct", "at", "above"),
    [
        (200.0, 25.0, 150.0, 150.01),
        (100.0, 3.0, 97.0, 97.001),
        (100.0, 5.0, 95.0, 95.001),
        (64.0, 12.5, 56.0, 56.0001),
    ],
)
def test_triggered_at_exactly_drop_pct(
    anchor: float, drop_pct: float, at: float, above: float
) -> None:
    s = DropSignal(window_min=60, drop_pct=drop_pct)
    s.update(0, anchor, 1.0)
    s.update(MIN, above, 1.0)
    assert s.anchor == anchor
    assert not s.triggered(above)
    s.update(2 * MIN, at, 1.0)
    assert s.triggered(at)
    assert s.triggered(at - 0.01)


def test_nothing_triggers_before_any_bar() -> None:
    s = DropSignal(window_min=60, drop_pct=3.0)
    assert not s.triggered(0.0)
    assert s.anchor == 0.0 and s.sma() is None and not s.warm(10**12)


def test_triggered_at_exactly_default_drop_from_60() -> None:
    s = DropSignal(window_min=60, drop_pct=3.0)  # 3.0 is the shipped default
    s.update(0, 60.0, 1.0)
    s.update(MIN, 58.2, 1.0)  # exactly 3% below 60
    assert s.triggered(58.2)


PCTS = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0]


@settings(max_examples=300, deadline=None)
@given(cents=st.integers(100, 10_000_000), pct=st.sampled_from(PCTS))
def test_exact_drop_triggers_for_any_anchor(cents: int, pct: float) -> None:
    anchor = Decimal(cents) / 100
    exact = anchor * (100 - Decimal(str(pct))) / 100  # the decimal price pct below anchor
    s = DropSignal(window_min=60, drop_pct=pct)
    s.update(0, float(anchor), 1.0)
    assert s.triggered(float(exact))
    assert not s.triggered(float(exact + anchor * Decimal("1e-6")))  # a hair short of pct


@settings(max_examples=300, deadline=None)
@given(cents=st.integers(100, 10_000_000), pct=st.sampled_from(PCTS))
def test_exact_take_profit_and_stop_loss_fire_for_any_entry(cents: int, pct: float) -> None:
    entry = Decimal(cents) / 100
    p = Decimal(str(pct))
    rule = ExitRule(pct, pct, 0.0, 0.5)
    tp, sl = entry * (100 + p) / 100, entry * (100 - p) / 100
    hair = entry * Decimal("1e-6")
    assert check_exit(open_exit(float(entry), rule), float(tp)) == "take_profit"
    assert check_exit(open_exit(float(entry), rule), float(tp - hair)) == ""
    assert check_exit(open_exit(float(entry), rule), float(sl)) == "stop_loss"
    assert check_exit(open_exit(float(entry), rule), float(sl + hair)) == ""


def test_warm_after_one_window() -> None:
    s = DropSignal(window_min=60, drop_pct=3.0)
    t0 = 1_767_225_600_000
    assert not s.warm(t0)
    s.update(t0, 100.0, 1.0)
    assert not s.warm(t0)
    assert not s.warm(t0 + 60 * MIN - 1)
    assert s.warm(t0 + 60 * MIN)
    s.update(t0 + MIN, 100.0, 1.0)  # later bars do not move the warm-up point
    assert not s.warm(t0 + 60 * MIN - 1) and s.warm(t0 + 61 * MIN)


def test_sma_filter() -> None:
    s = DropSignal(window_min=1, drop_pct=3.0, sma_window=3)  # anchor = last close only
    s.update(0, 12.0, 1.0)
    s.update(MIN, 11.0, 1.0)
    assert s.sma() is None and s.sma_ok()  # not enough bars: the filter does not block
    s.update(2 * MIN, 10.0, 1.0)
    assert s.sma() == pytest.approx(11.0)
    assert not s.sma_ok()  # anchor 10 below the SMA: a downtrend
    s.update(3 * MIN, 14.0, 1.0)
    assert s.sma() == pytest.approx((11.0 + 10.0 + 14.0) / 3)
    assert s.sma_ok()
    flat = DropSignal(window_min=1, drop_pct=3.0, sma_window=4)
    for i in range(6):
        flat.update(i * MIN, 10.0, 1.0)
    assert flat.sma() == 10.0 == flat.anchor and flat.sma_ok()  # flat market: allowed
    off = DropSignal(window_min=1, drop_pct=3.0)
    for i in range(10):
        off.update(i * MIN, 100.0 - i, 1.0)
    assert off.sma() is None and off.sma_ok()


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(2, 20),
    closes=st.lists(
        st.floats(0.001, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=100
    ),
)
def test_sma_is_mean_of_last_n(n: int, closes: list[float]) -> None:
    s = DropSignal(window_min=60, drop_pct=3.0, sma_window=n)
    for i, c in enumerate(closes):
        s.update(i * MIN, c, 1.0)
        tail = closes[max(0, i + 1 - n) : i + 1]
        if len(tail) < n:
            assert s.sma() is None
        else:
            assert s.sma() == pytest.approx(sum(tail) / n, rel=1e-9, abs=1e-6)


# --- exit tracking -----------------------------------------------------------------------

# Binary-exact numbers: 128 * 1.25 = 160, 128 * 0.875 = 112, 128 * 1.125 = 144.
RULE = ExitRule(
    take_profit_pct=25.0,
    stop_loss_pct=12.5,
    trailing_activation_pct=12.5,
    trailing_distance_pct=6.25,
)


def test_take_profit_and_stop_loss() -> None:
    t = open_exit(128.0, ExitRule(25.0, 12.5, 0.0, 1.0))
    assert check_exit(t, 159.99) == ""
    assert check_exit(t, 160.0) == "take_profit"
    assert check_exit(t, 200.0) == "take_profit"
    t = open_exit(128.0, ExitRule(25.0, 12.5, 0.0, 1.0))
    assert check_exit(t, 112.01) == ""
    assert check_exit(t, 112.0) == "stop_loss"
    assert check_exit(t, 1.0) == "stop_loss"
    assert check_exit(t, 128.0) == ""


def test_trailing_off_never_fires() -> None:
    t = open_exit(128.0, ExitRule(25.0, 12.5, 0.0, 1.0))
    for price in (150.0, 159.0, 140.0, 113.0):
        assert check_exit(t, price) == ""
    assert not t.trail_active


def test_trailing_activates_only_after_activation_pct() -> None:
    t = open_exit(128.0, RULE)
    assert check_exit(t, 143.99) == ""  # 12.49% up: not yet active
    assert not t.trail_active
    assert check_exit(t, 120.0) == ""  # a 16.7% fall from the peak, but trailing is off
    assert check_exit(t, 144.0) == ""  # reaches +12.5%: trailing is armed
    assert t.trail_active and t.peak == 144.0
    assert check_exit(t, 135.01) == ""  # 144 * 0.9375 = 135
    assert check_exit(t, 135.0) == "trailing_stop"


def test_trailing_follows_the_peak() -> None:
    t = open_exit(128.0, RULE)
    for price in (130.0, 144.0, 150.0, 148.0, 141.0):
        assert check_exit(t, price) == ""
    assert t.peak == 150.0
    assert check_exit(t, 140.625) == "trailing_stop"  # 150 * (1 - 6.25%)
    t2 = open_exit(128.0, RULE)
    for price in (144.0, 152.0, 156.0):
        assert check_exit(t2, price) == ""
    assert check_exit(t2, 146.25) == "trailing_stop"  # 156 * 0.9375
    # the stop loss still wins far below
    assert check_exit(open_exit(128.0, RULE), 112.0) == "stop_loss"


def test_peek_does_not_move_the_peak() -> None:
    t = open_exit(128.0, RULE)
    assert peek_exit(t, 150.0) == ""
    assert t.peak == 128.0 and not t.trail_active  # peek neither raised nor armed
    assert peek_exit(t, 160.0) == "take_profit" and t.peak == 128.0
    assert peek_exit(t, 112.0) == "stop_loss"
    assert check_exit(t, 150.0) == "" and t.peak == 150.0 and t.trail_active
    assert peek_exit(t, 155.0) == "" and t.peak == 150.0
    assert peek_exit(t, 140.625) == "trailing_stop"
    assert peek_exit(t, 140.63) == ""
    assert t.peak == 150.0


@settings(max_examples=200, deadline=None)
@given(prices=st.lists(st.floats(50.0, 250.0), max_size=40), probe=st.floats(50.0, 250.0))
def test_peek_agrees_with_check_without_side_effects(prices: list[float], probe: float) -> None:
    t = open_exit(128.0, RULE)
    for p in prices:
        check_exit(t, p)
    state = (t.peak, t.trail_active)
    answer = peek_exit(t, probe)
    assert (t.peak, t.trail_active) == state
    if probe <= t.peak:  # no new high: check would give the same answer
        assert check_exit(t, probe) == answer


def test_exit_fires_at_exact_take_profit_and_stop_loss() -> None:
    rule = ExitRule(
        take_profit_pct=3.0,
        stop_loss_pct=3.0,
        trailing_activation_pct=0.0,
        trailing_distance_pct=0.5,
    )
    assert check_exit(open_exit(60.0, rule), 61.8) == "take_profit"
    assert check_exit(open_exit(60.0, rule), 58.2) == "stop_loss"


@settings(max_examples=300, deadline=None)
@given(
    entry=st.floats(0.001, 1e6),
    tp=st.floats(0.1, 50),
    sl=st.floats(0.1, 50),
    act=st.floats(0.0, 20),
    dist=st.floats(0.1, 20),
    moves=st.lists(st.floats(0.5, 1.5), min_size=1, max_size=30),
)
def test_check_exit_and_peek_exit_agree_once_the_peak_has_moved(
    entry: float, tp: float, sl: float, act: float, dist: float, moves: list[float]
) -> None:
    """check_exit repeats peek_exit's level checks (the hot path saves a call): after
    check_exit has moved the peak, peek_exit on the same state gives the same answer."""
    ex = open_exit(entry, ExitRule(tp, sl, act, dist))
    for m in moves:
        price = entry * m
        assert check_exit(ex, price) == peek_exit(ex, price)
