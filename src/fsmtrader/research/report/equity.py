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


class Column(NamedTuple):
    """One pair's candle open times and closes as numpy arrays (no copy when the candles
    already hold numpy columns)."""

    symbol: str
    ts: I64
    close: F64


def columns(series: Sequence[Candles]) -> list[Column]:
    cols = [
        Column(c.symbol, np.asarray(c.ts, np.int64), np.asarray(c.close, np.float64))
        for c in series
    ]
    return [c for c in cols if len(c.ts)]


def equity_curve(
    series: Sequence[Candles],
    trades: Sequence[TradeRow],
    starting_balance: float,
    lots: Sequence[OpenLot] = (),
) -> Curve:
    """The curve of ``trades`` (and the ``lots`` still open) over ``series``."""
    return curve_of(columns(series), trades, starting_balance, lots)


def curve_of(
    cols: Sequence[Column],
    trades: Sequence[TradeRow],
    starting_balance: float,
    lots: Sequence[OpenLot] = (),
) -> Curve:
    """``equity_curve`` on columns. Positions are marked per pair into one array; costs,
    realised PnL and the count of positions held are summed over all pairs as changes at
    the points they happen, then accumulated in place: a handful of timeline-long arrays
    whatever the number of pairs and trades."""
    if not cols:
        return Curve(np.zeros(1, np.int64), np.full(1, starting_balance), np.zeros(1, bool), {}, {})
    gaps = [interval_of(c.ts) for c in cols]
    first, g0 = cols[0].ts, gaps[0]
    if all(
        g == g0 and np.array_equal(c.ts, first) for c, g in zip(cols[1:], gaps[1:], strict=True)
    ):
        points = first + g0
    else:
        points = np.unique(np.concatenate([c.ts + g for c, g in zip(cols, gaps, strict=True)]))
    n = len(points)
    t = np.empty(n + 1, np.int64)
    t[0], t[1:] = min(int(c.ts[0]) for c in cols), points
    equity = np.zeros(n + 1)
    marked, cost, pnl = equity[1:], np.zeros(n + 1), np.zeros(n + 1)
    count = np.zeros(n + 1, np.int64)
    for col, gap in zip(cols, gaps, strict=True):
        mine = [r for r in trades if r.symbol == col.symbol]
        here = [lot for lot in lots if lot.symbol == col.symbol]
        _mark_pair(t[1:], col, gap, mine, here, marked, (cost, pnl, count))
    held = np.cumsum(count, out=count)[:n] > 0
    marked -= np.cumsum(cost, out=cost)[:n]
    marked[~held] = 0.0  # flat: exactly the realised PnL (no rounding residue of the marks)
    marked += np.cumsum(pnl, out=pnl)[:n]
    equity += float(starting_balance)
    return Curve(
        t,
        equity,
        np.concatenate(([False], held)),
        {c.symbol: float(c.close[0]) for c in cols},
        {c.symbol: float(c.close[-1]) for c in cols},
    )


def _mark_pair(
    points: I64,
    col: Column,
    gap: int,
    trades: Sequence[TradeRow],
    lots: Sequence[OpenLot],
    marked: F64,
    flows: tuple[F64, F64, I64],
) -> None:
    """Add one pair's held quantity x its last close at each point into ``marked``, and
    its costs, realised PnL and position count (as changes where they happen) into
    ``flows``."""
    n = len(points)
    if len(col.ts) == n:  # its closes are a subset of the union, of the same size: all of it
        price = col.close
    else:  # the pair's last close at or before each point (its first before it starts)
        price = col.close[np.clip(np.searchsorted(col.ts, points - gap, side="right") - 1, 0, None)]
    entry_ms = [r.entry_ms for r in trades] + [lot.entry_ms for lot in lots]
    entries = np.searchsorted(points, np.array(entry_ms, np.int64))
    exits = np.searchsorted(points, np.array([r.exit_ms for r in trades], np.int64))
    exits = np.concatenate((exits, np.full(len(lots), n)))  # open lots: held to the end
    cost, pnl, count = flows

    def change(w: npt.ArrayLike) -> F64:  # +w where a position opens, -w where it closes
        d: F64 = np.asarray(np.bincount(entries, w, n + 1), np.float64)
        d -= np.bincount(exits, w, n + 1)
        return d

    cost += change([r.cost for r in trades] + [lot.cost for lot in lots])
    count += np.bincount(entries, minlength=n + 1)
    count -= np.bincount(exits, minlength=n + 1)
    pnl += np.bincount(exits[: len(trades)], [r.pnl for r in trades], n + 1)
    qty = np.cumsum(change([r.qty for r in trades] + [lot.qty for lot in lots]))[:n]
    qty *= price
    marked += qty
