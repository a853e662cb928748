"""Every filter of the real Binance markets, at its boundary, in preflight and in the
simulator, and the two agreeing on random orders.

The markets are the 7 spot entries of the shared ccxt fixture, read through the adapter
(``filters_from_ccxt`` of their raw ``info.filters``). Each limit is accepted exactly at
its value and refused one tick / step past it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsmtrader.clock import SimClock
from fsmtrader.errors import InvalidOrder
from fsmtrader.exchange.ccxt_adapter.market_filters import filters_from_ccxt
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.markets import MarketFilters, PercentPrice, Side, preflight

from conftest import shared_file

D = Decimal
RAW: dict[str, Any] = json.loads(shared_file("ccxt_binance_spot_markets.json").read_text())
MARKETS: dict[str, MarketFilters] = {s: filters_from_ccxt(m) for s, m in RAW["markets"].items()}
BTC = MARKETS["BTC/USDT"]
REF = D("50000")  # the average price the percent band is drawn around


def raw_filter(symbol: str, kind: str) -> dict[str, Any]:
    filters: list[dict[str, Any]] = RAW["markets"][symbol]["info"]["filters"]
    return next(f for f in filters if f["filterType"] == kind)


def sim(m: MarketFilters, price: Decimal) -> SimExchange:
    ex = SimExchange({m.symbol: m}, {m.quote: D("1e12"), m.base: D("1e12")}, clock=SimClock(1_000))
    ex.update_market(m.symbol, 1_000, float(price), float(price), float(price), 1.0)
    return ex


def sim_reason(
    ex: SimExchange, m: MarketFilters, side: Side, amount: Decimal, price: Decimal | None
) -> str:
    """ "" when the simulator accepts the order, else its rejection reason."""
    n = ex.counters.created + sum(ex.counters.rejections.values())
    kind = "limit" if price is not None else "market"
    try:
        ex.create_order(m.symbol, side, kind, amount, price, "IOC", f"c{n}")
    except InvalidOrder as e:
        return e.reason
    return ""


def test_the_fixture_filters_are_all_read() -> None:
    for symbol, m in MARKETS.items():
        lot, price_f = raw_filter(symbol, "LOT_SIZE"), raw_filter(symbol, "PRICE_FILTER")
        notional = raw_filter(symbol, "NOTIONAL")
        market_lot = raw_filter(symbol, "MARKET_LOT_SIZE")
        band = raw_filter(symbol, "PERCENT_PRICE_BY_SIDE")
        assert m.max_qty == D(lot["maxQty"]) and m.min_qty == D(lot["minQty"])
        assert (m.min_price, m.max_price) == (D(price_f["minPrice"]), D(price_f["maxPrice"]))
        assert m.max_notional == D(notional["maxNotional"])
        assert notional["applyMinToMarket"] is True and m.market_min_notional is None
        assert notional["applyMaxToMarket"] is False and m.market_max_notional is None
        assert m.market_max_qty == D(market_lot["maxQty"])
        # MARKET_LOT_SIZE says 0 for minQty and stepSize: no extra rule (LOT_SIZE's step).
        assert m.market_min_qty is None and m.market_step_size is None
        assert m.percent_price == PercentPrice(
            D(band["bidMultiplierUp"]),
            D(band["bidMultiplierDown"]),
            D(band["askMultiplierUp"]),
            D(band["askMultiplierDown"]),
            int(band["avgPriceMins"]),
        )


# --------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize("symbol", sorted(MARKETS))
def test_price_limits_at_the_boundary(symbol: str) -> None:
    m = replace(MARKETS[symbol], percent_price=None)  # the price filter alone
    assert m.min_price is not None and m.max_price is not None
    big = m.min_qty * 10**6
    for side in ("buy", "sell"):
        assert preflight(side, m.max_price, m.min_qty, m).ok
        assert preflight(side, m.max_price + m.tick_size, m.min_qty, m).reason == (
            "above_max_price"
        )
        # Every fixture market's minPrice is its tick: one tick below is 0.
        assert m.min_price == m.tick_size
        at_min = preflight(side, m.min_price, big, m)
        assert at_min.reason not in ("below_min_price", "price_below_tick")
        assert preflight(side, m.min_price - m.tick_size, big, m).reason == "price_below_tick"
        raised = replace(m, min_price=m.tick_size * 3)
        assert preflight(side, m.tick_size * 3, big, raised).reason != "below_min_price"
        assert preflight(side, m.tick_size * 2, big, raised).reason == "below_min_price"
    ex = sim(m, m.max_price)
    assert sim_reason(ex, m, "sell", m.min_qty, m.max_price) == ""
    assert sim_reason(ex, m, "sell", m.min_qty, m.max_price + m.tick_size) == "max_price"
    raised = replace(m, min_price=m.tick_size * 3)
    ex = sim(raised, m.tick_size * 3)
    enough = preflight("buy", m.tick_size * 3, m.step_size, raised).amount  # bumped
    assert sim_reason(ex, raised, "buy", enough, m.tick_size * 3) == ""
    assert sim_reason(ex, raised, "buy", enough, m.tick_size * 2) == "min_price"


@pytest.mark.parametrize("symbol", sorted(MARKETS))
def test_max_qty_at_the_boundary(symbol: str) -> None:
    m = replace(MARKETS[symbol], max_notional=None)
    assert m.max_qty is not None
    price = (m.min_price or m.tick_size) * 100  # cheap: max_qty stays under max notional
    for side in ("buy", "sell"):
        at = preflight(side, price, m.max_qty, m)
        assert at.ok and at.amount == m.max_qty and not at.capped
        over = preflight(side, price, m.max_qty + m.step_size, m)
        assert over.ok and over.capped and over.amount == m.max_qty  # capped down
    ex = sim(m, price)
    assert sim_reason(ex, m, "buy", m.max_qty, price) == ""
    assert sim_reason(ex, m, "buy", m.max_qty + m.step_size, price) == "max_qty"


def test_max_notional_at_the_boundary_and_capped() -> None:
    m = replace(BTC, percent_price=None)
    assert m.max_notional == D("9000000")
    price = D("1000000")  # BTC's max price: 9 BTC is exactly the max notional
    at = preflight("buy", price, D("9"), m)
    assert at.ok and not at.capped and at.notional == m.max_notional
    over = preflight("buy", price, D("9.00001"), m)
    assert over.ok and over.capped and over.amount == D("9") and over.reason == ""
    ex = sim(m, price)
    assert sim_reason(ex, m, "buy", D("9"), price) == ""
    assert sim_reason(ex, m, "buy", D("9.00001"), price) == "max_notional"
    # A maximum below the minimum: nothing valid is left, and it says which limit.
    tight = replace(m, max_notional=D("4"))
    assert preflight("buy", price, D("1"), tight).reason == "above_max_notional"
    small = replace(m, max_qty=D("0.00005"))  # 2.5 USDT at 50000: under the 5 minimum
    assert preflight("buy", D("50000"), D("1"), small).reason == "above_max_qty"


def test_min_notional_and_min_qty_at_the_boundary() -> None:
    m = replace(BTC, percent_price=None)
    price = D("50000")
    assert preflight("sell", price, D("0.0001"), m).ok  # 5 USDT: exactly the minimum
    assert preflight("sell", price, D("0.00009"), m).reason == "below_min_notional"
    ex = sim(m, price)
    assert sim_reason(ex, m, "sell", D("0.0001"), price) == ""
    assert sim_reason(ex, m, "sell", D("0.00009"), price) == "min_notional"


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_percent_price_by_side_at_the_boundary(side: Side) -> None:
    m = BTC
    band = raw_filter("BTC/USDT", "PERCENT_PRICE_BY_SIDE")
    prefix = "bid" if side == "buy" else "ask"
    high = REF * D(band[f"{prefix}MultiplierUp"])
    low = REF * D(band[f"{prefix}MultiplierDown"])
    qty = D("0.001")
    assert preflight(side, high, qty, m, ref_price=REF).ok
    assert preflight(side, high + m.tick_size, qty, m, ref_price=REF).reason == "price_out_of_band"
    assert preflight(side, low, qty, m, ref_price=REF).ok
    assert preflight(side, low - m.tick_size, qty, m, ref_price=REF).reason == "price_out_of_band"
    ex = sim(m, REF)
    assert sim_reason(ex, m, side, qty, high) == ""
    assert sim_reason(ex, m, side, qty, high + m.tick_size) == "percent_price"
    assert sim_reason(ex, m, side, qty, low) == ""
    assert sim_reason(ex, m, side, qty, low - m.tick_size) == "percent_price"


def test_percent_price_sides_differ_and_the_single_band_variant() -> None:
    by_side = replace(BTC, percent_price=PercentPrice(D("1.1"), D("0.5"), D("2"), D("0.9")))
    price = D("60000")  # 1.2 x the average: above the buy band, inside the sell band
    assert preflight("buy", price, D("0.001"), by_side, ref_price=REF).reason == "price_out_of_band"
    assert preflight("sell", price, D("0.001"), by_side, ref_price=REF).ok
    ex = sim(by_side, REF)
    assert sim_reason(ex, by_side, "buy", D("0.001"), price) == "percent_price"
    assert sim_reason(ex, by_side, "sell", D("0.001"), price) == ""
    # PERCENT_PRICE (one band for both sides), as Binance writes it in exchangeInfo.
    raw = {**RAW["markets"]["BTC/USDT"]}
    raw["info"] = {
        "filters": [f for f in raw["info"]["filters"] if f["filterType"] != "PERCENT_PRICE_BY_SIDE"]
        + [
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.3000",
                "multiplierDown": "0.7000",
                "avgPriceMins": 5,
            }
        ]
    }
    single = filters_from_ccxt(raw)
    assert single.percent_price == PercentPrice.both_sides(D("1.3"), D("0.7"), 5)
    for side in ("buy", "sell"):
        assert preflight(side, D("65000"), D("0.001"), single, ref_price=REF).ok
        assert (
            preflight(side, D("65000.01"), D("0.001"), single, ref_price=REF).reason
            == "price_out_of_band"
        )
        assert preflight(side, D("35000"), D("0.001"), single, ref_price=REF).ok
        assert (
            preflight(side, D("34999.99"), D("0.001"), single, ref_price=REF).reason
            == "price_out_of_band"
        )
    ex = sim(single, REF)
    assert sim_reason(ex, single, "sell", D("0.001"), D("65000")) == ""
    assert sim_reason(ex, single, "sell", D("0.001"), D("65000.01")) == "percent_price"


def test_market_sell_checked_against_market_lot_size() -> None:
    m = BTC  # MARKET_LOT_SIZE maxQty 128.52621715, LOT_SIZE maxQty 9000
    assert m.market_max_qty == D("128.52621715")
    at = preflight("sell", None, D("128.52621"), m, ref_price=REF)
    assert at.ok and not at.capped and at.amount == D("128.52621")
    over = preflight("sell", None, D("128.52622"), m, ref_price=REF)
    assert over.ok and over.capped and over.amount == D("128.52621")
    limit_sell = preflight("sell", REF, D("128.52622"), m, ref_price=REF)
    assert limit_sell.ok and not limit_sell.capped  # a limit order is LOT_SIZE's only
    ex = sim(m, REF)
    assert sim_reason(ex, m, "sell", D("128.52621"), None) == ""
    assert sim_reason(ex, m, "sell", D("128.52622"), None) == "market_lot_size"
    assert sim_reason(ex, m, "sell", D("128.52622"), REF) == ""
    # MARKET_LOT_SIZE's own step and minimum, when a venue states them.
    stepped = replace(m, market_step_size=D("0.001"), market_min_qty=D("0.01"))
    assert preflight("sell", None, D("0.0105"), stepped, ref_price=REF).amount == D("0.010")
    assert preflight("sell", None, D("0.009"), stepped, ref_price=REF).reason == "below_min_qty"
    ex = sim(stepped, REF)
    assert sim_reason(ex, stepped, "sell", D("0.0105"), None) == "market_lot_size"
    assert sim_reason(ex, stepped, "sell", D("0.009"), None) == "market_lot_size"
    assert sim_reason(ex, stepped, "sell", D("0.01"), None) == ""
    # Notional of a market order at the average price; applyMinToMarket false: none.
    assert preflight("sell", None, D("0.00009"), m, ref_price=REF).reason == "below_min_notional"
    assert sim_reason(sim(m, REF), m, "sell", D("0.00009"), None) == "min_notional"
    free = replace(m, market_min_notional=D(0))
    assert preflight("sell", None, D("0.00009"), free, ref_price=REF).ok
    assert sim_reason(sim(free, REF), free, "sell", D("0.00009"), None) == ""
    with pytest.raises(ValueError, match="ref_price"):
        preflight("sell", None, D("1"), m)


# --------------------------------------------------------------------------- agreement


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    symbol=st.sampled_from(sorted(MARKETS)),
    side=st.sampled_from(["buy", "sell"]),
    market=st.booleans(),
    ref_share=st.sampled_from([D("0.25"), D("0.05"), D("0.0005"), D("0.000001")]),
    price_factor=st.decimals(min_value=D("0.1"), max_value=D("6"), places=3),
    near=st.sampled_from(["min_qty", "min_notional", "max_qty", "market_max_qty", "max_notional"]),
    amount_factor=st.decimals(min_value=D("0.5"), max_value=D("1.5"), places=4),
)
def test_preflight_ok_iff_the_simulator_accepts(
    symbol: str,
    side: Side,
    market: bool,
    ref_share: Decimal,
    price_factor: Decimal,
    near: str,
    amount_factor: Decimal,
) -> None:
    """For on-grid orders on the real markets, drawn around each limit (price: a share
    of the max price times a factor; amount: near one of the quantity or notional
    limits): preflight passes an order unchanged exactly when the simulator accepts it;
    and what preflight makes of any order (capped, bumped), the simulator accepts."""
    m = MARKETS[symbol]
    if market:
        side = "sell"
    assert m.max_price is not None and m.max_qty is not None and m.max_notional is not None
    ref = max((m.max_price * ref_share).quantize(m.tick_size), m.tick_size)
    ex = sim(m, ref)
    mid = ex._books.quote(symbol).mid  # the simulator's average price
    price = None if market else max((ref * price_factor).quantize(m.tick_size), m.tick_size)
    at = mid if price is None else price
    scale = {
        "min_qty": m.min_qty,
        "min_notional": m.min_notional / at,
        "max_qty": m.max_qty,
        "market_max_qty": m.market_max_qty or m.max_qty,
        "max_notional": m.max_notional / at,
    }[near]
    amount = (scale * amount_factor // m.step_size) * m.step_size
    if amount <= 0:
        amount = m.step_size
    pf = preflight(side, price, amount, m, ref_price=mid)
    unchanged = pf.ok and pf.amount == amount and not (pf.capped or pf.bumped)
    reason = sim_reason(ex, m, side, amount, price)
    assert unchanged == (reason == ""), (pf, reason)
    if pf.ok:
        assert sim_reason(ex, m, side, pf.amount, price) == "", pf
