"""The run's equity curve, on the union of every pair's candle-close times, in numpy.

Point 0 is the start (the first candle's open) at the starting balance; point i > 0 is a
candle close. Equity there = starting balance + PnL realised by trades that exited at or
before it + each held position valued at its pair's last close (qty x close - what it cost,
buy fees included). A position still open at the end is valued the same way, so the last
point is cash plus the open positions at their last close.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from fsmtrader.feeds import Candles
from fsmtrader.portfolio import Position
from fsmtrader.research.report.trades import TradeRow

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Curve:
    """Equity over time. ``equity[0]`` is the starting balance at ``t[0]``."""

    t: I64  # epoch ms
    equity: F64  # quote
    in_market: BOOL  # at least one position held at that point
    first_close: dict[str, float]  # per pair: its first and last candle close (buy and hold)
    last_close: dict[str, float]


class OpenLot(NamedTuple):
    """A position still open when the run ended: valued at each close from its entry."""

    symbol: str
    entry_ms: int
    qty: float
    cost: float  # quote paid for what is held, less what its partial sells brought in


def open_lots(positions: Iterable[Position]) -> list[OpenLot]:
    return [
        OpenLot(
            p.symbol,
            p.entry_ms,
            float(p.qty),
            float(p.cost_basis - p.sell_gross + p.sell_fees),
        )
        for p in positions
        if p.qty > 0
    ]


def interval_of(ts: I64) -> int:
    """The candle spacing: the first gap when most gaps equal it (cheap), else the most
    common gap. One row: a minute."""
    if len(ts) < 2:
        return 60_000
    gaps = np.diff(ts)
    first = int(gaps[0])
    if np.count_nonzero(gaps == first) * 2 > len(gaps):
        return first
    values, counts = np.unique(gaps, return_counts=True)
    return int(values[int(np.argmax(counts))])


def equity_curve(
    series: Sequence[Candles],
    trades: Sequence[TradeRow],
    starting_balance: float,
    lots: Sequence[OpenLot] = (),
) -> Curve:
    """The curve of ``trades`` (and the ``lots`` still open) over ``series``."""
    cols = [(c.symbol, np.asarray(c.ts, np.int64), np.asarray(c.close, np.float64)) for c in series]
    cols = [(s, ts, close) for s, ts, close in cols if len(ts)]
    if not cols:
        return Curve(np.zeros(1, np.int64), np.full(1, starting_balance), np.zeros(1, bool), {}, {})
    closes = [ts + interval_of(ts) for _, ts, _ in cols]
    points = closes[0]
    if not all(np.array_equal(points, p) for p in closes[1:]):
        points = np.unique(np.concatenate(closes))
    start = min(int(ts[0]) for _, ts, _ in cols)
    t = np.concatenate((np.array([start], np.int64), points))
    equity = np.full(len(t), float(starting_balance))
    held = np.zeros(len(t), np.int64)
    for (sym, _, close), at in zip(cols, closes, strict=True):
        mine = [r for r in trades if r.symbol == sym]
        open_here = [lot for lot in lots if lot.symbol == sym]
        value, count = _pair_value(t, at, close, mine, open_here)
        equity += value
        held += count
    first = {s: float(close[0]) for s, _, close in cols}
    last = {s: float(close[-1]) for s, _, close in cols}
    return Curve(t, equity, held > 0, first, last)


def _pair_value(
    t: I64, at: I64, close: F64, trades: Sequence[TradeRow], lots: Sequence[OpenLot]
) -> tuple[F64, I64]:
    """One pair's part of the equity (realised PnL so far + open positions marked at the
    close) and how many of its positions are held, at each point of ``t``."""
    n = len(t)
    if len(at) == n - 1 and np.array_equal(at, t[1:]):
        price = np.concatenate((close[:1], close))
    else:  # the pair's last close at or before each point (its first before it starts)
        price = close[np.clip(np.searchsorted(at, t, side="right") - 1, 0, None)]
    qty, cost, count, pnl = (np.zeros(n + 1) for _ in range(4))
    entries = np.searchsorted(t, [r.entry_ms for r in trades] + [lot.entry_ms for lot in lots])
    exits = np.searchsorted(t, [r.exit_ms for r in trades] + [np.iinfo(np.int64).max] * len(lots))
    q = np.array([r.qty for r in trades] + [lot.qty for lot in lots], np.float64)
    c = np.array([r.cost for r in trades] + [lot.cost for lot in lots], np.float64)
    for arr, w in ((qty, q), (cost, c), (count, np.ones(len(q)))):
        np.add.at(arr, entries, w)
        np.add.at(arr, exits, -w)
    np.add.at(pnl, exits[: len(trades)], [r.pnl for r in trades])
    held = np.rint(np.cumsum(count)[:n]).astype(np.int64)
    marked = np.where(held > 0, np.cumsum(qty)[:n] * price - np.cumsum(cost)[:n], 0.0)
    return np.cumsum(pnl)[:n] + marked, held
