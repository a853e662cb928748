"""The crash oracle's checks look both ways (DESIGN invariant 13): one filled buy that the
books and the real simulated exchange agree on, then each side given something the other
lacks. The oracle is the product's reconcile over the whole history plus its own checks
(issue 8: an exchange fill the books did not book is now counted as a lost fill, no
longer as drift; the other findings keep their kind)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from fsmtrader.audit import EventBus
from fsmtrader.clock import SimClock
from fsmtrader.exchange.simulated import SimExchange, SimParams
from fsmtrader.orders.intent import Intent, client_order_id, make_intent_id
from fsmtrader.orders.router import OrderRouter, RouterConfig
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import Portfolio
from fsmtrader.smoke.verify import SessionBooks, Verdict, verify_books
from fsmtrader.state.delta import Snapshot
from fsmtrader.state.fill import BookedFill
from fsmtrader.state.order import OrderRecord
from fsmtrader_testing.harness import mf, settings

D = Decimal
BTC = "BTC/USDT"
BTC_M = mf(BTC, "0.01", "0.00001", "0.00001", "5")
T0 = 1_000_000
CASH = D("1000")
SETTINGS = settings(risk={"position_size": 200, "max_total_exposure": 400})


@dataclass
class Env:
    clock: SimClock
    sim: SimExchange
    router: OrderRouter
    books: SessionBooks

    def verdict(self) -> Verdict:
        return verify_books(self.books, self.sim, SETTINGS, exact=True)

    @property
    def rec(self) -> OrderRecord:
        (rec,) = self.books.snap.orders
        return rec


def filled_buy() -> Env:
    """One IOC buy that filled, booked by the router; the books as the store keeps them."""
    clock = SimClock(T0)
    sim = SimExchange({BTC: BTC_M}, {"USDT": CASH}, clock=clock, params=SimParams())
    sim.update_market(BTC, T0, 50_000.0, 50_100.0, 49_900.0, 100.0)
    pf = Portfolio(quote="USDT", cash=CASH)
    router = OrderRouter(sim, pf, {BTC: BTC_M}, clock, EventBus(), RouterConfig())
    router.keep_fills = True
    it = Intent.create(
        decision_id="d-1",
        symbol=BTC,
        side="buy",
        amount=D("0.002"),
        limit_price=D("50100"),
        ref_price=D("50100"),
        max_slippage_bps=D(50),
        time_in_force="IOC",
        leg=0,
        created_ms=T0,
    )
    rec = router.submit(it)
    clock.advance(20_000)
    assert rec.state is OrderState.RECONCILED and rec.filled == D("0.002"), rec
    fills = [
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
    snap = Snapshot(orders=[rec], portfolio=pf)
    return Env(clock, sim, router, SessionBooks(snap, pf, fills, {BTC: BTC_M}))


def test_matching_books_are_sound() -> None:
    v = filled_buy().verdict()
    assert v == Verdict(0, 0, D(0), 0, []) and v.ok
    assert v.last_line() == "duplicates=0 orphans=0 drift=0 lost_fills=0"


def test_an_order_the_bot_sent_that_the_exchange_does_not_have_is_an_orphan() -> None:
    env = filled_buy()
    it = replace(env.rec.intent, intent_id="i-never", decision_id="d-never")
    never = OrderRecord(it, "fsmi-never", OrderState.RECONCILED, order_id="x-never")
    env.books.snap.orders.append(never)  # the books name an order the exchange never made
    v = env.verdict()
    assert v.orphans == 1 and not v.ok
    assert any("x-never" not in p and "not on the exchange" in p for p in v.problems)


def test_an_order_id_the_books_hold_that_is_not_the_exchange_order_is_an_orphan() -> None:
    env = filled_buy()
    env.rec.order_id = "x-other"  # the intent's order on the exchange has another id
    v = env.verdict()
    assert v.orphans == 1 and any("x-other" in p for p in v.problems), v.problems


def test_an_exchange_order_the_bot_does_not_know_is_an_orphan_and_its_fill_lost() -> None:
    env = filled_buy()
    coid = client_order_id(make_intent_id("d-lost", "buy", 0), 32)
    o = env.sim.create_order(BTC, "buy", "limit", D("0.001"), D("50100"), "IOC", coid)
    env.clock.advance(20_000)
    v = env.verdict()
    assert v.orphans == 1 and v.lost_fills == len(o.trades) >= 1
    assert any(coid in p for p in v.problems if p.startswith("orphan")), v.problems


def test_a_booked_fill_the_exchange_did_not_make_is_drift() -> None:
    env = filled_buy()
    rec = env.rec
    env.books.fills.append(replace(env.books.fills[0], trade_id="t-phantom"))
    rec.seen_trades.add("t-phantom")
    v = env.verdict()
    assert v.drift >= 1 and v.lost_fills == 0 and v.orphans == 0
    assert any("booked fill not on the exchange" in p and "t-phantom" in p for p in v.problems)


def test_an_exchange_fill_the_bot_did_not_book_is_a_lost_fill() -> None:
    env = filled_buy()
    rec = env.rec
    (trade_id,) = rec.seen_trades
    rec.seen_trades.clear()
    env.books.fills.clear()
    v = env.verdict()
    assert v.lost_fills == 1 and not v.ok
    assert any("lost fill" in p and trade_id in p for p in v.problems), v.problems


def test_a_fill_table_row_the_order_record_lacks_is_drift() -> None:
    env = filled_buy()
    env.books.fills.clear()  # the record saw it, the fill table never got it
    v = env.verdict()
    assert v.drift >= 1 and any("fill table" in p for p in v.problems), v.problems


def test_filled_cost_and_fee_per_order_are_compared() -> None:
    env = filled_buy()
    env.rec.fee_quote += D("0.01")
    v = env.verdict()
    assert v.drift == D("0.01")
    assert any(" fee " in p for p in v.problems), v.problems


def test_a_second_exchange_order_under_an_intents_client_id_is_a_duplicate() -> None:
    env = filled_buy()
    rec = env.rec
    env.sim.create_order(BTC, "buy", "limit", D("0.002"), D("50100"), "IOC", rec.client_order_id)
    env.clock.advance(20_000)
    v = env.verdict()
    assert v.duplicates == 1 and v.lost_fills >= 1  # and the second order's fills unbooked
    assert any(p.startswith("duplicate:") and rec.client_order_id in p for p in v.problems)
