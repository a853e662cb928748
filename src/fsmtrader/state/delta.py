"""What crosses the persistence boundary: ``StateDelta`` is one commit (what changed
since the last one), ``Snapshot`` is everything loaded back on start. Values only: the
store never sees the engine or the router."""

from __future__ import annotations

from dataclasses import dataclass, field

from fsmtrader.portfolio import ClosedTrade, Ghost, Portfolio
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import FillRecord, Record
from fsmtrader.state.symbol import SymbolState


@dataclass(slots=True)
class StateDelta:
    """One commit, written in one transaction. ``portfolio`` is None when it did not
    change; ``trades`` and ``ghosts`` are the ones added since the last commit (the store
    appends them and tracks nothing); ``meta`` holds only the keys to rewrite."""

    symbols: list[SymbolState] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    portfolio: Portfolio | None = None
    fills: list[FillRecord] = field(default_factory=list)
    audit: list[Record] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    trades: list[ClosedTrade] = field(default_factory=list)
    ghosts: list[Ghost] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.symbols
            or self.orders
            or self.portfolio is not None
            or self.fills
            or self.audit
            or self.trades
            or self.ghosts
        )


@dataclass
class Snapshot:
    """The saved state. An exit tracker comes back with its peak and trailing flag only;
    its levels are rebuilt from the position and the exit rule."""

    symbols: dict[str, SymbolState] = field(default_factory=dict)
    orders: list[OrderRecord] = field(default_factory=list)
    portfolio: Portfolio | None = None
    meta: dict[str, str] = field(default_factory=dict)
