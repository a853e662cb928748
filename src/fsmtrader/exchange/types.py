"""What an exchange answers with, in Decimal, independent of who the exchange is.

The simulated exchange and the ccxt adapter both return these, so the router never sees
a venue-specific dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol

from fsmtrader.markets import MarketFilters, Side

TimeInForce = Literal["IOC", "GTC"]
OrderType = Literal["limit", "market"]
# ccxt's unified statuses: open (resting or in flight), closed (fully filled),
# canceled (includes an expired IOC, possibly with a partial fill), rejected.
OrderStatus = Literal["open", "closed", "canceled", "rejected"]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class TradeInfo:
    """One fill. ``fee`` is in ``fee_currency`` (quote in the simulator)."""

    id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str
    timestamp: int
    maker: bool = False

    @property
    def cost(self) -> Decimal:
        return self.price * self.amount


@dataclass(slots=True)
class OrderInfo:
    """An order as the exchange reports it."""

    id: str
    client_order_id: str
    symbol: str
    side: Side
    price: Decimal  # limit price; for a market order, the average fill price or 0
    amount: Decimal
    time_in_force: TimeInForce
    status: OrderStatus
    timestamp: int
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    fee_currency: str = ""
    trades: list[TradeInfo] = field(default_factory=list)
    order_type: OrderType = "limit"
    # A stop-limit order (Binance STOP_LOSS_LIMIT): it rests untriggered until the last
    # price reaches this, then works as a limit order at ``price``. None: a plain order.
    stop_price: Decimal | None = None

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def average(self) -> Decimal | None:
        return self.cost / self.filled if self.filled > 0 else None


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    timestamp: int
    bid: Decimal
    ask: Decimal
    last: Decimal
    volume: Decimal  # base volume of the last bar / 24h, as the venue reports

    @property
    def spread_bps(self) -> float:
        mid = (self.bid + self.ask) / 2
        return float((self.ask - self.bid) / mid * 10_000) if mid > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class Balance:
    free: Decimal
    used: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.used


class Exchange(Protocol):
    """The one plug through which orders reach a venue. Synchronous by design: the core
    never awaits; a live adapter bridges to its own event loop."""

    name: str

    def load_markets(self) -> dict[str, MarketFilters]: ...

    def fetch_ticker(self, symbol: str) -> Ticker: ...

    def fetch_balance(self) -> dict[str, Balance]: ...

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
        """Place an order. ``price`` is None only for a market order; the router sends
        market orders only for a sell when never_market_sells is off.

        ``stop_price`` (optional, None for every plain order) makes a limit GTC sell a
        stop-limit: it rests untriggered, its base locked, until the venue's last price
        falls to ``stop_price``, then works as a limit at ``price`` (Binance spot
        STOP_LOSS_LIMIT; the protective stop). A venue without spot stop orders (MEXC)
        refuses it with ``InvalidOrder``."""
        ...

    def cancel_order(self, order_id: str, symbol: str) -> OrderInfo:
        """Cancel; returns the order's final state. If it filled meanwhile (the race),
        returns it as closed rather than raising."""
        ...

    def fetch_order(self, order_id: str, symbol: str) -> OrderInfo: ...

    def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo: ...

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]: ...

    def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        """Our fills in ``symbol`` since ``since`` (ms), oldest first, every page."""
        ...

    def fetch_orders(self, symbol: str, since: int) -> list[OrderInfo]:
        """Every order of ``symbol`` created at or after ``since`` (ms), open or over,
        oldest first, every page: the history that proves an order absent."""
        ...

    def fetch_order_trades(self, order_id: str, symbol: str) -> list[TradeInfo]:
        """The fills of one order, by the venue's order id (Binance's trade history
        carries no clientOrderId, so this is how fills are mapped after a restart)."""
        ...
