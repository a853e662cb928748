"""The router's call of preflight: the venue's every filter decides before anything is
sent (a ghost with preflight's reason), and an amount over a maximum goes out capped.
Real OrderRouter, real SimExchange enforcing the same filters, real Portfolio."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from fsmtrader.audit import EventBus
from fsmtrader.clock import SimClock
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.markets import MarketFilters, PercentPrice
from fsmtrader.orders.intent import Intent
from fsmtrader.orders.router import OrderRouter, RouterConfig
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import Portfolio
from fsmtrader_testing.harness import mf

D = Decimal
BTC = "BTC/USDT"
T0 = 1_000_000
BASE = replace(
    mf(BTC, "0.01", "0.00001", "0.00001", "5"),
    percent_price=PercentPrice(D("1.05"), D("0.8"), D("1.2"), D("0.95")),
    max_qty=D("0.003"),
    market_max_qty=D("0.001"),
)


def make(m: MarketFilters = BASE) -> tuple[OrderRouter, SimExchange, SimClock]:
    clock = SimClock(T0)
    ex = SimExchange({BTC: m}, {"USDT": D("1000"), "BTC": D(0)}, clock=clock)
    ex.update_market(BTC, T0, 50_000.0, 50_100.0, 49_900.0, 100.0)
    router = OrderRouter(
        ex, Portfolio(quote="USDT", cash=D("1000")), {BTC: m}, clock, EventBus(), RouterConfig()
    )
    return router, ex, clock


def intent(clock: SimClock, decision: str, side: str, amount: str, limit: str | None) -> Intent:
    return Intent.create(
        decision_id=decision,
        symbol=BTC,
        side=side,  # type: ignore[arg-type]
        amount=D(amount),
        limit_price=None if limit is None else D(limit),
        ref_price=D("50000"),
        max_slippage_bps=D(10_000),  # the slippage guard stays out of the way
        time_in_force="IOC",
        leg=0,
        created_ms=clock.now_ms(),
    )


def test_a_sell_outside_the_percent_band_is_a_ghost_and_never_sent() -> None:
    router, ex, clock = make()
    # A sell's band is 0.95..1.2 x the reference: 47,499.99 is below it.
    rec = router.submit(intent(clock, "d-band", "sell", "0.001", "47499.99"))
    assert rec.state is OrderState.FAILED_FINAL
    assert router.ghost_reasons == {"price_out_of_band": 1}
    assert ex.orders_by_client_id() == {} and ex.counters.rejected == 0


def test_a_buy_over_max_qty_goes_out_capped_and_a_market_sell_over_the_market_lot() -> None:
    router, ex, clock = make()
    buy = router.submit(intent(clock, "d-big", "buy", "0.004", "50100"))
    assert buy.state is OrderState.RECONCILED and buy.amount == D("0.003")
    assert "capped_to_max" in buy.reason
    assert ex.orders_by_client_id()[buy.client_order_id].filled == D("0.003")
    sell = router.submit(intent(clock, "d-out", "sell", "0.003", None))  # market sell
    assert sell.amount == D("0.001") and "capped_to_max" in sell.reason  # MARKET_LOT_SIZE
    assert ex.orders_by_client_id()[sell.client_order_id].filled == D("0.001")
    assert ex.counters.rejected == 0  # the simulator agreed with every order sent
