"""An exchange that answers look-ups and sends nothing: what ``reconcile`` and ``recover``
trade through unless told ``--send``.

Recovery on a stopped bot's state may want to cancel an order whose cancel was asked for,
or re-send an intent that was never sent; on a live account those are real orders, and a
command meant to *look* must not place them behind the operator's back. A create or a
cancel is refused before it leaves the process, as a transport failure that certainly did
not send: the router keeps the intent as it was (to be retried by the next start), and the
count says how many were held back.
"""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.errors import NetworkError
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


class NotSending(NetworkError):
    """A create or cancel held back by a look-ups-only command (certainly not sent)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: not sent (look-ups only; pass --send to allow it)", False)


class LookupsOnly:
    """``inner`` for every read; creates and cancels are counted and refused."""

    def __init__(self, inner: Exchange) -> None:
        self.inner = inner
        self.name = inner.name
        self.held_back: list[str] = []

    def load_markets(self) -> dict[str, MarketFilters]:
        return self.inner.load_markets()

    def fetch_ticker(self, symbol: str) -> Ticker:
        return self.inner.fetch_ticker(symbol)

    def fetch_balance(self) -> dict[str, Balance]:
        return self.inner.fetch_balance()

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
        what = f"create {side} {symbol} {client_order_id}"
        self.held_back.append(what)
        raise NotSending(what)

    def cancel_order(self, order_id: str, symbol: str) -> OrderInfo:
        what = f"cancel {symbol} order {order_id}"
        self.held_back.append(what)
        raise NotSending(what)

    def fetch_order(self, order_id: str, symbol: str) -> OrderInfo:
        return self.inner.fetch_order(order_id, symbol)

    def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo:
        return self.inner.fetch_order_by_client_id(client_order_id, symbol)

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        return self.inner.fetch_open_orders(symbol)

    def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        return self.inner.fetch_my_trades(symbol, since)

    def fetch_orders(self, symbol: str, since: int) -> list[OrderInfo]:
        return self.inner.fetch_orders(symbol, since)

    def fetch_order_trades(self, order_id: str, symbol: str) -> list[TradeInfo]:
        return self.inner.fetch_order_trades(order_id, symbol)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
