"""Columnar candle storage and the one ordered stream of bars a backtest iterates.

Columns (one array per field) rather than one object per candle: the backtest loop reads
millions of values. Loaders give numpy columns (a year of minutes is 25 MB per symbol, not
130 MB of Python floats); code that builds candles by hand may pass Python lists, and
everything here accepts both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

#: One bar of the stream: (ts_open_ms, symbol, open, high, low, close, volume), plain
#: Python int and floats.
Bar = tuple[int, str, float, float, float, float, float]

#: The timestamp column: epoch ms of each candle's OPEN, strictly increasing.
IntColumn = list[int] | npt.NDArray[np.int64]
#: A price or volume column.
FloatColumn = list[float] | npt.NDArray[np.float64]

ONE_MINUTE_MS = 60_000
#: Rows turned into Python objects at a time by :func:`bars`: large enough that numpy's
#: per-call cost vanishes, small enough that the objects of one chunk stay a few MB.
CHUNK = 1 << 14


@dataclass(slots=True, eq=False)
class Candles:
    """Columnar OHLCV for one symbol (columns, not objects: the backtest loop is hot).

    ``ts`` is epoch milliseconds of each candle's open, strictly increasing. Loaders
    guarantee it and ``low <= open, close <= high``; the constructor only checks that the
    columns line up, because a full scan on every ``slice`` would cost more than the
    slice itself. Numpy columns are never written in place.
    """

    symbol: str
    ts: IntColumn
    open: FloatColumn
    high: FloatColumn
    low: FloatColumn
    close: FloatColumn
    volume: FloatColumn

    def __post_init__(self) -> None:
        n = len(self.ts)
        if not (
            len(self.open)
            == len(self.high)
            == len(self.low)
            == len(self.close)
            == len(self.volume)
            == n
        ):
            raise ValueError(
                f"{self.symbol}: column lengths differ (ts={n}, open={len(self.open)}, "
                f"high={len(self.high)}, low={len(self.low)}, close={len(self.close)}, "
                f"volume={len(self.volume)})"
            )

    def __len__(self) -> int:
        return len(self.ts)

    def __eq__(self, other: object) -> bool:
        """Same symbol and the same values, whether the columns are lists or arrays."""
        if not isinstance(other, Candles):
            return NotImplemented
        return self.symbol == other.symbol and all(
            _same(a, b) for a, b in zip(self.columns(), other.columns(), strict=True)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable columns: not hashable

    def columns(
        self,
    ) -> tuple[IntColumn, FloatColumn, FloatColumn, FloatColumn, FloatColumn, FloatColumn]:
        """``(ts, open, high, low, close, volume)``."""
        return self.ts, self.open, self.high, self.low, self.close, self.volume

    def slice(self, start: int, stop: int) -> Candles:
        """Rows ``start:stop`` with Python slice semantics (copies; the original is untouched)."""
        return Candles(self.symbol, *(_copy(col[start:stop]) for col in self.columns()))

    def interval_ms(self) -> int:
        """Most common spacing between timestamps, so a gap or two does not fool it.

        Ties go to the smaller spacing; fewer than two rows gives one minute.
        """
        if len(self.ts) < 2:
            return ONE_MINUTE_MS
        diffs = np.diff(np.asarray(self.ts, dtype=np.int64))
        least = diffs.min()
        if 2 * int(np.count_nonzero(diffs == least)) >= len(diffs):
            return int(least)  # at least half: the most common, or tied and smaller
        gaps, counts = np.unique(diffs, return_counts=True)
        return int(gaps[int(np.argmax(counts))])  # unique sorts: the first max is the smallest

    def appendable(
        self,
    ) -> tuple[list[int], list[float], list[float], list[float], list[float], list[float]]:
        """The list columns, for code that appends rows (see :meth:`to_lists`);
        TypeError if they are numpy arrays, which cannot grow in place."""
        cols = self.columns()
        if not all(isinstance(col, list) for col in cols):
            raise TypeError(f"{self.symbol}: numpy columns cannot be appended to; use to_lists()")
        t, o, h, lo, c, v = cols
        return t, o, h, lo, c, v  # type: ignore[return-value]  # all lists, checked above

    def to_lists(self) -> Candles:
        """The same candles with Python list columns (for code that appends rows)."""
        return Candles(self.symbol, *(_as_list(col) for col in self.columns()))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


def _copy(col: Any) -> Any:
    return col.copy() if isinstance(col, np.ndarray) else col


def _as_list(col: Any) -> Any:
    return col.tolist() if isinstance(col, np.ndarray) else list(col)


def bars(series: Sequence[Candles]) -> Iterator[Bar]:
    """Every bar of ``series`` in (ts, series order) order, as plain Python values.

    Lazy and chunked: numpy orders one window of rows at a time (a stable argsort of
    their timestamps keeps ties in series order) and turns them into Python objects, so
    neither a merged copy of the data nor a year of Python floats ever exists.
    """
    live = [c for c in series if len(c)]
    if len(live) == 1:
        yield from _one(live[0])
    elif live:
        yield from _many(live)


def _one(c: Candles) -> Iterator[Bar]:
    cols = [np.asarray(col) for col in c.columns()]
    sym = repeat(c.symbol)
    for at in range(0, len(c), CHUNK):
        t, o, h, lo, cl, v = (col[at : at + CHUNK].tolist() for col in cols)
        yield from zip(t, sym, o, h, lo, cl, v)  # noqa: B905 - sym repeats forever


def _many(series: list[Candles]) -> Iterator[Bar]:
    """Windows that end at a time ``bound``: the smallest of each series' timestamp
    ``step`` rows ahead. Every row at or before it is in the window (ties never split
    across windows) and no series has more than ``step`` rows in it."""
    cols = [[np.asarray(col) for col in c.columns()] for c in series]
    names = np.array([c.symbol for c in series], dtype=object)
    at = [0] * len(series)
    step = max(CHUNK // len(series), 1)
    while True:
        ahead = [
            ts[min(i + step, len(ts)) - 1]
            for (ts, *_), i in zip(cols, at, strict=True)
            if i < len(ts)
        ]
        if not ahead:
            return
        bound = min(ahead)
        parts: list[list[Any]] = [[] for _ in range(7)]
        for k, (col, i) in enumerate(zip(cols, at, strict=True)):
            j = int(np.searchsorted(col[0], bound, side="right"))
            if j > i:
                for out, c in zip(parts, col, strict=False):
                    out.append(c[i:j])
                parts[6].append(np.full(j - i, k, dtype=np.intp))
                at[k] = j
        ts = np.concatenate(parts[0])
        order = np.argsort(ts, kind="stable")
        fields = [ts[order].tolist()] + [np.concatenate(p)[order].tolist() for p in parts[1:6]]
        t, o, h, lo, cl, v = fields
        syms = names[np.concatenate(parts[6])[order]].tolist()
        yield from zip(t, syms, o, h, lo, cl, v, strict=True)


def merge(series: Sequence[Candles]) -> Iterator[Bar]:
    """The bars of several series in time order: :func:`bars` under its older name."""
    return bars(series)
