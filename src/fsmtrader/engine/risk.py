"""Money limits as pure answers: what one buy may spend, how many slots are in use, and
what fee a buy's reservation must cover."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from fsmtrader.engine.policy import RiskLimits
from fsmtrader.engine.view import SymbolView
from fsmtrader.fsm.phases import Phase
from fsmtrader.fsm.table import HOLDING
from fsmtrader.markets import MarketFilters

ZERO = Decimal(0)


def budget(view: SymbolView, risk: RiskLimits) -> Decimal:
    """What one buy may spend at most (position_size is the target; a bump up to the
    exchange minimum may use free cash within the exposure limit)."""
    room = risk.max_total_exposure - view.exposure
    return max(min(view.cash, room), ZERO)


def uses_slot(phase: Phase, held: Decimal, open_orders: int) -> bool:
    """A slot is a position or an order in flight, in whatever phase (ERROR and IDLE
    included), or a phase that acquires or sells one."""
    return phase in HOLDING or held > 0 or open_orders > 0


def slots_used(symbols: Iterable[tuple[Phase, Decimal, int]]) -> int:
    """Slots used by symbols given as (phase, held, open orders)."""
    return sum(1 for phase, held, n in symbols if uses_slot(phase, held, n))


def reserve_fee_rate(filters: MarketFilters, default: Decimal) -> Decimal:
    """The fee a buy's reservation covers: the dearer of the venue's maker and taker fee
    for this market when its market data states them (a resting buy may fill as maker),
    else the configured ``default`` (risk.reserve_fee_bps)."""
    stated = [f for f in (filters.maker_fee, filters.taker_fee) if f is not None]
    return max(stated) if stated else default


def taker_fee_rate(filters: MarketFilters, default: Decimal) -> float:
    """Each leg's fee for a take-profit net of fees (``exit.take_profit_net_of_fees``):
    the venue's taker fee for this market when its market data states it (the engine's
    IOC buys and sells take liquidity), else ``default`` (risk.reserve_fee_bps)."""
    return float(filters.taker_fee if filters.taker_fee is not None else default)
