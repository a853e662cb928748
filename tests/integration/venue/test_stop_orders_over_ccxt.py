"""Stop-limit sells through the live path: our ccxt adapter against the local server.
Binance: the adapter sends STOP_LOSS_LIMIT with stopPrice, the venue locks the base and
shows the stop, a bar through the stop fills it, a stop the last price is already under
is refused; MEXC: the adapter refuses to send one, and the venue refuses it as the real
MEXC API does."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from ccxt.base import errors as cx

from fsmtrader.errors import InvalidOrder
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange

from simserver_support import KEY, SECRET, Sim, running_server

BTC = "BTC/USDT"
D = Decimal
pytestmark = pytest.mark.timeout(120)


def adapter(sim: Sim) -> CcxtExchange:
    options = CcxtOptions(
        sim.flavour, api_key=KEY, api_secret=SECRET, base_url=sim.base_url, timeout_ms=3000
    )
    ex = CcxtExchange(options)
    ex.load_markets()
    return ex


@pytest.fixture
def bsim() -> Iterator[Sim]:
    with running_server("binance") as sim:
        sim.price(BTC, D("90000"), hold=True)
        yield sim


def test_binance_stop_loss_limit_rests_locks_the_base_and_fills_through_the_stop(
    bsim: Sim,
) -> None:
    ex = adapter(bsim)
    try:
        before = ex.fetch_balance()["BTC"]
        o = ex.create_order(
            BTC, "sell", "limit", D("0.01"), D("84150"), "GTC", "fsmstop1", D("85000")
        )
        assert (o.status, o.stop_price, o.price, o.amount) == (
            "open",
            D("85000"),
            D("84150"),
            D("0.01"),
        )
        venue = bsim.order("fsmstop1")
        assert venue is not None and venue["type"] == "STOP_LOSS_LIMIT"
        assert ex.fetch_order(o.id, BTC).stop_price == D("85000")  # a query shows the stop
        assert ex.fetch_balance()["BTC"].used == before.used + D("0.01")
        bsim.price(BTC, D("86000"), low=D("85500"), hold=True)  # above the stop
        assert ex.fetch_order(o.id, BTC).filled == 0
        bsim.price(BTC, D("84900"), low=D("84900"), hold=True)  # through it
        done = ex.fetch_order(o.id, BTC)
        assert done.status == "closed" and done.filled == D("0.01")
        assert done.trades == [] or all(t.price >= D("84150") for t in done.trades)
        assert all(t.price >= D("84150") for t in ex.fetch_order_trades(o.id, BTC))
        assert ex.fetch_balance()["BTC"].total == before.total - D("0.01")
    finally:
        ex.close()


def test_binance_cancels_a_stop_and_refuses_one_that_would_trigger_at_once(bsim: Sim) -> None:
    ex = adapter(bsim)
    try:
        o = ex.create_order(
            BTC, "sell", "limit", D("0.01"), D("84150"), "GTC", "fsmstop2", D("85000")
        )
        assert ex.cancel_order(o.id, BTC).status == "canceled"
        assert ex.fetch_balance()["BTC"].used == 0
        with pytest.raises(InvalidOrder):  # the last price (90,000) is under the stop
            ex.create_order(
                BTC, "sell", "limit", D("0.01"), D("90500"), "GTC", "fsmstop3", D("91000")
            )
        assert bsim.order("fsmstop3") is None
    finally:
        ex.close()


def test_mexc_refuses_stop_orders_in_the_adapter_and_at_the_venue() -> None:
    with running_server("mexc", quirks={"no_stop_limit"}) as sim:
        sim.price(BTC, D("90000"), hold=True)
        ex = adapter(sim)
        try:
            with pytest.raises(InvalidOrder, match="mexc has no spot stop orders"):
                ex.create_order(
                    BTC, "sell", "limit", D("0.01"), D("84150"), "GTC", "fsmstopm", D("85000")
                )
            assert sim.order_count() == 0  # refused before any request
            # sent anyway (a raw ccxt call), the venue answers as the real MEXC does
            client = ex._core._client
            with pytest.raises(cx.ExchangeError, match="invalid type") as info:
                ex._run(
                    client.create_order(
                        BTC, "STOP_LOSS_LIMIT", "sell", 0.01, 84150, {"stopPrice": 85000}
                    )
                )
            assert not isinstance(info.value, cx.InvalidOrder)  # MEXC's 500: a plain error
            assert sim.order_count() == 0
        finally:
            ex.close()
