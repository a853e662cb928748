"""SimExchange behaves like a real spot exchange: filters, locks, depth, fees, races."""

from __future__ import annotations

from dataclasses import fields, replace
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsmtrader.clock import SimClock
from fsmtrader.config import load_settings
from fsmtrader.errors import (
    DuplicateOrder,
    ExchangeError,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    OrderNotFound,
)
from fsmtrader.exchange.simulated import MAX_CLIENT_ID_LEN, FaultInjector, SimExchange, SimParams
from fsmtrader.exchange.simulated.orders import SimOrder
from fsmtrader.exchange.simulated.rows import OrderRow
from fsmtrader.exchange.simulated.venue import BINANCE, MEXC, SimVenue
from fsmtrader.exchange.types import Exchange, OrderInfo, TradeInfo
from fsmtrader.feeds import synthetic_market
from fsmtrader.markets import MarketFilters
from fsmtrader.runner import Backtest, filters_for
from fsmtrader.session import open_sim_exchange, session_filters
from fsmtrader_testing.harness import mf

D = Decimal
BTC = "BTC/USDT"
XRP = "XRP/USDT"

BTC_M = mf(BTC, "0.01", "0.00001", "0.00001", "5")
XRP_M = mf(XRP, "0.0001", "0.01", "0.01", "1")
START = {"USDT": D("1000000"), "BTC": D("1"), "XRP": D("10000")}


def make(
    seed: int = 0, balances: dict[str, Decimal] | None = None, **kw: Any
) -> tuple[SimExchange, SimClock]:
    clock = SimClock(1_000)
    ex = SimExchange(
        {BTC: BTC_M, XRP: XRP_M},
        dict(START if balances is None else balances),
        clock=clock,
        params=SimParams(seed=seed, **kw),
    )
    ex.update_market(BTC, 1_000, 50_000.0, 50_100.0, 49_900.0, 12.5)
    ex.update_market(XRP, 1_000, 0.5, 0.51, 0.49, 100_000.0)
    return ex, clock


def bar(ex: SimExchange, clock: SimClock, symbol: str, price: float, hi: float, lo: float) -> None:
    clock.advance(60_000)
    ex.update_market(symbol, clock.now_ms(), price, hi, lo, 1.0)


def totals(ex: SimExchange) -> dict[str, Decimal]:
    return {a: b.total for a, b in ex.fetch_balance().items()}


def assert_non_negative(ex: SimExchange) -> None:
    for asset, b in ex.fetch_balance().items():
        assert b.free >= 0, asset
        assert b.used >= 0, asset


def test_satisfies_protocol() -> None:
    ex, _ = make()
    proto: Exchange = ex
    assert proto.name == "sim"
    assert ex.load_markets() == {BTC: BTC_M, XRP: XRP_M}


# ---------------------------------------------------------------- prices and depth


def test_ticker_bid_ask_on_tick_and_ordered() -> None:
    ex, _ = make()
    t = ex.fetch_ticker(BTC)
    assert t.last == D("50000.0")
    assert t.bid == D("49987.5")  # 50000 * (1 - 0.00025), floored to 0.01
    assert t.ask == D("50012.5")  # rounded up
    assert t.volume == D("12.5")
    assert t.timestamp == 1_000
    bid, bid_qty, ask, ask_qty = ex.order_book_top(BTC)
    assert (bid, ask) == (t.bid, t.ask)
    assert bid_qty > 0 and ask_qty > 0


def test_zero_spread_still_keeps_one_tick_between_bid_and_ask() -> None:
    ex, _ = make(spread_bps=D("0"))
    t = ex.fetch_ticker(XRP)
    assert t.ask - t.bid == XRP_M.tick_size


def test_ticker_ask_rounds_up_on_a_coarse_tick() -> None:
    ex, _ = make()
    ex.update_market(XRP, 2_000, 0.12345, 0.13, 0.12, 1.0)
    t = ex.fetch_ticker(XRP)
    # mid*(1-0.00025)=0.123419..., floored; mid*(1+0.00025)=0.123480..., ceiled.
    assert (t.bid, t.ask) == (D("0.1234"), D("0.1235"))


def test_no_price_yet_and_unknown_symbol() -> None:
    ex = SimExchange({BTC: BTC_M}, {"USDT": D("100")}, clock=SimClock())
    with pytest.raises(ExchangeUnavailable):
        ex.fetch_ticker(BTC)
    with pytest.raises(ExchangeUnavailable) as info:
        ex.create_order(BTC, "buy", "limit", D("0.001"), D("100"), "IOC", "x")
    assert info.value.maybe_sent is False
    assert ex.counters.rejections == {"no_price": 1}
    with pytest.raises(InvalidOrder):
        ex.fetch_ticker("ETH/USDT")
    with pytest.raises(InvalidOrder):
        ex.update_market("ETH/USDT", 0, 1.0, 1.0, 1.0, 1.0)


def test_depth_levels_step_away_and_scale_with_quote() -> None:
    ex, _ = make(depth_levels=3, level_step_bps=D("10"))
    order = ex.create_order(BTC, "buy", "limit", D("5"), D("60000.00"), "IOC", "big")
    prices = [t.price for t in order.trades]
    assert len(prices) == 3
    assert prices == sorted(prices) and len(set(prices)) == 3
    assert prices[1] == D("50062.52")  # 50012.5 * 1.001 rounded up to the tick
    for t in order.trades:  # 2000 quote * factor in [0.5, 1.5] per level
        assert D("1000") * D("0.99") <= t.cost <= D("3000")


# ---------------------------------------------------------------- determinism


def script(ex: SimExchange, clock: SimClock) -> None:
    ex.create_order(BTC, "buy", "limit", D("0.5"), D("50100.00"), "IOC", "a")
    ex.create_order(BTC, "buy", "limit", D("0.3"), D("49950.00"), "GTC", "b")
    ex.create_order(XRP, "sell", "market", D("9000"), None, "IOC", "c")
    bar(ex, clock, BTC, 49_900.0, 50_000.0, 49_800.0)
    bar(ex, clock, BTC, 49_800.0, 49_900.0, 49_700.0)
    ex.create_order(XRP, "buy", "limit", D("100"), D("0.5100"), "GTC", "d")


