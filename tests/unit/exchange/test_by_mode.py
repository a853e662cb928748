"""The canary's exchange routes each symbol by its mode: a paper symbol's orders reach
the simulator only (their ids marked ``paper:``), a live one's the venue only, an
observed one's nowhere; an order is looked up and cancelled where it lives; reads merge
both; the balance is the venue's plus what paper trading changed on the simulator. Two
real simulated exchanges (the Binance profile) stand for the venue and the simulator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fsmtrader.clock import SimClock
from fsmtrader.errors import InvalidOrder
from fsmtrader.exchange.by_mode import PAPER_ID, ByModeExchange
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader_testing.harness import BTC, mf

D = Decimal
ETH = mf("ETH/USDT", "0.01", "0.0001", "0.0001", "5")
MARKETS = {
    "BTC/USDT": BTC,
    "ETH/USDT": ETH,
    "SOL/USDT": mf("SOL/USDT", "0.01", "0.001", "0.001", "5"),
}
MODES = {"BTC/USDT": "live", "ETH/USDT": "paper", "SOL/USDT": "observe"}


def exchanges() -> tuple[SimExchange, SimExchange, ByModeExchange]:
    clock = SimClock(1_000_000)
    venue = SimExchange(MARKETS, {"USDT": D(500), "BTC": D("0.01")}, clock=clock)
    sim = SimExchange(MARKETS, {"USDT": D(1000)}, clock=clock)
    for ex in (venue, sim):
        ex.update_market("BTC/USDT", 1_000_000, 50_000.0, 50_000.0, 50_000.0, 100.0)
        ex.update_market("ETH/USDT", 1_000_000, 3_000.0, 3_000.0, 3_000.0, 100.0)
        ex.update_market("SOL/USDT", 1_000_000, 100.0, 100.0, 100.0, 100.0)
    return venue, sim, ByModeExchange(venue, sim, MODES, {"USDT": D(1000)})


def test_each_order_goes_where_its_symbol_s_mode_says() -> None:
    venue, sim, ex = exchanges()
    assert ex.fetch_balance()["USDT"].total == D(500)  # the simulator's funding nets out
    paper = ex.create_order("ETH/USDT", "buy", "limit", D("0.01"), D(2_900), "GTC", "fsmp1")
    live = ex.create_order("BTC/USDT", "buy", "limit", D("0.0003"), D(49_000), "GTC", "fsml1")
    with pytest.raises(InvalidOrder, match="observe sends no order"):
        ex.create_order("SOL/USDT", "buy", "limit", D("0.1"), D(99), "GTC", "fsmo1")
    assert paper.id.startswith(PAPER_ID) and not live.id.startswith(PAPER_ID)
    assert [o.client_order_id for o in sim.fetch_open_orders()] == ["fsmp1"]
    assert [o.client_order_id for o in venue.fetch_open_orders()] == ["fsml1"]
    assert {o.id for o in ex.fetch_open_orders()} == {paper.id, live.id}  # merged
    assert ex.fetch_order(paper.id, "ETH/USDT").client_order_id == "fsmp1"
    assert ex.fetch_order_by_client_id("fsmp1", "ETH/USDT").id == paper.id
    assert ex.fetch_order(live.id, "BTC/USDT").client_order_id == "fsml1"
    assert ex.cancel_order(paper.id, "ETH/USDT").status == "canceled"
    assert ex.cancel_order(live.id, "BTC/USDT").status == "canceled"
    assert [o.id for o in ex.fetch_orders("ETH/USDT", since=0)] == [paper.id]
    assert ex.fetch_orders("SOL/USDT", since=0) == []


def test_the_balance_is_the_venue_s_plus_what_paper_trading_changed() -> None:
    venue, sim, ex = exchanges()
    ask = ex.fetch_ticker("ETH/USDT").ask  # the simulator's book quotes a paper symbol
    assert ask == sim.fetch_ticker("ETH/USDT").ask
    order = ex.create_order("ETH/USDT", "buy", "limit", D("0.01"), ask * 2, "IOC", "fsmp2")
    assert order.filled == D("0.01")
    trades = ex.fetch_my_trades("ETH/USDT")
    assert trades and all(t.id.startswith(PAPER_ID) and t.order_id == order.id for t in trades)
    assert ex.fetch_order_trades(order.id, "ETH/USDT") == trades
    spent = sum((t.cost + (t.fee if t.fee_currency == "USDT" else 0) for t in trades), D(0))
    bal = ex.fetch_balance()
    assert bal["USDT"].total == D(500) - spent  # the venue's 500, less what paper spent
    got = sum((t.amount - (t.fee if t.fee_currency == "ETH" else 0) for t in trades), D(0))
    assert bal["ETH"].total == got and bal["BTC"].total == D("0.01")
    assert venue.fetch_balance()["USDT"].total == D(500)  # the venue untouched
