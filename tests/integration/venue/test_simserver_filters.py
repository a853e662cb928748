"""The local server's matching engine enforces every filter its exchangeInfo states, so
what the real ccxt client reads is exactly what the server refuses (Binance's real BTC/USDT
entry: LOT_SIZE maxQty 9000, MARKET_LOT_SIZE maxQty 128.52621715, PERCENT_PRICE_BY_SIDE
0.2..5 around the average price)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal

import pytest

from fsmtrader.errors import InvalidOrder
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.markets import preflight

from conftest import shared_file
from simserver_support import KEY, SECRET, Sim, running_server

D = Decimal
BTC = "BTC/USDT"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["binance", "mexc"])
def venue(request: pytest.FixtureRequest) -> Iterator[tuple[Sim, CcxtExchange]]:
    with _venue(request.param) as pair:
        yield pair


@contextmanager
def _venue(flavour: str) -> Iterator[tuple[Sim, CcxtExchange]]:
    with running_server(
        flavour,
        symbols=[BTC],
        markets_file=shared_file("ccxt_binance_spot_markets.json"),
        balances={"USDT": "100000", "BTC": "20000"},
    ) as sim:
        sim.price(BTC, D("90000"), hold=True)
        options = CcxtOptions(flavour, api_key=KEY, api_secret=SECRET, base_url=sim.base_url)  # type: ignore[arg-type]
        ex = CcxtExchange(options)
        try:
            yield sim, ex
        finally:
            ex.close()


def test_what_the_client_reads_is_what_the_server_enforces(
    venue: tuple[Sim, CcxtExchange],
) -> None:
    sim, ex = venue
    read = ex.load_markets()[BTC]
    if sim.flavour == "binance":
        assert read.max_qty == D("9000") and read.market_max_qty == D("128.52621715")
        assert read.percent_price is not None
    tick, step, px = read.tick_size, read.step_size, D("90000")
    max_qty = read.max_qty or D("9000")
    at_max_notional = (read.max_notional or D("1000000")) / px // step * step
    # Every order preflight passes, the server takes; every one it refuses, so does the
    # server — checked on both sides of each limit the client read.
    cases = [
        ("sell", px, max_qty),
        ("sell", px, max_qty + step),
        ("sell", px, at_max_notional),
        ("sell", px, at_max_notional + step),
        ("buy", D("90000") * 5 - tick, D("0.0001")),
        ("buy", D("90000") * 5 + tick * 100, D("0.0001")),
        ("sell", D("90000") * D("0.2") + tick * 100, D("0.001")),
        ("sell", D("90000") * D("0.2") - tick * 100, D("0.001")),
    ]
    for n, (side, price, amount) in enumerate(cases):
        ok = preflight(side, price, amount, read, ref_price=D("90000"))
        accepted = ok.ok and ok.amount == amount and ok.price == price
        try:
            placed = ex.create_order(BTC, side, "limit", amount, price, "GTC", f"fsmflt{n}")  # type: ignore[arg-type]
        except InvalidOrder as exc:
            assert not accepted, (side, price, amount, exc.reason)
            continue
        assert accepted, (side, price, amount, ok.reason)
        ex.cancel_order(placed.id, BTC)


def test_binance_server_refuses_each_filter_with_its_reason() -> None:
    with _venue("binance") as (sim, ex):
        _refuses_each_filter(sim, ex)


def _refuses_each_filter(sim: Sim, ex: CcxtExchange) -> None:
    read = ex.load_markets()[BTC]
    unchecked = replace(read, max_qty=None, percent_price=None, market_max_qty=None)
    # The adapter's own pre-checks cover the grid only; the server decides the rest.
    refusals = [
        # Binance names the filter, not the limit: LOT_SIZE reads back as "step"
        ("limit", "sell", D("90000"), D("9000.00001"), "step"),
        ("limit", "buy", D("450000.01"), D("0.0001"), "percent_price"),
        ("market", "sell", None, D("128.52622"), "market_lot_size"),
    ]
    for n, (kind, side, price, amount, reason) in enumerate(refusals):
        with pytest.raises(InvalidOrder) as err:
            ex.create_order(BTC, side, kind, amount, price, "IOC", f"fsmref{n}")  # type: ignore[arg-type]
        assert err.value.reason == reason
        # without the limits the server enforced, the order passes every other check
        assert preflight(side, price, amount, unchecked, ref_price=D("90000")).ok
    assert sim.state()["counters"]["created"] == 0
