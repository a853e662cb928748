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
    realised PnL and the count of positions held are kept as changes at the points they
    happen (pair by pair), then summed and accumulated one at a time: a few
    timeline-long arrays whatever the number of pairs and trades."""
    if not cols:
        return Curve(np.zeros(1, np.int64), np.full(1, starting_balance), np.zeros(1, bool), {}, {})
    gaps = [interval_of(c.ts) for c in cols]
    t = _timeline(cols, gaps)
    n = len(t) - 1
    equity = np.zeros(n + 1)
    marked = equity[1:]
    flows = []
    for col, gap in zip(cols, gaps, strict=True):
        mine = [r for r in trades if r.symbol == col.symbol]
        here = [lot for lot in lots if lot.symbol == col.symbol]
        flows.append(_mark_pair(t[1:], col, gap, mine, here, marked))
    count = np.zeros(n + 1, np.int64)
    for f in flows:
        np.add.at(count, f.entries, 1)
        np.subtract.at(count, f.exits, 1)
    held = np.cumsum(count, out=count)[:n] > 0
    del count
    marked -= _running(n, [(f.cost_at, f.cost) for f in flows])
    marked[~held] = 0.0  # flat: exactly the realised PnL (no rounding residue of the marks)
    marked += _running(n, [(f.pnl_at, f.pnl) for f in flows])
    equity += float(starting_balance)
    return Curve(
        t,
        equity,
        np.concatenate(([False], held)),
        {c.symbol: float(c.close[0]) for c in cols},
        {c.symbol: float(c.close[-1]) for c in cols},
    )


def _timeline(cols: Sequence[Column], gaps: Sequence[int]) -> I64:
    """The start (the first open), then every pair's candle-close times, merged; built in
    place when the pairs share one timeline (no second timeline-long array)."""
    first, g0 = cols[0].ts, gaps[0]
    if all(
        g == g0 and np.array_equal(c.ts, first) for c, g in zip(cols[1:], gaps[1:], strict=True)
    ):
        t = np.empty(len(first) + 1, np.int64)
        t[1:] = first
        t[1:] += g0
    else:
        points = np.unique(np.concatenate([c.ts + g for c, g in zip(cols, gaps, strict=True)]))
        t = np.empty(len(points) + 1, np.int64)
        t[1:] = points
    t[0] = min(int(c.ts[0]) for c in cols)
    return t


class _Flows(NamedTuple):
    """One pair's changes, at the points they happen only: positions opened and closed,
    cost (+ at an entry, - at its exit) and realised PnL (at the exit)."""

    entries: I64
    exits: I64
    cost_at: I64
    cost: F64
    pnl_at: I64
    pnl: F64


def _sums_at(index: I64, w: npt.ArrayLike) -> tuple[I64, F64]:
    """The distinct points of ``index`` and the sum of ``w`` at each: what
    ``np.bincount(index, w)`` holds there (the same additions in the same order), without
    a timeline-long array."""
    where, inverse = np.unique(index, return_inverse=True)
    return where, np.asarray(np.bincount(inverse, w, len(where)), np.float64)


def _changes(entries: I64, exits: I64, w: npt.ArrayLike) -> tuple[I64, F64]:
    """+w where a position opens, -w where it closes, at each point either happens: what
    ``np.bincount(entries, w) - np.bincount(exits, w)`` holds there."""
    at = np.unique(np.concatenate((entries, exits)))
    opened = np.bincount(np.searchsorted(at, entries), w, len(at))
    closed = np.bincount(np.searchsorted(at, exits), w, len(at))
    return at, np.asarray(opened - closed, np.float64)


def _running(n: int, parts: Sequence[tuple[I64, F64]]) -> F64:
    """The running total at each of ``n`` points of changes given at some of them,
    added pair by pair (the order a dense sum of each pair's changes adds them in)."""
    total = np.zeros(n + 1)
    for at, values in parts:
        total[at] += values
    out: F64 = np.cumsum(total, out=total)[:n]
    return out


def _mark_pair(
    points: I64,
    col: Column,
    gap: int,
    trades: Sequence[TradeRow],
    lots: Sequence[OpenLot],
    marked: F64,
) -> _Flows:
    """Add one pair's held quantity x its last close at each point into ``marked``; its
    position count, costs and realised PnL as changes where they happen."""
    n = len(points)
    if len(col.ts) == n:  # its closes are a subset of the union, of the same size: all of it
        price = col.close
    else:  # the pair's last close at or before each point (its first before it starts)
        price = col.close[np.clip(np.searchsorted(col.ts, points - gap, side="right") - 1, 0, None)]
    entry_ms = [r.entry_ms for r in trades] + [lot.entry_ms for lot in lots]
    entries = np.searchsorted(points, np.array(entry_ms, np.int64))
    exits = np.searchsorted(points, np.array([r.exit_ms for r in trades], np.int64))
    exits = np.concatenate((exits, np.full(len(lots), n)))  # open lots: held to the end
    qty_at, dqty = _changes(entries, exits, [r.qty for r in trades] + [lot.qty for lot in lots])
    qty = np.zeros(n + 1)
    qty[qty_at] = dqty
    np.cumsum(qty, out=qty)
    held_qty = qty[:n]
    held_qty *= price
    marked += held_qty
    cost_at, cost = _changes(entries, exits, [r.cost for r in trades] + [lot.cost for lot in lots])
    pnl_at, pnl = _sums_at(exits[: len(trades)], [r.pnl for r in trades])
    return _Flows(entries, exits, cost_at, cost, pnl_at, pnl)
