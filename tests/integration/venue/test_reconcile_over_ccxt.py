"""Reconcile both ways through the live path: the real ccxt client against the local
Binance server, whose trade history carries no clientOrderId. An intent the books gave
up (FAILED_FINAL, nothing reserved) whose order filled on the venue is flagged, with the
BTC surplus against the account's outside holdings, and booked once from its fills by
order id."""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.audit import EventBus
from fsmtrader.clock import WallClock
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.orders.found import book_found
from fsmtrader.orders.intent import Intent, client_order_id
from fsmtrader.orders.router import OrderRouter, RouterConfig
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import Portfolio
from fsmtrader.reconcile import Account, reconcile
from fsmtrader.reconcile.account import outside_of
from fsmtrader.state.books import Books
from fsmtrader.state.order import OrderRecord

from simserver_support import KEY, SECRET, running_server

SYM = "BTC/USDT"
D = Decimal


def test_a_given_up_intent_that_filled_on_the_venue_is_flagged_then_booked_once() -> None:
    with running_server("binance") as sim:
        sim.price(SYM, D("90000"), hold=True)
        options = CcxtOptions(
            "binance", api_key=KEY, api_secret=SECRET, base_url=sim.base_url, timeout_ms=3000
        )
        ex = CcxtExchange(options)
        try:
            filters = {SYM: ex.load_markets()[SYM]}
            pf = Portfolio(quote="USDT", cash=D(1000))
            clock = WallClock()
            router = OrderRouter(ex, pf, filters, clock, EventBus(), RouterConfig())

            def books() -> Books:
                return Books(router.records, pf, [SYM], filters)

            outside = outside_of(books(), ex.fetch_balance())  # the first start's record
            account = Account(outside=outside)
            it = Intent.create(
                decision_id="BTCUSDT-1-entry",
                symbol=SYM,
                side="buy",
                amount=D("0.0003"),
                limit_price=D("91000"),
                ref_price=D("91000"),
                max_slippage_bps=D(50),
                time_in_force="IOC",
                leg=0,
                created_ms=clock.now_ms(),
            )
            coid = client_order_id(it.intent_id)
            router.restore([OrderRecord(it, coid, OrderState.FAILED_FINAL)])
            before = CcxtExchange(options)  # the process that sent it, before a restart
            try:
                placed = before.create_order(
                    SYM, "buy", "limit", D("0.0003"), D("91000"), "IOC", coid
                )
            finally:
                before.close()
            assert placed.status == "closed"
            # this adapter never saw the order, and Binance's fills carry no clientOrderId:
            assert all(t.client_order_id == "" for t in ex.fetch_my_trades(SYM))

            first = reconcile(
                books(), ex, now_ms=clock.now_ms(), exact_balances=False, account=account
            )
            assert not first.ok
            assert [f.get("intent_id") for f in first.unbooked_fills] == [it.intent_id] * len(
                first.unbooked_fills
            )
            assert {b["asset"] for b in first.balance_differences} == {"BTC", "USDT"}
            (rec,) = book_found(router, first)
            assert rec.state is OrderState.RECONCILED and rec.filled == placed.filled
            assert pf.positions[SYM].qty == placed.filled and not pf.reserved
            again = reconcile(
                books(), ex, now_ms=clock.now_ms(), exact_balances=False, account=account
            )
            assert again.ok, again.to_dict()
            assert book_found(router, again) == []
        finally:
            ex.close()
