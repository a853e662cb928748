"""The shell's view of one symbol: reads the engine's books when a decision asks."""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.engine.parts import EngineParts
from fsmtrader.exchange.types import Ticker
from fsmtrader.markets import MarketFilters
from fsmtrader.portfolio import Position
from fsmtrader.state.order import OrderRecord

ZERO = Decimal(0)


class LiveView:
    """Read-only: every property reads, none writes (a ``SymbolView``)."""

    __slots__ = ("_engine", "filters", "symbol")

    def __init__(self, engine: EngineParts, symbol: str) -> None:
        self._engine = engine
        self.symbol = symbol
        self.filters: MarketFilters = engine.filters[symbol]

    @property
    def position(self) -> Position | None:
        return self._engine.portfolio.positions.get(self.symbol)

    @property
    def active(self) -> OrderRecord | None:
        iid = self._engine.states[self.symbol].active_intent
        return self._engine.router.records.get(iid) if iid is not None else None

    @property
    def open_orders(self) -> int:
        return len(self._engine.router.open_intents(self.symbol))

    @property
    def exposure(self) -> Decimal:
        return self._engine.portfolio.exposure()

    @property
    def cash(self) -> Decimal:
        return self._engine.portfolio.cash

    @property
    def fee_rate(self) -> Decimal:
        return self._engine.router.cfg.fee_rate_for(self.symbol)

    @property
    def volume_quote(self) -> float:
        sig = self._engine.states[self.symbol].signal
        return sig.last_volume * sig.last_close

    @property
    def sma_ok(self) -> bool:
        return self._engine.states[self.symbol].signal.sma_ok()

    @property
    def quote(self) -> Ticker | None:
        return self._engine.quote(self.symbol)

    @property
    def other_slots(self) -> int:
        return self._engine.slots_used(exclude=self.symbol)

    @property
    def held(self) -> Decimal:
        pos = self._engine.portfolio.positions.get(self.symbol)
        return pos.qty if pos is not None else ZERO

    @property
    def protective_stops(self) -> list[OrderRecord]:
        recs = self._engine.router.open_intents(self.symbol, "sell")
        return [r for r in recs if r.intent.stop_price is not None]
