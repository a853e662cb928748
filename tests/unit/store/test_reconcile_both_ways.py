"""Reconcile looks both ways (DESIGN invariant 13), through its boundary: the books as a
``Books`` value and the real simulated exchange, with no engine. Each test starts from books
that match and breaks one side."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fsmtrader.audit import EventBus
from fsmtrader.clock import SimClock
from fsmtrader.exchange.simulated import SimExchange, SimParams
from fsmtrader.orders.intent import Intent, client_order_id, make_intent_id
from fsmtrader.orders.router import OrderRouter, RouterConfig
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import Portfolio
from fsmtrader.reconcile import RECENT_MS, ReconcileReport, reconcile
from fsmtrader.reconcile.checks import CLOCK_SKEW_MS
from fsmtrader.state.books import Books
from fsmtrader.state.order import OrderRecord
from fsmtrader_testing.harness import mf

D = Decimal
BTC = "BTC/USDT"
BTC_M = mf(BTC, "0.01", "0.00001", "0.00001", "5")
T0 = 1_000_000
CASH = D("1000")


@dataclass
class Env:
    clock: SimClock
    exchange: SimExchange
    portfolio: Portfolio
    router: OrderRouter

    def check(self, *, exact: bool = True) -> ReconcileReport:
        books = Books(self.router.records, self.portfolio, [BTC], {BTC: BTC_M})
        return reconcile(books, self.exchange, now_ms=self.clock.now_ms(), exact_balances=exact)


def make_env() -> Env:
    clock = SimClock(T0)
    ex = SimExchange({BTC: BTC_M}, {"USDT": CASH, "BTC": D(0)}, clock=clock, params=SimParams())
    ex.update_market(BTC, T0, 50_000.0, 50_100.0, 49_900.0, 100.0)
    pf = Portfolio(quote="USDT", cash=CASH)
    router = OrderRouter(ex, pf, {BTC: BTC_M}, clock, EventBus(), RouterConfig())
    return Env(clock, ex, pf, router)


def buy(env: Env, decision: str, limit: str, tif: str = "GTC") -> OrderRecord:
    it = Intent.create(
        decision_id=decision,
        symbol=BTC,
        side="buy",
        amount=D("0.002"),
        limit_price=D(limit),
        ref_price=D(limit),
        max_slippage_bps=D(50),
        time_in_force=tif,  # type: ignore[arg-type]
        leg=0,
        created_ms=env.clock.now_ms(),
    )
    return env.router.submit(it)


def resting(env: Env) -> OrderRecord:
    """A GTC buy far below the market: open on the exchange and live in the books."""
    rec = buy(env, "d-rest", "45000")
    env.clock.advance(5_000)  # past the venue's visibility lag
    env.router.refresh(rec.intent.intent_id)
    assert rec.live and rec.order_id, rec
    assert env.check().ok, env.check().to_dict()
    return rec


def test_an_order_live_in_the_books_but_gone_from_the_exchange_is_missing() -> None:
    env = make_env()
    rec = resting(env)
    env.exchange.cancel_order(rec.order_id or "", BTC)  # behind the books' back
    rep = env.check()
    assert not rep.ok
    assert rep.missing_orders == [
        {
            "intent_id": rec.intent.intent_id,
            "client_order_id": rec.client_order_id,
            "detail": f"{rec.state} in our books, not open on the exchange",
        }
    ]


def test_an_order_open_on_the_exchange_but_over_in_the_books_is_missing() -> None:
    env = make_env()
    rec = resting(env)
    rec.state = OrderState.RECONCILED  # the books think it is over
    rep = env.check()
    assert not rep.ok
    assert rep.missing_orders == [
        {
            "intent_id": rec.intent.intent_id,
            "client_order_id": rec.client_order_id,
            "detail": f"open on the exchange, {OrderState.RECONCILED} in our books",
        }
    ]


def test_an_open_order_of_ours_unknown_to_the_books_is_an_orphan_a_foreign_one_is_not() -> None:
    env = make_env()
    coid = client_order_id(make_intent_id("d-lost", "buy", 0), 32)
    o = env.exchange.create_order(BTC, "buy", "limit", D("0.001"), D("45000"), "GTC", coid)
    env.exchange.create_order(BTC, "buy", "limit", D("0.001"), D("45000"), "GTC", "manual-1")
    env.clock.advance(5_000)
    rep = env.check()
    assert rep.foreign_open_orders == 1
    assert rep.orphaned_orders == [
        {
            "client_order_id": coid,
            "order_id": o.id,
            "symbol": BTC,
            "side": "buy",
            "amount": "0.001",
            "price": "45000",
        }
    ]
    assert not rep.ok


def test_a_fill_of_ours_the_books_have_not_booked_is_reported() -> None:
    env = make_env()
    rec = buy(env, "d-fill", "50100", tif="IOC")
    env.clock.advance(5_000)
    env.router.run_due(env.clock.now_ms())
    assert rec.done and rec.seen_trades, rec
    assert env.check().ok, env.check().to_dict()
    trade_id = sorted(rec.seen_trades)[0]
    rec.seen_trades.discard(trade_id)
    rec.state = OrderState.PARTIAL  # not over: its fills are read back
    rep = env.check()
    missed = [f for f in rep.unbooked_fills if f.get("trade_id") == trade_id]
    assert missed and missed[0].get("intent_id") == rec.intent.intent_id


def test_a_fill_of_an_order_the_books_do_not_hold_is_reported() -> None:
    env = make_env()
    coid = client_order_id(make_intent_id("d-ghost", "buy", 0), 32)
    o = env.exchange.create_order(BTC, "buy", "limit", D("0.001"), D("50100"), "IOC", coid)
    env.clock.advance(5_000)
    rep = env.check()
    assert {f.get("order_id") for f in rep.unbooked_fills} == {o.id}
    assert not rep.ok


def test_balances_surplus_and_deficit() -> None:
    env = make_env()
    env.portfolio.cash -= D(1)  # the exchange holds 1 USDT more than the books
    surplus = env.check(exact=True)
    assert surplus.balance_differences == [
        {"asset": "USDT", "exchange": "1000", "ours": "999", "diff": "1"}
    ]
    assert env.check(exact=False).ok  # live: the account may hold more than the bot manages
    env.portfolio.cash += D(2)  # now 1 USDT less than the books
    for exact in (True, False):
        rep = env.check(exact=exact)
        assert rep.balance_differences == [
            {"asset": "USDT", "exchange": "1000", "ours": "1001", "diff": "-1"}
        ]


def test_two_exchange_orders_for_one_intent_are_a_duplicate() -> None:
    """Binance accepts a reused clientOrderId once the first order is over: a re-send
    after an IOC filled is a second order for the same intent."""
    env = make_env()
    rec = buy(env, "d-dup", "50100", tif="IOC")
    env.clock.advance(5_000)
    assert rec.done and rec.filled > 0, rec
    assert env.check().ok, env.check().to_dict()
    again = env.exchange.create_order(
        BTC, "buy", "limit", D("0.002"), D("50100"), "IOC", rec.client_order_id
    )
    env.clock.advance(5_000)
    rep = env.check()
    assert rep.duplicate_orders == [
        {
            "intent_id": rec.intent.intent_id,
            "client_order_id": rec.client_order_id,
            "order_ids": [rec.order_id, again.id],
        }
    ]
    assert not rep.ok and "1 duplicate order(s) for one intent" in rep.summary()


def test_a_booked_fill_the_exchange_does_not_have_and_a_filled_amount_that_differs() -> None:
    env = make_env()
    rec = buy(env, "d-twice", "50100", tif="IOC")
    env.clock.advance(5_000)
    assert env.check().ok
    rec.seen_trades.add("t-booked-twice")  # the same fill booked again under another id
    rec.filled += D("0.002")
    rep = env.check()
    assert rep.phantom_fills == [
        {"trade_id": "t-booked-twice", "intent_id": rec.intent.intent_id, "order_id": rec.order_id}
    ]
    assert rep.filled_differences == [
        {
            "intent_id": rec.intent.intent_id,
            "client_order_id": rec.client_order_id,
            "exchange": str(rec.filled - D("0.002")),
            "ours": str(rec.filled),
        }
    ]
    assert not rep.ok


def test_a_filled_order_the_books_gave_up_is_missing_and_its_fills_unbooked() -> None:
    """The issue's blind spot: trade history without clientOrderId, an intent settled
    FAILED_FINAL; its exchange order is found by clientOrderId, its fills by order id."""
    env = make_env()
    it = Intent.create(
        decision_id="d-gone",
        symbol=BTC,
        side="buy",
        amount=D("0.002"),
        limit_price=D("50100"),
        ref_price=D("50100"),
        max_slippage_bps=D(50),
        time_in_force="IOC",
        leg=0,
        created_ms=env.clock.now_ms(),
    )
    rec = OrderRecord(it, client_order_id(it.intent_id, 32), OrderState.FAILED_FINAL)
    env.router.restore([rec])
    o = env.exchange.create_order(
        BTC, "buy", "limit", D("0.002"), D("50100"), "IOC", rec.client_order_id
    )
    env.clock.advance(5_000)
    rep = env.check()
    assert [m["detail"] for m in rep.missing_orders] == [
        f"closed on the exchange (filled {o.filled}), FAILED_FINAL in our books"
    ]
    assert {f.get("intent_id") for f in rep.unbooked_fills} == {it.intent_id}
    assert rep.orphaned_orders == []  # it is ours and placed: not an orphan


def test_an_order_is_concluded_absent_only_past_the_visibility_window_of_its_last_send() -> None:
    env = make_env()
    env.clock.advance(600_000)
    it = Intent.create(
        decision_id="d-hidden",
        symbol=BTC,
        side="buy",
        amount=D("0.002"),
        limit_price=D("45000"),
        ref_price=D("45000"),
        max_slippage_bps=D(50),
        time_in_force="GTC",
        leg=0,
        created_ms=T0 + 60_000,
    )
    now = env.clock.now_ms()
    rec = OrderRecord(it, client_order_id(it.intent_id, 32), OrderState.RECONCILED, order_id="9")
    rec.unknown_since = now - 4_000  # its last send ended 4 s ago: maybe not shown yet
    env.router.restore([rec])
    books = Books(env.router.records, env.portfolio, [BTC], {BTC: BTC_M})
    hidden = reconcile(books, env.exchange, now_ms=now, exact_balances=True, visibility_ms=5_000)
    assert hidden.missing_orders == []
    rec.unknown_since = now - 6_000
    absent = reconcile(books, env.exchange, now_ms=now, exact_balances=True, visibility_ms=5_000)
    assert [m["detail"] for m in absent.missing_orders] == [
        "RECONCILED in our books, not on the exchange"
    ]


def test_the_look_back_is_a_day_or_back_to_the_oldest_open_intent() -> None:
    """Start-up stays cheap: the history read is bounded, not the whole account's."""
    env = make_env()
    coid = client_order_id(make_intent_id("d-old", "buy", 0), 32)
    env.exchange.create_order(BTC, "buy", "limit", D("0.001"), D("50100"), "IOC", coid)
    env.clock.advance(5_000)
    assert env.check().orphaned_orders  # a filled orphan of ours, read while recent
    env.clock.advance(2 * RECENT_MS)
    rep = env.check()
    assert rep.since == env.clock.now_ms() - RECENT_MS
    assert rep.orphaned_orders == [] and rep.unbooked_fills == []  # two days old: not read
    rec = buy(env, "d-rest", "45000")  # a resting buy, open for two days
    env.clock.advance(2 * RECENT_MS)
    env.router.refresh(rec.intent.intent_id)
    assert rec.live
    assert env.check().since == rec.intent.created_ms - CLOCK_SKEW_MS
