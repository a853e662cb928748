"""Balances reconcile exactly whatever asset the venue charges its fees in: the quote, the
received asset (a buy's fee in the base shrinks what is held) or BNB (a third asset the
books do not hold: the account's BNB recorded at the first start, less the BNB fees the
booked fills paid). A round trip on the real simulated exchange with the Binance
profile, checked by reconcile and by the crash oracle (which recomputes holdings, cost
and fees per order from the exchange's fills)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fsmtrader.audit import EventBus
from fsmtrader.clock import SimClock
from fsmtrader.exchange.simulated import SimExchange, SimParams
from fsmtrader.exchange.simulated.venue import BINANCE, FeeAsset
from fsmtrader.orders.intent import Intent
from fsmtrader.orders.router import OrderRouter, RouterConfig
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import Portfolio
from fsmtrader.reconcile import Account, reconcile
from fsmtrader.reconcile.account import (
    BASELINE_META,
    encode_outside,
    fees_elsewhere,
    outside_of,
)
from fsmtrader.smoke.verify import SessionBooks, verify_books
from fsmtrader.state.books import Books
from fsmtrader.state.delta import Snapshot
from fsmtrader.state.fill import BookedFill
from fsmtrader_testing.harness import mf, settings

D = Decimal
BTC = "BTC/USDT"
BTC_M = mf(BTC, "0.01", "0.00001", "0.00001", "5")
T0 = 1_000_000
SETTINGS = settings(risk={"position_size": 200, "max_total_exposure": 400})


def order(side: str, amount: str, limit: str, at: int) -> Intent:
    return Intent.create(
        decision_id=f"d-{side}",
        symbol=BTC,
        side=side,  # type: ignore[arg-type]
        amount=D(amount),
        limit_price=D(limit),
        ref_price=D(limit),
        max_slippage_bps=D(50),
        time_in_force="IOC",
        leg=0,
        created_ms=at,
    )


def booked(router: OrderRouter) -> list[BookedFill]:
    return [
        BookedFill(
            f["intent_id"],
            f["trade_id"],
            f["symbol"],
            f["side"],
            f["price"],
            f["amount"],
            f["fee"],
            f["fee_currency"],
            f["ts"],
            f["decision_id"],
        )
        for f in router.fills
    ]


@pytest.mark.parametrize("fee_asset", ["quote", "received", "bnb"])
def test_a_round_trip_reconciles_exactly_whatever_the_fee_asset(fee_asset: FeeAsset) -> None:
    clock = SimClock(T0)
    params = SimParams(venue=BINANCE.with_fee_asset(fee_asset))
    sim = SimExchange({BTC: BTC_M}, {"USDT": D(1000), "BNB": D(1)}, clock=clock, params=params)
    sim.update_market(BTC, T0, 50_000.0, 50_100.0, 49_900.0, 100.0)
    pf = Portfolio(quote="USDT", cash=D(1000))
    router = OrderRouter(sim, pf, {BTC: BTC_M}, clock, EventBus(), RouterConfig())
    router.keep_fills = True

    def books() -> Books:
        return Books(router.records, pf, [BTC], {BTC: BTC_M})

    outside = outside_of(books(), sim.fetch_balance())  # the first start: BNB is outside
    assert outside == {"BNB": D(1), "BTC": D(0), "USDT": D(0)}
    buy = router.submit(order("buy", "0.002", "50100", T0))
    clock.advance(20_000)
    held = pf.positions[BTC].qty
    sell_qty = (held - D("0.0001")).quantize(D("0.00001"))
    sell = router.submit(order("sell", str(sell_qty), "49900", clock.now_ms()))
    clock.advance(20_000)
    assert buy.state is sell.state is OrderState.RECONCILED, (buy, sell)
    currencies = {f.fee_currency for f in booked(router)}
    expect = {"quote": {"USDT"}, "received": {"BTC", "USDT"}, "bnb": {"BNB"}}[fee_asset]
    assert currencies == expect
    if fee_asset == "received":
        assert held < buy.filled  # the buy's fee came out of the base received
    fees = fees_elsewhere(booked(router), {BTC: BTC_M}, "USDT")
    account = Account(outside=outside, fees_elsewhere=fees)
    rep = reconcile(books(), sim, now_ms=clock.now_ms(), exact_balances=True, account=account)
    assert rep.ok, rep.to_dict()
    meta = {BASELINE_META: encode_outside(outside)}  # as the session records it
    snap = Snapshot(orders=list(router.records.values()), portfolio=pf, meta=meta)
    verdict = verify_books(
        SessionBooks(snap, pf, booked(router), {BTC: BTC_M}), sim, SETTINGS, exact=True
    )
    assert verdict.ok and verdict.problems == [], verdict
    if fee_asset == "bnb":  # the BNB the fees took is accounted for, to the last 1e-8
        assert sim.fetch_balance()["BNB"].total == D(1) - fees["BNB"] < D(1)
        short = Account(outside, {"BNB": fees["BNB"] - D("2e-8")})  # 2 quanta unbooked
        off = reconcile(books(), sim, now_ms=clock.now_ms(), exact_balances=True, account=short)
        assert off.balance_differences == [
            {
                "asset": "BNB",
                "exchange": str(D(1) - fees["BNB"]),
                "ours": str(D(1) - fees["BNB"] + D("2e-8")),
                "diff": "-2E-8",
            }
        ]
