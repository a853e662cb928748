"""The settings of a safe rollout: per-symbol modes live in ``[market]``; here are the loss
breakers that halt new entries by themselves, and the protective stop that guards a
position while the bot is down. Kept apart from the trading sections (`sections.py`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from fsmtrader.config.sections import _Section

__all__ = ["MODES", "BreakerSettings", "Mode", "ProtectSettings"]

# What a symbol does: nothing (off); decide and audit, never send or reserve (observe);
# simulated fills on the session's prices (paper); orders to the session's exchange (live:
# the real venue only under `trade --live --confirm-live`, the simulator otherwise).
Mode = Literal["off", "observe", "paper", "live"]
MODES: tuple[Mode, ...] = ("off", "observe", "paper", "live")


class BreakerSettings(_Section):
    """Loss breakers of a running session (paper and trade): crossing one halts new entries,
    with its reason, until `recover --clear-halt` or the API's resume lifts it (open
    positions are still managed). 0 turns a breaker off."""

    max_daily_loss: Annotated[Decimal, Field(ge=0)] = Decimal("50")
    max_drawdown_pct: Annotated[float, Field(ge=0, le=100)] = 10.0
    max_consecutive_losses: Annotated[int, Field(ge=0, le=1000)] = 0


class ProtectSettings(_Section):
    """A resting protective stop (Binance spot STOP_LOSS_LIMIT) below each position at its
    stop-loss, so a position is guarded while the bot is down. Off by default; refused on
    venues without spot stop orders (MEXC)."""

    enabled: bool = False
    # how far below the stop price the stop's limit sits, so it can still fill in a fall
    limit_offset_bps: Annotated[float, Field(ge=1, le=5000)] = 100.0
    # a trailing stop's resting order is replaced only when its stop rises this much
    min_move_bps: Annotated[float, Field(ge=1, le=5000)] = 25.0