def snapshot(ex: SimExchange) -> tuple[object, ...]:
    return (
        ex.orders_by_client_id(),
        ex.fetch_my_trades(BTC),
        ex.fetch_my_trades(XRP),
        ex.fetch_balance(),
        ex.counters.as_dict(),
    )


def test_same_seed_same_ids_fills_and_balances() -> None:
    runs = []
    for _ in range(2):
        ex, clock = make(seed=7)
        script(ex, clock)
        runs.append(snapshot(ex))
    assert runs[0] == runs[1]
    orders = runs[0][0]
    assert isinstance(orders, dict)
    assert [o.id for o in orders.values()] == ["1", "2", "3", "4"]
    trades = ex.fetch_my_trades(BTC) + ex.fetch_my_trades(XRP)
    assert sorted(int(t.id[1:]) for t in trades) == list(range(1, len(trades) + 1))


def test_different_seed_different_depth() -> None:
    a, ca = make(seed=1)
    b, cb = make(seed=2)
    script(a, ca)
    script(b, cb)
    assert snapshot(a)[3] != snapshot(b)[3]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((("ETH/USDT", "buy", "limit", D("1"), D("1"), "IOC", "x")), "symbol"),
        (((BTC, "buy", "limit", D("0.001"), D("50000"), "IOC", "")), "client_order_id"),
        (((BTC, "buy", "limit", D("0.001"), D("50000"), "IOC", "x" * 37)), "client_order_id"),
        (((BTC, "buy", "limit", D("0.001"), D("50000.001"), "IOC", "x")), "tick"),
        (((BTC, "buy", "limit", D("0.001"), D("0"), "IOC", "x")), "tick"),
        (((BTC, "buy", "limit", D("0.001"), D("-1"), "IOC", "x")), "tick"),
        (((BTC, "buy", "limit", D("0.000015"), D("50000"), "IOC", "x")), "step"),
        (((BTC, "buy", "limit", D("0.00009"), D("50000"), "IOC", "x")), "min_notional"),
        (((XRP, "buy", "limit", D("2.005"), D("0.5"), "IOC", "x")), "step"),
        (((XRP, "sell", "market", D("1.99"), None, "IOC", "x")), "min_notional"),
        (((BTC, "buy", "limit", D("0.001"), None, "IOC", "x")), "price"),
        (((BTC, "sell", "market", D("0.001"), D("50000"), "IOC", "x")), "price"),
        (((BTC, "buy", "market", D("0.001"), None, "IOC", "x")), "market_buy"),
        (((BTC, "buy", "limit", D("0"), D("50000"), "IOC", "x")), "amount"),
        (((BTC, "hold", "limit", D("0.001"), D("50000"), "IOC", "x")), "side"),
        (((BTC, "buy", "limit", D("0.001"), D("50000"), "FOK", "x")), "time_in_force"),
        # Earlier checks win: bad tick and bad step -> tick; bad symbol and bad id -> symbol.
        (((BTC, "buy", "limit", D("0.000015"), D("50000.001"), "IOC", "x")), "tick"),
        ((("ETH/USDT", "buy", "limit", D("1"), D("1"), "IOC", "")), "symbol"),
    ],
)
def test_each_rejection_reason(args: tuple[object, ...], reason: str) -> None:
    ex, _ = make()
    before = ex.fetch_balance()
    with pytest.raises(InvalidOrder) as info:
        ex.create_order(*args)  # type: ignore[arg-type]
    assert info.value.reason == reason
    assert ex.fetch_balance() == before
    assert ex.orders_by_client_id() == {}
    assert ex.counters.rejections == {reason: 1}
    assert ex.counters.created == 0


def test_min_qty_reason() -> None:
    m = MarketFilters(
        symbol="ETH/USDT",
        tick_size=D("0.01"),
        step_size=D("0.001"),
        min_qty=D("0.01"),
        min_notional=D("0"),
        base="ETH",
        quote="USDT",
    )
    ex = SimExchange({"ETH/USDT": m}, {"USDT": D("1000")}, clock=SimClock())
    ex.update_market("ETH/USDT", 0, 3000.0, 3000.0, 3000.0, 1.0)
    with pytest.raises(InvalidOrder) as info:
        ex.create_order("ETH/USDT", "buy", "limit", D("0.009"), D("3000"), "IOC", "x")
    assert info.value.reason == "min_qty"


def test_insufficient_funds_for_buy_and_sell() -> None:
    ex, _ = make(balances={"USDT": D("100"), "BTC": D("0.001")})
    # 0.002 * 50000 * 1.001 = 100.1 > 100 free
    with pytest.raises(InsufficientFunds):
        ex.create_order(BTC, "buy", "limit", D("0.002"), D("50000"), "GTC", "b")
    with pytest.raises(InsufficientFunds):
        ex.create_order(BTC, "sell", "limit", D("0.00101"), D("60000"), "GTC", "s")
    assert ex.counters.rejections == {"insufficient_funds": 2}
    # A rejected order's client id is free for reuse, as on Binance.
    order = ex.create_order(BTC, "sell", "limit", D("0.001"), D("60000"), "GTC", "s")
    assert order.status == "open"


def test_locked_balance_is_not_free_for_the_next_order() -> None:
    ex, _ = make(balances={"USDT": D("150")})
    ex.create_order(BTC, "buy", "limit", D("0.002"), D("40000"), "GTC", "a")  # locks 80.08
    assert ex.fetch_balance()["USDT"].used == D("80.08")
    with pytest.raises(InsufficientFunds):
        ex.create_order(BTC, "buy", "limit", D("0.002"), D("40000"), "GTC", "b")


