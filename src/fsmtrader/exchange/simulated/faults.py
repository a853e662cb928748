"""Fault injection around any exchange: the network and venue failures tests need.

:class:`FaultInjector` wraps an implementation of the ``Exchange`` protocol (the
simulator, the ccxt adapter, a test double) and passes every call through, except the
ones a test told to fail: those raise before the call (nothing happened) or after it took
full effect (a lost response). The wrapped exchange knows nothing of it, so production
classes carry no test hooks, and faults are never persisted with an exchange's state:
they model the caller's network, not the venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Generic, TypeVar

from fsmtrader.exchange.types import (
    Balance,
    Exchange,
    OrderInfo,
    OrderType,
    Ticker,
    TimeInForce,
    TradeInfo,
)
from fsmtrader.markets import MarketFilters, Side

FAULTABLE_METHODS: Final = frozenset(
    {
        "load_markets",
        "fetch_ticker",
        "fetch_balance",
        "create_order",
        "cancel_order",
        "fetch_order",
        "fetch_order_by_client_id",
        "fetch_open_orders",
        "fetch_my_trades",
        "fetch_orders",
        "fetch_order_trades",
    }
)

# Only the protocol is wrapped: a call outside it (the simulator's book top, the ccxt
# adapter's candles) is made on ``inner`` and is never faulted.
E = TypeVar("E", bound=Exchange)
_T = TypeVar("_T")


@dataclass(slots=True)
class _Fault:
    error: Exception
    after: bool
    times: int


class FaultInjector(Generic[E]):
    """An ``Exchange`` that is ``inner`` plus the faults queued by :meth:`inject_fault`.

    Give the code under test the injector and keep ``inner`` for the test's own
    look-ups, which then never consume a fault."""

    def __init__(self, inner: E) -> None:
        self.inner = inner
        self.name = inner.name
        self._faults: dict[str, list[_Fault]] = {}

    def inject_fault(
        self, method: str, error: Exception, *, after: bool = False, times: int = 1
    ) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error``. With ``after`` the
        call takes full effect first (a lost response: the order exists, the caller
        does not know). Faults queue in the order they were injected."""
        if method not in FAULTABLE_METHODS:
            raise ValueError(f"cannot inject a fault into {method!r}")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.setdefault(method, []).append(_Fault(error, after, times))

    def clear(self) -> None:
        """Drop every fault not consumed yet."""
        self._faults.clear()

    def pending(self) -> int:
        """How many calls are still set to fail."""
        return sum(f.times for queue in self._faults.values() for f in queue)

    def _gate(self, method: str) -> Exception | None:
        """Consume one injected fault for ``method``: raise it now, or return it for
        :meth:`_finish` to raise once the call has taken effect."""
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        if fault.after:
            return fault.error
        raise fault.error.with_traceback(None)

    @staticmethod
    def _finish(after: Exception | None, result: _T) -> _T:
        if after is not None:
            raise after.with_traceback(None)
        return result

    # ------------------------------------------------------------------ the protocol

    def load_markets(self) -> dict[str, MarketFilters]:
        after = self._gate("load_markets")
        return self._finish(after, self.inner.load_markets())

    def fetch_ticker(self, symbol: str) -> Ticker:
        after = self._gate("fetch_ticker")
        return self._finish(after, self.inner.fetch_ticker(symbol))

    def fetch_balance(self) -> dict[str, Balance]:
        after = self._gate("fetch_balance")
        return self._finish(after, self.inner.fetch_balance())

    def create_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        client_order_id: str,
        stop_price: Decimal | None = None,
    ) -> OrderInfo:
        after = self._gate("create_order")
        args = (symbol, side, order_type, amount, price, time_in_force, client_order_id)
        if stop_price is None:  # an inner exchange without stop orders is called as before
            placed = self.inner.create_order(*args)
        else:
            placed = self.inner.create_order(*args, stop_price)
        return self._finish(after, placed)

    def cancel_order(self, order_id: str, symbol: str) -> OrderInfo:
        after = self._gate("cancel_order")
        return self._finish(after, self.inner.cancel_order(order_id, symbol))

    def fetch_order(self, order_id: str, symbol: str) -> OrderInfo:
        after = self._gate("fetch_order")
        return self._finish(after, self.inner.fetch_order(order_id, symbol))

    def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo:
        after = self._gate("fetch_order_by_client_id")
        return self._finish(after, self.inner.fetch_order_by_client_id(client_order_id, symbol))

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        after = self._gate("fetch_open_orders")
        return self._finish(after, self.inner.fetch_open_orders(symbol))

    def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        after = self._gate("fetch_my_trades")
        return self._finish(after, self.inner.fetch_my_trades(symbol, since))

    def fetch_orders(self, symbol: str, since: int) -> list[OrderInfo]:
        after = self._gate("fetch_orders")
        return self._finish(after, self.inner.fetch_orders(symbol, since))

    def fetch_order_trades(self, order_id: str, symbol: str) -> list[TradeInfo]:
        after = self._gate("fetch_order_trades")
        return self._finish(after, self.inner.fetch_order_trades(order_id, symbol))
