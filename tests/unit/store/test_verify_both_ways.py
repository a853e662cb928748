"""The crash oracle's checks look both ways (DESIGN invariant 13): one filled buy that the
books and the exchange agree on, then each side given something the other lacks."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from fsmtrader.exchange.types import Balance, OrderInfo, TradeInfo
from fsmtrader.orders.intent import Intent, client_order_id
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import Portfolio, Position
from fsmtrader.state.delta import Snapshot
from fsmtrader.state.fill import BookedFill
from fsmtrader.state.order import OrderRecord
from fsmtrader_testing.verify import Books, holdings_drift, orphaned

D = Decimal
BTC = "BTC/USDT"


def books() -> Books:
    it = Intent.create(
        decision_id="d-1",
        symbol=BTC,
        side="buy",
        amount=D("0.002"),
        limit_price=D("50000"),
        ref_price=D("50000"),
        max_slippage_bps=D(50),
        time_in_force="IOC",
        leg=0,
        created_ms=1_000,
    )
    coid = client_order_id(it.intent_id, 32)
    rec = OrderRecord(
        it, coid, state=OrderState.RECONCILED, order_id="x-1", filled=D("0.002"), seen_trades={"t1"}
    )
    trade = TradeInfo("t1", "x-1", coid, BTC, "buy", D("50000"), D("0.002"), D("0.1"), "USDT", 1)
    order = OrderInfo(
        "x-1", coid, BTC, "buy", D("50000"), D("0.002"), "IOC", "closed", 1, filled=D("0.002")
    )
    booked = BookedFill(it.intent_id, "t1", BTC, "buy", "50000", "0.002", "0.1", "USDT", 1, "d-1")
    pf = Portfolio(quote="USDT", cash=D("899.9"))
    pf.positions = {BTC: Position(BTC, "d-1", 1, qty=D("0.002"))}
    snap = Snapshot(orders=[rec], portfolio=pf)
    balances = {"USDT": Balance(D("899.9"), D(0)), "BTC": Balance(D("0.002"), D(0))}
    return Books(snap, pf, [booked], [BTC], {coid: order}, [trade], balances)


def test_matching_books_have_no_orphans_and_no_drift() -> None:
    b = books()
    assert orphaned(b) == 0 and holdings_drift(b, "USDT") == 0 and b.notes == []


def test_an_order_the_bot_sent_that_the_exchange_does_not_have_is_an_orphan() -> None:
    b = books()
    b.orders.clear()
    b.trades.clear()
    b.portfolio.positions.clear()
    b.balances["BTC"] = Balance(D(0), D(0))
    assert orphaned(b) == 1
    assert any("in the bot, not on the exchange" in n for n in b.notes)


def test_an_exchange_order_the_bot_does_not_know_is_an_orphan() -> None:
    b = books()
    b.snap.orders.clear()
    assert orphaned(b) == 1
    assert any("unknown to the bot" in n for n in b.notes)


def test_a_booked_fill_the_exchange_did_not_make_is_drift() -> None:
    b = books()
    b.fills.append(replace(b.fills[0], trade_id="t-phantom"))
    assert holdings_drift(b, "USDT") == 1
    assert b.notes == [
        "drift: booked fill t-phantom of " + b.fills[0].intent_id + " not on the exchange"
    ]


def test_an_exchange_fill_the_bot_did_not_book_is_drift() -> None:
    b = books()
    b.fills.clear()
    assert holdings_drift(b, "USDT") == 1
    assert any("not booked" in n for n in b.notes)