def test_client_id_is_refused_while_its_order_is_open_and_reused_once_it_is_over() -> None:
    """Binance: newClientOrderId is "a unique id among open orders". It used to be
    refused in any state here; issue 8 made the simulator accept it again once the earlier
    order is filled or canceled, which is how a re-send after a false "not found"
    doubles an order."""
    ex, _ = make()
    ex.create_order(BTC, "buy", "limit", D("0.001"), D("40000"), "GTC", "open1")
    closed = ex.create_order(BTC, "buy", "limit", D("0.001"), D("50100"), "IOC", "closed1")
    o = ex.create_order(BTC, "buy", "limit", D("0.001"), D("40000"), "GTC", "cxl1")
    ex.cancel_order(o.id, BTC)
    with pytest.raises(DuplicateOrder):
        # Duplicate is checked before filters: even an invalid resend is a duplicate.
        ex.create_order(BTC, "buy", "limit", D("0.000015"), D("1.001"), "IOC", "open1")
    with pytest.raises(DuplicateOrder):  # and across symbols
        ex.create_order(XRP, "buy", "limit", D("10"), D("0.5"), "IOC", "open1")
    assert ex.counters.rejections == {"duplicate": 2}
    again = ex.create_order(BTC, "buy", "limit", D("0.001"), D("50100"), "IOC", "closed1")
    assert closed.status == "closed" and again.status == "closed" and again.id != closed.id
    assert ex.fetch_order_by_client_id("closed1", BTC).id == again.id  # the most recent
    assert ex.fetch_order(closed.id, BTC).client_order_id == "closed1"  # both exist
    assert ex.create_order(BTC, "buy", "limit", D("0.001"), D("40000"), "GTC", "cxl1").id != o.id
    assert ex.counters.created == 5
    assert [x.client_order_id for x in ex.all_orders()] == [
        "open1",
        "closed1",
        "cxl1",
        "closed1",
        "cxl1",
    ]


def test_a_stricter_unique_forever_profile_refuses_every_reuse() -> None:
    """Kept for tests whose subject is not the reuse rule (they say why they need it)."""
    ex, _ = make(venue=BINANCE.unique_forever())
    ex.create_order(BTC, "buy", "limit", D("0.001"), D("50100"), "IOC", "closed1")
    with pytest.raises(DuplicateOrder):
        ex.create_order(BTC, "buy", "limit", D("0.001"), D("50100"), "IOC", "closed1")
    assert ex.counters.rejections == {"duplicate": 1}


# ---------------------------------------------------------------- taker fills


def test_ioc_larger_than_depth_fills_partially_and_cancels_remainder() -> None:
    ex, _ = make()
    before = ex.fetch_balance()
    order = ex.create_order(BTC, "buy", "limit", D("2"), D("51000.00"), "IOC", "big")
    assert order.status == "canceled"
    assert 0 < order.filled < order.amount
    assert len(order.trades) == 5  # one trade per level consumed
    assert all(not t.maker for t in order.trades)
    assert order.filled == sum(t.amount for t in order.trades)
    assert order.cost == sum(t.cost for t in order.trades)
    assert order.fee == sum(t.fee for t in order.trades)
    after = ex.fetch_balance()
    assert after["USDT"].used == 0
    assert after["USDT"].free == before["USDT"].free - order.cost - order.fee
    assert after["BTC"].free == before["BTC"].free + order.filled


def test_ioc_within_depth_closes() -> None:
    ex, _ = make()
    order = ex.create_order(BTC, "buy", "limit", D("0.01"), D("50012.50"), "IOC", "small")
    assert order.status == "closed"
    assert order.filled == D("0.01")
    assert order.average == D("50012.5")


def test_limit_takes_only_levels_within_its_price() -> None:
    ex, _ = make()
    order = ex.create_order(BTC, "buy", "limit", D("2"), D("50040.00"), "IOC", "x")
    # Levels: 50012.5, 50037.51, 50062.52... -> only the first two are within 50040.
    assert [t.price for t in order.trades] == [D("50012.5"), D("50037.51")]
    none = ex.create_order(BTC, "sell", "limit", D("0.01"), D("50000.00"), "IOC", "y")
    assert none.status == "canceled" and none.filled == 0 and none.trades == []


def test_liquidity_consumed_in_a_bar_stays_consumed_until_next_bar() -> None:
    ex, clock = make()
    first = ex.create_order(BTC, "buy", "limit", D("5"), D("50012.50"), "IOC", "a")
    second = ex.create_order(BTC, "buy", "limit", D("5"), D("50012.50"), "IOC", "b")
    assert first.filled > 0 and second.filled == 0
    _, _, ask, ask_qty = ex.order_book_top(BTC)
    assert ask > D("50012.5") and ask_qty > 0
    bar(ex, clock, BTC, 50_000.0, 50_001.0, 49_999.0)
    third = ex.create_order(BTC, "buy", "limit", D("5"), D("50012.50"), "IOC", "c")
    assert third.filled > 0


def test_market_sell_walks_the_bids() -> None:
    ex, _ = make()
    order = ex.create_order(XRP, "sell", "market", D("10000"), None, "IOC", "m")
    assert order.order_type == "market"
    assert order.status in ("closed", "canceled")
    prices = [t.price for t in order.trades]
    assert prices == sorted(prices, reverse=True)
    assert order.price == order.average
    assert ex.fetch_order(order.id, XRP) == order
    bal = ex.fetch_balance()
    assert bal["XRP"].used == 0
    assert bal["XRP"].free == D("10000") - order.filled
    assert bal["USDT"].free == START["USDT"] + order.cost - order.fee


def test_taker_fee_rounds_down_to_1e_8() -> None:
    ex, _ = make(taker_fee_bps=D("7.5"))
    order = ex.create_order(XRP, "buy", "limit", D("3.33"), D("0.5002"), "IOC", "f")
    t = order.trades[0]
    exact = t.cost * D("7.5") / D("10000")
    assert t.fee == exact.quantize(D("1e-8"), rounding=ROUND_DOWN)
    assert t.fee < exact
    assert t.fee_currency == "USDT"


