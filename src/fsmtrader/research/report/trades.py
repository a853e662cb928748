"""The trades a report reads, as plain floats: from the engine's ClosedTrades or from the
records of trades.jsonl, so a report can be rebuilt from the run folder alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from fsmtrader.portfolio import ClosedTrade


class TradeRow(NamedTuple):
    """One closed trade. Floats: the report is analysis, the exact Decimals stay in
    trades.jsonl and summary.json."""

    symbol: str
    entry_ms: int
    exit_ms: int
    qty: float  # bought, net of base-asset fees
    avg_entry: float
    avg_exit: float
    buy_fees: float  # in quote
    sell_fees: float  # every exit leg, in quote
    pnl: float  # realised, net of every fee
    reason: str

    @property
    def cost(self) -> float:
        """Quote put in: fills plus buy fees (the base of the trade's return)."""
        return self.qty * self.avg_entry + self.buy_fees

    @property
    def fees(self) -> float:
        return self.buy_fees + self.sell_fees

    @property
    def hold_ms(self) -> int:
        return self.exit_ms - self.entry_ms


def row_of(trade: ClosedTrade | Mapping[str, Any]) -> TradeRow:
    """A ClosedTrade, or a trades.jsonl record (``ClosedTrade.to_record``), as a row."""
    if isinstance(trade, ClosedTrade):
        return TradeRow(
            trade.symbol,
            trade.entry_ms,
            trade.exit_ms,
            float(trade.bought_qty),
            float(trade.avg_entry),
            float(trade.avg_exit),
            float(trade.buy_fees),
            float(trade.sell_fees),
            float(trade.realized_pnl),
            trade.exit_reason,
        )
    return TradeRow(
        str(trade["symbol"]),
        int(trade["entry_ms"]),
        int(trade["exit_ms"]),
        float(trade["bought_qty"]),
        float(trade["avg_entry"]),
        float(trade["avg_exit"]),
        float(trade["buy_fees"]),
        float(trade["sell_fees"]),
        float(trade["realized_pnl"]),
        str(trade["exit_reason"]),
    )


def rows_of(trades: Iterable[ClosedTrade | Mapping[str, Any]]) -> list[TradeRow]:
    return [row_of(t) for t in trades]
