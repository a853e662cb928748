"""A decision's view built from plain values, so the pure decisions can be tested (and
explored with Hypothesis) without an engine, a router or an exchange."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from fsmtrader.exchange.types import Ticker
from fsmtrader.markets import MarketFilters
from fsmtrader.portfolio import Position
from fsmtrader.state.order import OrderRecord

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class FixedView:
    """A view of plain values."""

    symbol: str
    filters: MarketFilters
    position: Position | None = None
    active: OrderRecord | None = None
    open_orders: int = 0
    exposure: Decimal = ZERO
    cash: Decimal = ZERO
    fee_rate: Decimal = Decimal("0.001")
    volume_quote: float = 0.0
    sma_ok: bool = True
    quote: Ticker | None = None
    other_slots: int = 0
    protective_stops: list[OrderRecord] = field(default_factory=list)

    @property
    def held(self) -> Decimal:
        pos = self.position
        return pos.qty if pos is not None else ZERO