# ---------------------------------------------------------------- resting orders


def test_gtc_rests_then_fills_as_maker_when_a_bar_crosses() -> None:
    ex, clock = make(maker_fee_bps=D("2"), taker_fee_bps=D("10"))
    order = ex.create_order(BTC, "buy", "limit", D("0.01"), D("49500.00"), "GTC", "g")
    assert order.status == "open" and order.filled == 0
    locked = D("49500") * D("0.01") * D("1.001")
    assert ex.fetch_balance()["USDT"].used == locked
    assert [o.id for o in ex.fetch_open_orders(BTC)] == [order.id]

    bar(ex, clock, BTC, 49_700.0, 49_800.0, 49_500.01)  # low stays above the limit
    assert ex.fetch_order(order.id, BTC).status == "open"

    bar(ex, clock, BTC, 49_600.0, 49_700.0, 49_500.0)  # touches it
    done = ex.fetch_order(order.id, BTC)
    assert done.status == "closed" and done.filled == D("0.01")
    (trade,) = done.trades
    assert trade.maker and trade.price == D("49500.00")
    assert trade.fee == D("0.099")  # 495 * 2 bps: maker, not taker
    assert trade.timestamp == clock.now_ms()
    bal = ex.fetch_balance()
    assert bal["USDT"].used == 0
    assert bal["USDT"].free == START["USDT"] - D("495") - D("0.099")
    assert ex.fetch_open_orders() == []


def test_gtc_sell_fills_when_high_reaches_it() -> None:
    ex, clock = make()
    order = ex.create_order(BTC, "sell", "limit", D("0.1"), D("50500.00"), "GTC", "s")
    assert ex.fetch_balance()["BTC"].used == D("0.1")
    bar(ex, clock, BTC, 50_400.0, 50_499.99, 50_300.0)
    assert ex.fetch_order(order.id, BTC).status == "open"
    bar(ex, clock, BTC, 50_400.0, 50_600.0, 50_300.0)
    done = ex.fetch_order(order.id, BTC)
    assert done.status == "closed"
    assert all(t.maker and t.price == D("50500") for t in done.trades)
    bal = ex.fetch_balance()
    assert bal["BTC"].used == 0 and bal["BTC"].free == D("0.9")
    assert bal["USDT"].free == START["USDT"] + D("5050") - done.fee


def test_big_gtc_fills_over_several_bars() -> None:
    ex, clock = make()
    order = ex.create_order(BTC, "buy", "limit", D("1"), D("49000.00"), "GTC", "big")
    seen = []
    for _ in range(20):
        bar(ex, clock, BTC, 49_000.0, 49_100.0, 48_900.0)
        seen.append(ex.fetch_order(order.id, BTC).filled)
        if seen[-1] == order.amount:
            break
    assert len(seen) > 2, "one bar's depth (< 0.3 BTC) cannot fill 1 BTC"
    assert seen == sorted(seen)
    done = ex.fetch_order(order.id, BTC)
    assert done.status == "closed"
    assert len(done.trades) == len(seen)  # one maker trade per bar
    assert ex.fetch_balance()["USDT"].used == 0


def test_gtc_crossing_on_entry_takes_then_rests() -> None:
    ex, clock = make()
    order = ex.create_order(BTC, "buy", "limit", D("1"), D("50050.00"), "GTC", "x")
    assert order.status == "open"
    assert order.filled > 0 and all(not t.maker for t in order.trades)
    bar(ex, clock, BTC, 50_000.0, 50_100.0, 49_900.0)
    later = ex.fetch_order(order.id, BTC)
    assert later.filled > order.filled
    assert later.trades[-1].maker and later.trades[-1].price == D("50050")


def test_maker_fee_above_taker_never_overdraws_the_lock() -> None:
    ex, clock = make(balances={"USDT": D("1000")}, maker_fee_bps=D("50"), taker_fee_bps=D("0"))
    order = ex.create_order(BTC, "buy", "limit", D("0.0199"), D("50000.00"), "GTC", "x")
    bar(ex, clock, BTC, 49_000.0, 49_500.0, 48_000.0)
    done = ex.fetch_order(order.id, BTC)
    assert done.status == "closed"
    assert done.fee == D("4.975")
    assert_non_negative(ex)
    assert ex.fetch_balance()["USDT"].total == D("1000") - D("995") - D("4.975")


def test_update_market_without_resting_orders_draws_nothing() -> None:
    a, ca = make(seed=3)
    b, cb = make(seed=3)
    for i in range(50):
        bar(a, ca, BTC, 50_000.0 + i, 50_100.0, 49_000.0)
    bar(b, cb, BTC, 50_049.0, 50_100.0, 49_000.0)
    oa = a.create_order(BTC, "buy", "limit", D("1"), D("51000.00"), "IOC", "x")
    ob = b.create_order(BTC, "buy", "limit", D("1"), D("51000.00"), "IOC", "x")
    assert [t.amount for t in oa.trades] == [t.amount for t in ob.trades]


# ---------------------------------------------------------------- cancel


def test_cancel_releases_lock_and_is_idempotent() -> None:
    ex, _ = make()
    order = ex.create_order(BTC, "buy", "limit", D("0.01"), D("40000.00"), "GTC", "c")
    canceled = ex.cancel_order(order.id, BTC)
    assert canceled.status == "canceled"
    assert ex.fetch_balance()["USDT"].used == 0
    assert ex.fetch_balance()["USDT"].free == START["USDT"]
    assert ex.cancel_order(order.id, BTC) == canceled
    assert ex.counters.canceled == 1

    closed = ex.create_order(BTC, "buy", "limit", D("0.001"), D("50100.00"), "IOC", "f")
    assert closed.status == "closed"
    assert ex.cancel_order(closed.id, BTC) == closed

    with pytest.raises(OrderNotFound):
        ex.cancel_order("999", BTC)
    with pytest.raises(OrderNotFound):
        ex.cancel_order(order.id, XRP)


