"""One intent's order as the books know it: where it is in the order table, what it
filled and what it still holds reserved."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from fsmtrader.orders.intent import Intent
from fsmtrader.orders.states import LIVE, TERMINAL, OrderState

ZERO = Decimal(0)


@dataclass(slots=True)
class OrderRecord:
    intent: Intent
    client_order_id: str
    state: OrderState = OrderState.NEW
    order_id: str = ""
    price: Decimal | None = None
    amount: Decimal = ZERO
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    fee_quote: Decimal = ZERO
    reserved: Decimal = ZERO
    attempts: int = 0
    due_ms: int | None = None  # next retry / resolve attempt
    unknown_since: int | None = None  # when its last send ended unknown: its window starts
    reason: str = ""
    seen_trades: set[str] = field(default_factory=set)
    cancel_requested: bool = False  # survives an UNKNOWN phase: never send it later

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def avg_price(self) -> Decimal | None:
        return self.cost / self.filled if self.filled > 0 else None

    @property
    def live(self) -> bool:
        return self.state in LIVE
