"""The adapter's history calls against the local server, more rows than one page.

Real ccxt, real HTTP, the real server of each flavour; the page limits are made small
through the venue profile (``CcxtOptions.profile``) so a handful of orders spans several
pages. The server's own record (``/__sim/state``) is the oracle for which orders exist.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest

from fsmtrader.errors import ExchangeError
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.exchange.ccxt_adapter.venues import VENUES
from fsmtrader.exchange.types import OrderInfo

from simserver_support import KEY, SECRET, Sim, running_server

BTC = "BTC/USDT"
D = Decimal
DAY_MS = 86_400_000

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["binance", "mexc"])
def sim(request: pytest.FixtureRequest) -> Iterator[Sim]:
    with running_server(request.param) as s:
        yield s


def small_pages(sim: Sim, orders: int = 3, trades: int = 2) -> CcxtExchange:
    profile = replace(
        VENUES[sim.flavour],
        history_page_limit=orders,
        trades_page_limit=trades,
        not_found_grace_ms=3000,
    )
    options = CcxtOptions(
        sim.flavour,  # type: ignore[arg-type]
        api_key=KEY,
        api_secret=SECRET,
        base_url=sim.base_url,
        timeout_ms=3000,
        retry_base_s=0.01,
        rate_limit=False,  # ccxt's client-side throttle would only slow the test down
        profile=profile,
    )
    ex = CcxtExchange(options)
    ex.load_markets()
    return ex


def test_every_order_and_trade_over_many_pages(sim: Sim) -> None:
    ex = small_pages(sim)
    try:
        since = int(time.time() * 1000) - 1
        ask = ex.fetch_ticker(BTC).ask
        filled = [
            ex.create_order(BTC, "buy", "limit", D("0.001"), ask, "IOC", f"fsmhist{i}")
            for i in range(7)
        ]
        below = (ex.fetch_ticker(BTC).bid * D("0.9")).quantize(D("0.01"))
        resting = [
            ex.create_order(BTC, "buy", "limit", D("0.001"), below, "GTC", f"fsmrest{i}")
            for i in range(2)
        ]
        created = filled + resting
        assert len(sim.state()["orders"]) == 9  # the venue's word: nine orders

        orders = ex.fetch_orders(BTC, since)
        assert [o.id for o in orders] == [o.id for o in created]  # each once, oldest first
        assert [o.client_order_id for o in orders] == [o.client_order_id for o in created]
        assert [o.status for o in orders] == ["closed"] * 7 + ["open"] * 2
        # A walk from three days back crosses several windows (24 h on Binance) first.
        assert [o.id for o in ex.fetch_orders(BTC, since - 3 * DAY_MS)] == [o.id for o in created]
        assert ex.fetch_orders(BTC, int(time.time() * 1000) + 1) == []

        trades = ex.fetch_my_trades(BTC, since)
        by_order = [t for o in filled for t in ex.fetch_order_trades(o.id, BTC)]
        assert len(trades) >= 7 and len({t.id for t in trades}) == len(trades)
        assert {t.id for t in trades} == {t.id for t in by_order}
        assert {t.order_id for t in trades} == {o.id for o in filled}
        assert sum(t.amount for t in trades) == D("0.007")
        assert [t.id for t in ex.fetch_my_trades(BTC)] == [t.id for t in trades]
        for o in filled:
            mine = ex.fetch_order_trades(o.id, BTC)
            assert sum(t.amount for t in mine) == o.filled == D("0.001")
        assert ex.fetch_order_trades(resting[0].id, BTC) == []
    finally:
        ex.close()


def big_ioc(ex: CcxtExchange) -> OrderInfo:
    """An IOC buy several book levels deep: one fill per level, all in the same ms."""
    _, _, ask, ask_qty = ex.fetch_order_book_top(BTC)
    price = (ask * D("1.01")).quantize(D("0.01"))
    free = ex.fetch_balance()["USDT"].free
    amount = (free * D("0.8") / price).quantize(D("0.00001"))
    big = ex.create_order(BTC, "buy", "limit", amount, price, "IOC", "fsmbig1")
    assert big.filled > ask_qty
    return big


def test_binance_pages_one_orders_fills_by_trade_id() -> None:
    with running_server("binance", balances={"USDT": "100000", "BTC": "1"}) as sim:
        ex = small_pages(sim, trades=2)
        try:
            big = big_ioc(ex)
            fills = ex.fetch_order_trades(big.id, BTC)
            assert len(fills) >= 3, "the test needs more fills than one page"
            assert len({t.id for t in fills}) == len(fills)
            assert sum(t.amount for t in fills) == big.filled
            assert {t.order_id for t in fills} == {big.id}
            # All in one ms: only the fromId cursor continues past a full page.
            assert ex.fetch_my_trades(BTC, since=big.timestamp - 1) == fills
        finally:
            ex.close()


def test_mexc_time_cursor_that_cannot_advance_stops_with_an_error() -> None:
    """MEXC has no trade-id cursor: a full page whose rows all share one ms cannot be
    continued by time. The walk says so instead of asking for the same page forever;
    with MEXC's real page size (100) the same order reads whole."""
    with running_server("mexc", balances={"USDT": "100000", "BTC": "1"}) as sim:
        ex = small_pages(sim, trades=2)
        try:
            big = big_ioc(ex)
            with pytest.raises(ExchangeError, match="time cursor cannot advance"):
                ex.fetch_order_trades(big.id, BTC)
            with pytest.raises(ExchangeError, match="time cursor cannot advance"):
                ex.fetch_my_trades(BTC, since=big.timestamp - 1)
        finally:
            ex.close()
        ex = small_pages(sim, trades=100)
        try:
            fills = ex.fetch_order_trades(big.id, BTC)
            assert len(fills) >= 3 and sum(t.amount for t in fills) == big.filled
            assert ex.fetch_my_trades(BTC, since=big.timestamp - 1) == fills
        finally:
            ex.close()