def test_cancel_race_returns_the_order_filled() -> None:
    ex, _ = make(maker_fee_bps=D("1"))
    order = ex.create_order(BTC, "sell", "limit", D("0.2"), D("51000.00"), "GTC", "r")
    ex.race_fill_on_cancel(order.id)
    result = ex.cancel_order(order.id, BTC)
    assert result.status == "closed"
    assert result.filled == D("0.2")
    (trade,) = result.trades
    assert trade.maker and trade.price == D("51000") and trade.fee == D("1.02")
    bal = ex.fetch_balance()
    assert bal["BTC"].used == 0 and bal["BTC"].free == D("0.8")
    assert bal["USDT"].free == START["USDT"] + D("10200") - D("1.02")
    assert ex.counters.canceled == 0
    with pytest.raises(OrderNotFound):
        ex.race_fill_on_cancel("42")


# ---------------------------------------------------------------- queries


def test_fetch_by_id_and_client_id_return_copies() -> None:
    ex, _ = make()
    order = ex.create_order(BTC, "buy", "limit", D("0.5"), D("50100.00"), "GTC", "q")
    assert ex.fetch_order(order.id, BTC) == order
    assert ex.fetch_order_by_client_id("q", BTC) == order
    with pytest.raises(OrderNotFound):
        ex.fetch_order_by_client_id("q", XRP)
    with pytest.raises(OrderNotFound):
        ex.fetch_order_by_client_id("nope", BTC)
    with pytest.raises(OrderNotFound):
        ex.fetch_order("77", BTC)
    # Mutating what we got back changes nothing inside the exchange.
    order.status = "closed"
    order.trades.clear()
    ex.orders_by_client_id()["q"].trades.clear()
    fresh = ex.fetch_order(order.id, BTC)
    assert fresh.status == "open" and fresh.trades


def test_open_orders_filter_by_symbol() -> None:
    ex, _ = make()
    a = ex.create_order(BTC, "buy", "limit", D("0.001"), D("40000.00"), "GTC", "a")
    b = ex.create_order(XRP, "buy", "limit", D("10"), D("0.4000"), "GTC", "b")
    ex.create_order(XRP, "buy", "limit", D("10"), D("0.4000"), "IOC", "c")
    assert [o.id for o in ex.fetch_open_orders()] == [a.id, b.id]
    assert [o.id for o in ex.fetch_open_orders(XRP)] == [b.id]
    ex.cancel_order(a.id, BTC)
    assert [o.id for o in ex.fetch_open_orders()] == [b.id]


def test_my_trades_since() -> None:
    ex, clock = make()
    ex.create_order(BTC, "buy", "limit", D("0.001"), D("50100.00"), "IOC", "a")
    clock.advance(5_000)
    cut = clock.now_ms()
    ex.create_order(BTC, "sell", "limit", D("0.001"), D("49000.00"), "IOC", "b")
    ex.create_order(XRP, "sell", "limit", D("10"), D("0.4000"), "IOC", "c")
    all_btc = ex.fetch_my_trades(BTC)
    assert [t.client_order_id for t in all_btc] == ["a", "b"]
    recent = ex.fetch_my_trades(BTC, since=cut)
    assert [t.client_order_id for t in recent] == ["b"]
    assert recent[0].timestamp == cut
    assert ex.fetch_my_trades(BTC, since=cut + 1) == []


# ---------------------------------------------------------------- balances


def test_balance_conservation_over_a_session() -> None:
    ex, clock = make(maker_fee_bps=D("2"), taker_fee_bps=D("10"))
    ex.create_order(BTC, "buy", "limit", D("0.5"), D("50100.00"), "IOC", "1")
    ex.create_order(BTC, "buy", "limit", D("0.3"), D("49800.00"), "GTC", "2")
    ex.create_order(BTC, "sell", "limit", D("0.2"), D("50300.00"), "GTC", "3")
    ex.create_order(BTC, "sell", "market", D("0.1"), None, "IOC", "4")
    bar(ex, clock, BTC, 49_900.0, 50_400.0, 49_700.0)
    ex.create_order(BTC, "sell", "limit", D("0.05"), D("49000.00"), "IOC", "5")
    bar(ex, clock, BTC, 49_800.0, 49_900.0, 49_500.0)
    for o in ex.fetch_open_orders():
        ex.cancel_order(o.id, o.symbol)

    trades = ex.fetch_my_trades(BTC)
    bought = sum((t.cost for t in trades if t.side == "buy"), D(0))
    sold = sum((t.cost for t in trades if t.side == "sell"), D(0))
    fees = sum((t.fee for t in trades), D(0))
    base_in = sum((t.amount for t in trades if t.side == "buy"), D(0))
    base_out = sum((t.amount for t in trades if t.side == "sell"), D(0))
    bal = ex.fetch_balance()
    assert bal["USDT"].used == 0 and bal["BTC"].used == 0
    assert bal["USDT"].total + fees == START["USDT"] - bought + sold
    assert bal["BTC"].total == START["BTC"] + base_in - base_out
    assert any(t.maker for t in trades) and any(not t.maker for t in trades)


# ---------------------------------------------------------------- fault injection


