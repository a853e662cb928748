"""What the shell's helpers (the executor, the live view, the persistence side) see of the
Engine. The shell owns them and hands itself over as this protocol, so none of them
imports the shell back: the import graph stays acyclic, and each helper's reach into the
engine is written down here."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any, Protocol

from fsmtrader.audit import EventBus
from fsmtrader.clock import Clock
from fsmtrader.engine.policy import EnginePolicy
from fsmtrader.engine.view import SymbolView
from fsmtrader.exchange.types import Ticker
from fsmtrader.fsm.machine import SymbolMachine, Transition
from fsmtrader.markets import MarketFilters
from fsmtrader.orders.router import OrderRouter
from fsmtrader.portfolio import Portfolio
from fsmtrader.state.records import Record
from fsmtrader.state.symbol import SymbolState


class EngineParts(Protocol):
    """The engine's books, plugs and the few operations its helpers call."""

    policy: EnginePolicy
    clock: Clock
    filters: dict[str, MarketFilters]
    bus: EventBus
    router: OrderRouter
    machine: SymbolMachine
    states: dict[str, SymbolState]
    counts: Counter[str]
    halted: str
    entries_stopped: str
    dirty: set[str]
    pending_audit: list[Record]
    meta_saved: tuple[str, str, int] | None

    @property
    def portfolio(self) -> Portfolio: ...

    def view(self, symbol: str) -> SymbolView: ...

    def quote(self, symbol: str) -> Ticker | None: ...

    def held(self, symbol: str) -> Decimal: ...

    def slots_used(self, exclude: str = "") -> int: ...

    def schedule(self, st: SymbolState, t: Transition | None = None) -> None: ...

    def halt(self, reason: str) -> None: ...

    def persistent_counters(self) -> dict[str, Any]: ...
