"""FaultInjector wraps any Exchange: the simulator, the ccxt adapter on the local server,
or a minimal venue written here. Faults raise before the call (nothing happened) or after
it took full effect (a lost response), in the order they were injected."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from fsmtrader.errors import ExchangeUnavailable, NetworkError, OrderNotFound, RateLimited
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.exchange.simulated import FAULTABLE_METHODS, FaultInjector
from fsmtrader.exchange.types import Balance, OrderInfo, OrderType, Ticker, TimeInForce, TradeInfo
from fsmtrader.markets import MarketFilters, Side

from simserver_support import KEY, SECRET, running_server

D = Decimal
SYM = "BTC/USDT"
BTC = MarketFilters(SYM, D("0.01"), D("0.00001"), D("0.00001"), D("5"), "BTC", "USDT")


class TinyVenue:
    """A minimal real Exchange: every order is accepted and rests until cancelled."""

    name = "tiny"

    def __init__(self) -> None:
        self.orders: dict[str, OrderInfo] = {}

    def load_markets(self) -> dict[str, MarketFilters]:
        return {SYM: BTC}

    def fetch_ticker(self, symbol: str) -> Ticker:
        return Ticker(symbol, 0, D("99"), D("101"), D("100"), D("1"))

    def fetch_balance(self) -> dict[str, Balance]:
        return {"USDT": Balance(free=D("1000"), used=D("0"))}

    def create_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        client_order_id: str,
    ) -> OrderInfo:
        order = OrderInfo(
            id=str(len(self.orders) + 1),
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            price=price or D(0),
            amount=amount,
            time_in_force=time_in_force,
            status="open",
            timestamp=0,
            order_type=order_type,
        )
        self.orders[order.id] = order
        return order

    def cancel_order(self, order_id: str, symbol: str) -> OrderInfo:
        order = self.fetch_order(order_id, symbol)
        order.status = "canceled"
        return order

    def fetch_order(self, order_id: str, symbol: str) -> OrderInfo:
        if order_id not in self.orders:
            raise OrderNotFound(order_id)
        return self.orders[order_id]

    def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo:
        for order in self.orders.values():
            if order.client_order_id == client_order_id:
                return order
        raise OrderNotFound(client_order_id)

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        return [o for o in self.orders.values() if o.status == "open"]

    def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        return []

    def fetch_orders(self, symbol: str, since: int) -> list[OrderInfo]:
        return [o for o in self.orders.values() if o.timestamp >= since]

    def fetch_order_trades(self, order_id: str, symbol: str) -> list[TradeInfo]:
        self.fetch_order(order_id, symbol)
        return []


def place(ex: Any, cid: str) -> OrderInfo:
    order: OrderInfo = ex.create_order(SYM, "buy", "limit", D("0.001"), D("100"), "GTC", cid)
    return order


def test_before_means_nothing_happened_after_means_a_lost_response() -> None:
    venue = TinyVenue()
    fx = FaultInjector(venue)
    assert fx.name == "tiny"
    fx.inject_fault("create_order", NetworkError("refused", maybe_sent=False))
    fx.inject_fault("create_order", NetworkError("timeout", maybe_sent=True), after=True)
    with pytest.raises(NetworkError, match="refused"):
        place(fx, "a")
    assert venue.orders == {}  # raised before the call
    with pytest.raises(NetworkError, match="timeout"):
        place(fx, "b")
    assert [o.client_order_id for o in venue.orders.values()] == ["b"]  # took effect
    assert fx.fetch_order_by_client_id("b", SYM).status == "open"  # the faults are used up
    assert fx.pending() == 0


def test_times_queue_and_clear() -> None:
    venue = TinyVenue()
    fx = FaultInjector(venue)
    fx.inject_fault("fetch_ticker", RateLimited("429"), times=2)
    fx.inject_fault("fetch_ticker", ExchangeUnavailable("maintenance"))
    assert fx.pending() == 3
    for error in (RateLimited, RateLimited, ExchangeUnavailable):
        with pytest.raises(error):
            fx.fetch_ticker(SYM)
    assert fx.fetch_ticker(SYM).last == D("100")
    fx.inject_fault("fetch_balance", NetworkError("down"), times=5)
    assert venue.fetch_balance()  # the inner exchange never sees a fault
    fx.clear()
    assert fx.pending() == 0 and fx.fetch_balance()["USDT"].free == D("1000")
    with pytest.raises(ValueError):
        fx.inject_fault("update_market", NetworkError("x"))
    with pytest.raises(ValueError):  # outside the Exchange protocol: not wrapped
        fx.inject_fault("order_book_top", NetworkError("x"))
    with pytest.raises(ValueError):
        fx.inject_fault("fetch_balance", NetworkError("x"), times=0)


CALLS: dict[str, Callable[[Any], object]] = {
    "load_markets": lambda ex: ex.load_markets(),
    "fetch_ticker": lambda ex: ex.fetch_ticker(SYM),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "create_order": lambda ex: place(ex, "c"),
    "cancel_order": lambda ex: ex.cancel_order("1", SYM),
    "fetch_order": lambda ex: ex.fetch_order("1", SYM),
    "fetch_order_by_client_id": lambda ex: ex.fetch_order_by_client_id("first", SYM),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders(SYM),
    "fetch_my_trades": lambda ex: ex.fetch_my_trades(SYM, 0),
    "fetch_orders": lambda ex: ex.fetch_orders(SYM, 0),
    "fetch_order_trades": lambda ex: ex.fetch_order_trades("1", SYM),
}


@pytest.mark.parametrize("method", sorted(FAULTABLE_METHODS))
def test_every_faultable_method_passes_through_and_can_fail(method: str) -> None:
    assert set(CALLS) == FAULTABLE_METHODS
    venue, twin = TinyVenue(), TinyVenue()
    place(venue, "first")
    place(twin, "first")
    fx = FaultInjector(venue)
    fx.inject_fault(method, NetworkError(f"{method} lost"))
    with pytest.raises(NetworkError, match=method):
        CALLS[method](fx)
    assert CALLS[method](fx) == CALLS[method](twin)  # the failed call did nothing
    assert venue.orders == twin.orders


def test_ccxt_adapter_on_the_local_server_loses_a_response() -> None:
    """The same faults around the real ccxt adapter: the order reaches the venue, the
    answer is lost, and the look-up by client id finds it."""
    with running_server("binance") as sim:
        sim.price(SYM, Decimal("90000"), hold=True)
        options = CcxtOptions(
            "binance", api_key=KEY, api_secret=SECRET, base_url=sim.base_url, timeout_ms=3000
        )
        ex = CcxtExchange(options)
        try:
            fx = FaultInjector(ex)
            assert fx.name == ex.name
            fx.inject_fault("fetch_balance", ExchangeUnavailable("maintenance"))
            with pytest.raises(ExchangeUnavailable):
                fx.fetch_balance()
            fx.inject_fault("create_order", NetworkError("reset", maybe_sent=True), after=True)
            with pytest.raises(NetworkError):
                fx.create_order(SYM, "buy", "limit", D("0.0003"), D("89000"), "GTC", "lost-1")
            venue = sim.order("lost-1")
            assert venue is not None and venue["status"] == "open"
            found = fx.fetch_order_by_client_id("lost-1", SYM)
            assert found.status == "open" and found.amount == D("0.0003")
            assert fx.cancel_order(found.id, SYM).status == "canceled"
        finally:
            ex.close()
