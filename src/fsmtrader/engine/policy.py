"""The engine's policies: frozen plain values, built from the settings by the wiring.

The core never sees the pydantic settings: what it needs is here, already converted
(milliseconds as ints, basis points as Decimals), so a decision does no parsing and a test
can build a policy in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from fsmtrader.fsm.machine import error_backoff_ms
from fsmtrader.fsm.table import Delay
from fsmtrader.orders.router import RouterConfig
from fsmtrader.strategy import ExitRule


@dataclass(frozen=True, slots=True)
class EntryPolicy:
    """When a dip is bought, and how hard the buy may chase the price."""

    anchor_window_min: int = 60
    drop_trigger_pct: float = 3.0
    max_spread_bps: float = 30.0
    min_volume: float = 0.0  # in quote, of the last bar
    sma_filter: bool = False
    sma_window_min: int = 240
    escalation_bps: tuple[Decimal, ...] = (Decimal(0), Decimal(10), Decimal(25))
    max_slippage_bps: Decimal = Decimal(50)
    time_in_force: Literal["IOC", "GTC"] = "IOC"


@dataclass(frozen=True, slots=True)
class ExitPolicy:
    """When a position is sold, and how the sell ladder walks down the book."""

    rule: ExitRule = field(default_factory=lambda: ExitRule(2.0, 3.0, 1.0, 0.5))
    ladder_bps: tuple[Decimal, ...] = tuple(Decimal(x) for x in (0, 10, 25, 50, 100, 200))
    max_slippage_bps: Decimal = Decimal(500)
    never_market_sells: bool = True
    flash_crash_guard_pct: Decimal = Decimal(10)


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    """The durations the timeout rules of ``fsm.table.TIMEOUTS`` name, in milliseconds."""

    warmup_ms: int = 600_000
    buy_fill_ms: int = 30_000
    partial_fill_ms: int = 10_000
    sell_fill_ms: int = 30_000
    ioc_ttl_ms: int = 500
    max_hold_ms: int = 7_200_000
    cooldown_ms: int = 900_000
    block_ms: int = 60_000  # a blocked entry or exit waits this long before it tries again
    stuck_ms: int = 600_000  # stuck-state alert (monitor), beyond any timeout
    error_backoff_base_s: float = 10.0
    error_backoff_max_s: float = 300.0

    def ms(self, delay: Delay, error_count: int = 0) -> int:
        if delay is Delay.ERROR_BACKOFF:
            return error_backoff_ms(
                error_count, self.error_backoff_base_s, self.error_backoff_max_s
            )
        return _DELAYS[delay](self)


_DELAYS: dict[Delay, Callable[[TimeoutPolicy], int]] = {
    Delay.WARMUP: lambda p: p.warmup_ms,
    Delay.BUY_FILL: lambda p: p.buy_fill_ms,
    Delay.PARTIAL_FILL: lambda p: p.partial_fill_ms,
    Delay.SELL_FILL: lambda p: p.sell_fill_ms,
    Delay.IOC_TTL: lambda p: p.ioc_ttl_ms,
    Delay.MAX_HOLD: lambda p: p.max_hold_ms,
    Delay.COOLDOWN: lambda p: p.cooldown_ms,
    Delay.BLOCK: lambda p: p.block_ms,
}


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """How much money one trade and all open trades together may use (in quote)."""

    position_size: Decimal = Decimal(25)
    max_open_positions: int = 3
    max_total_exposure: Decimal = Decimal(75)
    # fee fraction assumed for a buy's reservation when the venue's market does not say it
    reserve_fee: Decimal = Decimal("0.001")


@dataclass(frozen=True, slots=True)
class ErrorPolicy:
    """When repeated faults stop new entries, and whether an order race does."""

    max_consecutive_errors: int = 3  # the settings default (live trading requires <= 3)
    halt_on_order_race: bool = True


@dataclass(frozen=True, slots=True)
class ProtectPolicy:
    """The resting protective stop (engine/protect.py): its limit this far below the
    stop, and a trailing stop's order replaced only when the stop rises this much."""

    limit_offset_bps: Decimal = Decimal(100)
    min_move_bps: Decimal = Decimal(25)


@dataclass(frozen=True, slots=True)
class EnginePolicy:
    """Everything the engine is told, besides its plugs."""

    symbols: tuple[str, ...]
    quote: str = "USDT"
    starting_cash: Decimal = Decimal(1000)
    idempotency_expiry_ms: int = 300_000
    entry: EntryPolicy = field(default_factory=EntryPolicy)
    exit: ExitPolicy = field(default_factory=ExitPolicy)
    timeouts: TimeoutPolicy = field(default_factory=TimeoutPolicy)
    risk: RiskLimits = field(default_factory=RiskLimits)
    errors: ErrorPolicy = field(default_factory=ErrorPolicy)
    router: RouterConfig = field(default_factory=RouterConfig)
    protect: ProtectPolicy | None = None  # None: no protective stop (the default)
    # each symbol's effective mode (``engine.modes``); none given: every symbol "paper"
    # (the simulator: what a session without a venue does with the default "live")
    modes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.modes:
            object.__setattr__(self, "modes", dict.fromkeys(self.symbols, "paper"))

    def mode(self, symbol: str) -> str:
        return self.modes.get(symbol, "paper")
