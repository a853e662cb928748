"""The books as reconcile reads them: order records, the portfolio, the symbols traded
and their filters. A view, built by whoever holds them (the engine)."""

from __future__ import annotations

from dataclasses import dataclass

from fsmtrader.markets import MarketFilters
from fsmtrader.portfolio import Portfolio
from fsmtrader.state.order import OrderRecord


@dataclass(frozen=True, slots=True)
class Books:
    records: dict[str, OrderRecord]  # intent_id -> record
    portfolio: Portfolio
    symbols: list[str]
    filters: dict[str, MarketFilters]
