"""The simulated exchange's own order records and run counters.

The records are never handed out: callers get detached :class:`OrderInfo` copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from fsmtrader.errors import OrderNotFound
from fsmtrader.exchange.simulated.params import ZERO
from fsmtrader.exchange.types import OrderInfo, OrderStatus, OrderType, TimeInForce, TradeInfo
from fsmtrader.markets import Side


@dataclass(slots=True)
class SimOrder:
    """The exchange's own record of an order."""

    seq: int
    id: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    price: Decimal  # limit price; 0 for a market order
    amount: Decimal
    time_in_force: TimeInForce
    timestamp: int
    lock_asset: str
    lock_remaining: Decimal
    status: OrderStatus = "open"
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    fee_currency: str = ""
    trades: list[TradeInfo] = field(default_factory=list)
    # A stop-limit (Binance STOP_LOSS_LIMIT sell): rests untriggered until a bar's low
    # reaches ``stop_price``, then works as a limit at ``price`` (see ``Matcher``).
    stop_price: Decimal | None = None
    triggered: bool = False

    def to_info(self) -> OrderInfo:
        """A detached copy in the protocol's shape."""
        price = self.price
        if self.order_type == "market" and self.filled > 0:
            # Fixed precision, so every copy of the order compares equal whatever the
            # caller's decimal context is.
            with localcontext(prec=28):
                price = self.cost / self.filled
        return OrderInfo(
            id=self.id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            price=price,
            amount=self.amount,
            time_in_force=self.time_in_force,
            status=self.status,
            timestamp=self.timestamp,
            filled=self.filled,
            cost=self.cost,
            fee=self.fee,
            fee_currency=self.fee_currency,
            trades=list(self.trades),
            order_type=self.order_type,
            stop_price=self.stop_price,
        )


@dataclass(slots=True)
class SimCounters:
    """Run totals for summaries. ``rejections`` is keyed by reason: an InvalidOrder
    reason (tick, step, min_qty, min_notional, ...), "insufficient_funds", "duplicate"
    or "no_price"."""

    created: int = 0
    rejected: int = 0
    canceled: int = 0
    trades: int = 0
    rejections: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "rejected": self.rejected,
            "canceled": self.canceled,
            "trades": self.trades,
            "rejections": dict(self.rejections),
        }

    def load(self, raw: dict[str, Any]) -> None:
        """Take the totals of :meth:`as_dict` data (in place: others hold this object)."""
        self.created = int(raw["created"])
        self.rejected = int(raw["rejected"])
        self.canceled = int(raw["canceled"])
        self.trades = int(raw["trades"])
        self.rejections = {str(k): int(v) for k, v in raw["rejections"].items()}

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.rejections[reason] = self.rejections.get(reason, 0) + 1


class OrderLedger:
    """Every order the exchange ever took, by id and by client id, with the id counter,
    the run counters and the cancels that will race a fill (a test hook).

    ``by_client_id`` lists every order that carried a client id, oldest first: under
    Binance's rule an id is reused once its earlier order is over, and a look-up by
    client id answers the most recent order with that id on the symbol."""

    def __init__(self) -> None:
        self.by_id: dict[str, SimOrder] = {}
        self.by_client_id: dict[str, list[SimOrder]] = {}
        self.next_order = 1
        self.counters = SimCounters()
        self.race_on_cancel: set[str] = set()

    def new_seq(self) -> int:
        seq = self.next_order
        self.next_order += 1
        return seq

    def add(self, order: SimOrder) -> None:
        self.by_id[order.id] = order
        self.by_client_id.setdefault(order.client_order_id, []).append(order)

    def lookup(self, order_id: str, symbol: str) -> SimOrder:
        order = self.by_id.get(order_id)
        if order is None or order.symbol != symbol:
            raise OrderNotFound(f"no order {order_id} on {symbol}")
        return order

    def client_id_taken(self, client_order_id: str, open_only: bool) -> bool:
        """Whether a new order may not carry this client id: an earlier order with it is
        still open (on any symbol), or, with ``open_only`` False, ever existed."""
        orders = self.by_client_id.get(client_order_id)
        if not orders:
            return False
        return not open_only or any(o.status == "open" for o in orders)