def test_fault_before_means_nothing_happened() -> None:
    ex, _ = make()
    fx = FaultInjector(ex)
    fx.inject_fault("create_order", NetworkError("timeout", maybe_sent=False), times=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            fx.create_order(BTC, "buy", "limit", D("0.001"), D("40000.00"), "GTC", "x")
    assert ex.orders_by_client_id() == {}
    assert ex.fetch_balance()["USDT"].used == 0
    order = fx.create_order(BTC, "buy", "limit", D("0.001"), D("40000.00"), "GTC", "x")
    assert order.status == "open"


def test_fault_after_is_a_lost_response() -> None:
    ex, _ = make()
    fx = FaultInjector(ex)
    fx.inject_fault("create_order", NetworkError("read timeout"), after=True)
    with pytest.raises(NetworkError):
        fx.create_order(BTC, "buy", "limit", D("0.001"), D("40000.00"), "GTC", "lost")
    found = fx.fetch_order_by_client_id("lost", BTC)
    assert found.status == "open"
    with pytest.raises(DuplicateOrder):
        fx.create_order(BTC, "buy", "limit", D("0.001"), D("40000.00"), "GTC", "lost")

    fx.inject_fault("cancel_order", NetworkError("reset"), after=True)
    with pytest.raises(NetworkError):
        fx.cancel_order(found.id, BTC)
    assert fx.fetch_order(found.id, BTC).status == "canceled"


def test_fault_on_queries_and_bad_method() -> None:
    ex, _ = make()
    fx = FaultInjector(ex)
    fx.inject_fault("fetch_order_by_client_id", OrderNotFound("not yet"))
    fx.inject_fault("fetch_balance", ExchangeUnavailable("maintenance"))
    with pytest.raises(OrderNotFound):
        fx.fetch_order_by_client_id("whatever", BTC)
    with pytest.raises(ExchangeUnavailable):
        fx.fetch_balance()
    assert fx.fetch_balance()["USDT"].free == START["USDT"]
    with pytest.raises(ValueError):
        fx.inject_fault("update_market", NetworkError("x"))


# ---------------------------------------------------------------- property test

SYMBOLS = {BTC: (50_000.0, BTC_M), XRP: (0.5, XRP_M)}

update_op = st.tuples(
    st.just("update"),
    st.sampled_from([BTC, XRP]),
    st.floats(min_value=0.9, max_value=1.1),
    st.floats(min_value=0.0, max_value=0.03),
)
create_op = st.tuples(
    st.just("create"),
    st.sampled_from([BTC, XRP]),
    st.sampled_from(["buy", "sell"]),
    st.sampled_from(["limit", "limit", "market"]),
    st.sampled_from(["IOC", "GTC"]),
    st.integers(min_value=-5, max_value=200_000),  # amount in steps
    st.integers(min_value=-300, max_value=300),  # price offset from last, in 0.1%
    st.sampled_from([f"c{i}" for i in range(12)]),
)
cancel_op = st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=30), st.booleans())


@pytest.mark.parametrize(
    "venue",
    [BINANCE, BINANCE.with_fee_asset("received"), BINANCE.with_fee_asset("bnb", D("612.5"))],
    ids=["quote-fees", "received-fees", "bnb-fees"],
)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(update_op, create_op, cancel_op), min_size=1, max_size=40))
def test_random_sessions_keep_balances_and_client_ids_sound(
    venue: SimVenue, ops: list[tuple[object, ...]]
) -> None:
    """Binance's rule: a client id is refused exactly while an order with it is open
    (it used to be refused forever; issue 8 made the simulator reuse it like Binance).
    Every fee asset leaves every balance exactly start +- fills - fees."""
    start = {"USDT": D("20000"), "BTC": D("0.2"), "XRP": D("5000"), "BNB": D("0.05")}
    ex, clock = make(balances=start, venue=venue)
    last = {s: p for s, (p, _) in SYMBOLS.items()}
    created: list[OrderInfo] = []
    for op in ops:
        kind = op[0]
        if kind == "update":
            _, sym, move, wick = op
            assert isinstance(sym, str) and isinstance(move, float) and isinstance(wick, float)
            last[sym] *= move
            bar(ex, clock, sym, last[sym], last[sym] * (1 + wick), last[sym] * (1 - wick))
        elif kind == "create":
            _, sym, side, otype, tif, steps, offset, cid = op
            assert isinstance(sym, str) and isinstance(steps, int) and isinstance(offset, int)
            m = SYMBOLS[sym][1]
            amount = m.step_size * steps
            price = None
            if otype == "limit":
                raw = D(repr(last[sym])) * (1 + D(offset) / 1000)
                price = (raw / m.tick_size).to_integral_value() * m.tick_size
            in_use = any(o.client_order_id == cid and o.status == "open" for o in ex.all_orders())
            try:
                order = ex.create_order(sym, side, otype, amount, price, tif, cid)  # type: ignore[arg-type]
            except DuplicateOrder:
                assert in_use
            except (InvalidOrder, InsufficientFunds):
                pass
            else:
                assert not in_use, "a client id of an open order was accepted again"
                created.append(order)
                assert ex.fetch_order_by_client_id(cid, sym).id == order.id  # the latest
        else:
            _, idx, race = op
            assert isinstance(idx, int)
            if created:
                target = created[idx % len(created)]
                if race and target.order_type == "limit":
                    ex.race_fill_on_cancel(target.id)
                ex.cancel_order(target.id, target.symbol)
        assert_non_negative(ex)

    assert len(ex.orders_by_client_id()) == len({o.client_order_id for o in created})
    assert [o.id for o in ex.all_orders()] == [o.id for o in created]
    assert [o.id for o in created] == [str(i) for i in range(1, len(created) + 1)]
    # Every unit of every asset is accounted for by the trades.
    trades: list[TradeInfo] = ex.fetch_my_trades(BTC) + ex.fetch_my_trades(XRP)
    expect = dict(start)
    for t in trades:
        base = t.symbol.split("/")[0]
        sign = 1 if t.side == "buy" else -1
        expect[base] += sign * t.amount
        expect["USDT"] -= sign * t.cost
        expect[t.fee_currency] -= t.fee
        assert t.fee_currency in ({"USDT"} if venue.fee_asset == "quote" else {"USDT", base, "BNB"})
    assert totals(ex) == expect
    for o in ex.fetch_open_orders():
        ex.cancel_order(o.id, o.symbol)
    assert all(b.used == 0 for b in ex.fetch_balance().values())


