"""What one decision may look at: the symbol's market, position, order in flight, the
portfolio's totals and the limits' use, read-only.

``SymbolView`` is the protocol decisions read. The shell's ``LiveView`` (one per symbol,
built once) reads the books when a decision asks, so a decision that needs no price costs no
request and building a view costs nothing on the hot path; the tests' view of plain
values is ``fsmtrader_testing.views.FixedView``. Reading the quote is the only read that
may ask the venue; the shell remembers it for the rest of the stimulus. A missing quote is
``None``, a value a decision handles, never an exception.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from fsmtrader.exchange.types import Ticker
from fsmtrader.markets import MarketFilters
from fsmtrader.portfolio import Position
from fsmtrader.state.order import OrderRecord


class SymbolView(Protocol):
    @property
    def symbol(self) -> str: ...
    @property
    def filters(self) -> MarketFilters: ...
    @property
    def position(self) -> Position | None: ...
    @property
    def active(self) -> OrderRecord | None:
        """The order the symbol waits for."""

    @property
    def open_orders(self) -> int:
        """Intents of this symbol not over yet."""

    @property
    def exposure(self) -> Decimal:
        """The portfolio's, at cost."""

    @property
    def cash(self) -> Decimal: ...

    @property
    def fee_rate(self) -> Decimal:
        """Fee fraction reserved on top of a buy's cost (the venue's, for this market)."""

    @property
    def volume_quote(self) -> float:
        """The last bar's volume times its close."""

    @property
    def sma_ok(self) -> bool:
        """The SMA filter's answer (True while it has too little history)."""

    @property
    def quote(self) -> Ticker | None:
        """The current quote (may ask the venue once per stimulus); None if unavailable."""

    @property
    def other_slots(self) -> int:
        """Slots in use by the other symbols."""

    @property
    def held(self) -> Decimal: ...

    @property
    def protective_stops(self) -> list[OrderRecord]:
        """The symbol's protective stop orders not over yet (engine/protect.py): at most
        one, but a replaced one whose cancel has not settled is listed too."""
