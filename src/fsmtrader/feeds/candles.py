"""Columnar candle storage and a k-way merge that turns per-symbol series into one stream.

Columns (one list per field) rather than one object per candle: the backtest loop reads
millions of values, and list indexing is far cheaper than attribute access on objects.
"""

from __future__ import annotations

import heapq
import operator
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat

#: One merged event: (ts_ms, symbol, open, high, low, close, volume).
Bar = tuple[int, str, float, float, float, float, float]

ONE_MINUTE_MS = 60_000


@dataclass(slots=True)
class Candles:
    """Columnar OHLCV for one symbol (columns, not objects: the backtest loop is hot).

    ``ts`` is epoch milliseconds, strictly increasing. Loaders guarantee it and
    ``low <= open, close <= high``; the constructor only checks that the columns line up,
    because a full scan on every ``slice`` would cost more than the slice itself.
    """

    symbol: str
    ts: list[int]
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]

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

    def slice(self, start: int, stop: int) -> Candles:
        """Rows ``start:stop`` with Python slice semantics (copies; the original is untouched)."""
        return Candles(
            self.symbol,
            self.ts[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
        )

    def interval_ms(self) -> int:
        """Most common spacing between timestamps, so a gap or two does not fool it.

        Ties go to the smaller spacing; fewer than two rows gives one minute.
        """
        ts = self.ts
        if len(ts) < 2:
            return ONE_MINUTE_MS
        counts: Counter[int] = Counter(map(operator.sub, ts[1:], ts[:-1]))
        best = max(counts.values())
        return min(gap for gap, n in counts.items() if n == best)


def merge(series: Sequence[Candles]) -> Iterator[Bar]:
    """k-way merge by timestamp, ties broken by the order of `series`.

    Yields (ts, symbol, o, h, l, c, v). Lazy: a year of minutes for many symbols is never
    materialised as one list.
    """
    if len(series) == 1:
        c = series[0]
        yield from zip(c.ts, repeat(c.symbol), c.open, c.high, c.low, c.close, c.volume)
        return
    # (ts, series index) is unique because each series is strictly increasing, so tuple
    # comparison never looks past the index and ties resolve in `series` order.
    streams = [
        zip(c.ts, repeat(i), repeat(c.symbol), c.open, c.high, c.low, c.close, c.volume)
        for i, c in enumerate(series)
    ]
    for t, _, sym, o, h, lo, cl, v in heapq.merge(*streams):
        yield (t, sym, o, h, lo, cl, v)