def test_error_classes_are_exchange_errors() -> None:
    for cls in (InvalidOrder, InsufficientFunds, DuplicateOrder, OrderNotFound):
        assert issubclass(cls, ExchangeError)


# ---------------------------------------------------------------- parameters and fees


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"depth_levels": 0}, "depth_levels"),
        ({"maker_fee_bps": D("-1")}, "maker_fee_bps"),
        ({"taker_fee_bps": D("-0.1")}, "taker_fee_bps"),
        ({"spread_bps": D("-5")}, "spread_bps"),
        ({"depth_quote": D("-1")}, "depth_quote"),
        ({"level_step_bps": D("-1")}, "level_step_bps"),
    ],
)
def test_params_refuse_negative_or_empty_settings(bad: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimParams(**bad)


def test_markets_and_balances_are_checked() -> None:
    with pytest.raises(ValueError, match="base and quote"):
        SimExchange(
            {BTC: MarketFilters(BTC, D("0.01"), D("1"), D("1"), D("5"))}, {}, clock=SimClock()
        )
    with pytest.raises(ValueError, match="balance of USDT"):
        SimExchange({BTC: BTC_M}, {"USDT": D("-1")}, clock=SimClock())


def test_filters_carry_the_fees_the_simulator_charges() -> None:
    params = SimParams(maker_fee_bps=D("2"), taker_fee_bps=D("7.5"))
    traded = params.with_fees({BTC: BTC_M, XRP: XRP_M})
    assert traded[BTC].maker_fee == D("0.0002") and traded[BTC].taker_fee == D("0.00075")
    assert replace(traded[XRP], maker_fee=None, taker_fee=None) == XRP_M  # nothing else moves
    clock = SimClock(1_000)
    ex = SimExchange(traded, dict(START), clock=clock, params=params)
    assert ex.load_markets() == traded
    ex.update_market(BTC, 1_000, 50_000.0, 50_100.0, 49_900.0, 12.5)
    order = ex.create_order(BTC, "buy", "limit", D("0.01"), D("50100.00"), "IOC", "fee")
    (trade,) = order.trades
    rate = traded[BTC].taker_fee
    assert rate is not None
    want = (trade.price * trade.amount * rate).quantize(D("1e-8"), ROUND_DOWN)
    assert not trade.maker and trade.fee == want


def test_simulated_sessions_trade_under_the_simulators_fees(tmp_path: Path) -> None:
    s = load_settings(
        None,
        env={},
        overrides={
            "market": {"symbols": [BTC]},
            "sim": {"maker_fee_bps": "3", "taker_fee_bps": "8"},
        },
    )
    want = (D("0.0003"), D("0.0008"))
    (paper,) = session_filters(s).values()
    assert (paper.maker_fee, paper.taker_fee) == want
    series = synthetic_market(s.market.symbols, minutes=120, seed=s.seed)
    result = Backtest(s, series, filters_for(series), tmp_path / "run").run()
    (backtest,) = result.engine.filters.values()
    assert (backtest.maker_fee, backtest.taker_fee) == want
    # an exchange file reopens under the same fee-carrying filters
    sim = SimClock(0)
    with open_sim_exchange(s, tmp_path, session_filters(s), sim) as ex:
        ex.update_market(BTC, 0, 50_000.0, 50_000.0, 50_000.0, 1.0)
    with open_sim_exchange(s, tmp_path, session_filters(s), sim) as ex:
        assert ex.fetch_ticker(BTC).last == D("50000.0")


def test_client_order_id_length_limit_is_the_declared_one() -> None:
    ex, _ = make()
    longest = "x" * MAX_CLIENT_ID_LEN
    assert ex.create_order(BTC, "buy", "limit", D("0.001"), D("40000.00"), "GTC", longest)
    with pytest.raises(InvalidOrder, match=f"1..{MAX_CLIENT_ID_LEN} chars") as info:
        ex.create_order(BTC, "buy", "limit", D("0.001"), D("40000.00"), "GTC", longest + "y")
    assert info.value.reason == "client_order_id"


def test_the_file_keeps_every_field_of_an_order() -> None:
    """The orders table's columns are the order record's fields, trades aside (those are
    rows of their own): a field added to SimOrder and not to OrderRow would come back
    from a reopened file at its default, silently."""
    record = [f.name for f in fields(SimOrder) if f.name != "trades"]
    assert list(OrderRow._fields) == record


# ---------------------------------------------------------------- venue profiles


def test_a_young_order_is_not_found_inside_the_visibility_lag_and_found_after() -> None:
    ex, clock = make(venue=BINANCE.with_lag(2000))
    t0 = clock.now_ms()
    ioc = ex.create_order(BTC, "buy", "limit", D("0.001"), D("50100"), "IOC", "young-ioc")
    gtc = ex.create_order(BTC, "buy", "limit", D("0.001"), D("40000"), "GTC", "young-gtc")
    assert ioc.status == "closed" and ioc.trades  # the create answer itself knows it
    clock.set(t0 + 1999)  # one ms inside the lag: every look-up says "not found"
    for order in (ioc, gtc):
        with pytest.raises(OrderNotFound):
            ex.fetch_order(order.id, BTC)
        with pytest.raises(OrderNotFound):
            ex.fetch_order_by_client_id(order.client_order_id, BTC)
        with pytest.raises(OrderNotFound):
            ex.fetch_order_trades(order.id, BTC)
    assert ex.fetch_open_orders() == [] and ex.fetch_open_orders(BTC) == []
    assert ex.fetch_orders(BTC, 0) == [] and ex.fetch_my_trades(BTC) == []
    assert [o.id for o in ex.all_orders()] == [ioc.id, gtc.id]  # the engine has them
    clock.set(t0 + 2000)  # the lag has passed
    assert ex.fetch_order(ioc.id, BTC) == ioc
    assert ex.fetch_order_by_client_id("young-gtc", BTC).id == gtc.id
    assert [o.id for o in ex.fetch_open_orders(BTC)] == [gtc.id]
    assert [o.id for o in ex.fetch_orders(BTC, t0)] == [ioc.id, gtc.id]
    assert ex.fetch_order_trades(ioc.id, BTC) == ioc.trades == ex.fetch_my_trades(BTC)


def test_binance_cancels_a_young_order_mexc_does_not_see_it() -> None:
    for venue, cancels in ((BINANCE.with_lag(1000), True), (MEXC, False)):
        ex, clock = make(venue=venue)
        gtc = ex.create_order(BTC, "buy", "limit", D("0.001"), D("40000"), "GTC", "c1")
        if cancels:
            assert ex.cancel_order(gtc.id, BTC).status == "canceled"
        else:
            with pytest.raises(OrderNotFound):
                ex.cancel_order(gtc.id, BTC)
            clock.advance(venue.visibility_lag_ms)
            assert ex.cancel_order(gtc.id, BTC).status == "canceled"


def test_inside_the_lag_a_reused_client_id_still_answers_the_earlier_order() -> None:
    """The re-send after a false "not found" is a second order; the venue shows the
    first one until the second becomes visible."""
    ex, clock = make(venue=BINANCE.with_lag(500))
    first = ex.create_order(BTC, "buy", "limit", D("0.001"), D("50100"), "IOC", "again")
    clock.advance(500)
    second = ex.create_order(BTC, "buy", "limit", D("0.001"), D("50100"), "IOC", "again")
    assert second.id != first.id and second.status == "closed"
    assert ex.fetch_order_by_client_id("again", BTC).id == first.id
    clock.advance(500)
    assert ex.fetch_order_by_client_id("again", BTC).id == second.id
    assert totals(ex)["BTC"] == START["BTC"] + D("0.002")  # two orders filled


def test_mexc_ioc_comes_back_open_and_rests() -> None:
    ex, clock = make(venue=MEXC.with_lag(0))
    ioc = ex.create_order(BTC, "buy", "limit", D("0.001"), D("40000"), "IOC", "ioc-open")
    assert ioc.status == "open" and ioc.time_in_force == "IOC"
    assert [o.id for o in ex.fetch_open_orders(BTC)] == [ioc.id]
    bar(ex, clock, BTC, 39_950.0, 40_050.0, 39_900.0)  # fills as a resting order would
    assert ex.fetch_order(ioc.id, BTC).status == "closed"
    ex2, _ = make()  # Binance: the same IOC expires at once
    assert ex2.create_order(BTC, "buy", "limit", D("0.001"), D("40000"), "IOC", "x").status == (
        "canceled"
    )


def _fill_both_ways(
    venue: SimVenue, balances: dict[str, Decimal]
) -> tuple[SimExchange, list[TradeInfo]]:
    ex, _ = make(balances=balances, venue=venue)
    buy = ex.create_order(BTC, "buy", "limit", D("0.01"), D("50100"), "IOC", "fee-buy")
    sell = ex.create_order(BTC, "sell", "limit", D("0.004"), D("49900"), "IOC", "fee-sell")
    return ex, buy.trades + sell.trades


def _expected(start: dict[str, Decimal], trades: list[TradeInfo]) -> dict[str, Decimal]:
    expect = dict(start)
    for t in trades:
        sign = 1 if t.side == "buy" else -1
        expect["BTC"] += sign * t.amount
        expect["USDT"] -= sign * t.cost
        expect[t.fee_currency] = expect.get(t.fee_currency, D(0)) - t.fee
    return expect


def test_fees_in_the_received_asset_keep_balances_exact() -> None:
    start = {"USDT": D("1000"), "BTC": D("0.01")}
    ex, trades = _fill_both_ways(BINANCE.with_fee_asset("received"), start)
    buys = [t for t in trades if t.side == "buy"]
    sells = [t for t in trades if t.side == "sell"]
    assert buys and sells
    assert all(
        t.fee_currency == "BTC" and t.fee == (t.amount * D("0.001")).quantize(D("1e-8"), ROUND_DOWN)
        for t in buys
    )
    assert all(t.fee_currency == "USDT" and t.fee > 0 for t in sells)
    assert totals(ex) == _expected(start, trades)
    assert ex.fetch_order_by_client_id("fee-buy", BTC).fee_currency == "BTC"


def test_fees_in_bnb_come_from_the_bnb_balance_at_its_price_and_fall_back_when_short() -> None:
    start = {"USDT": D("1000"), "BTC": D("0.01"), "BNB": D("0.001")}
    venue = BINANCE.with_fee_asset("bnb", D("500"))
    ex, trades = _fill_both_ways(venue, start)
    in_bnb = [t for t in trades if t.fee_currency == "BNB"]
    assert in_bnb, "the first fills are paid in BNB"
    for t in in_bnb:
        assert t.fee == (t.cost * D("0.001") / D("500")).quantize(D("1e-8"), ROUND_DOWN)
    # 0.001 BNB pays for about 500 USDT of volume; the rest fell back to the received asset.
    rest = [t for t in trades if t.fee_currency != "BNB"]
    assert rest and all(t.fee_currency == ("BTC" if t.side == "buy" else "USDT") for t in rest)
    assert totals(ex) == _expected(start, trades)
    assert ex.fetch_balance()["BNB"].free == start["BNB"] - sum(t.fee for t in in_bnb)


def test_venue_profiles_refuse_impossible_rules() -> None:
    with pytest.raises(ValueError, match="visibility_lag_ms"):
        BINANCE.with_lag(-1)
    with pytest.raises(ValueError, match="fee_asset"):
        BINANCE.with_fee_asset("eth")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bnb_price"):
        BINANCE.with_fee_asset("bnb", D("0"))
    assert BINANCE.identity() != BINANCE.with_lag(1).identity()
    assert MEXC.client_id_max_len == 32 and BINANCE.client_id_max_len == MAX_CLIENT_ID_LEN
