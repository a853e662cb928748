"""The candles a sweep runs on, loaded once per process and kept for the next trial.

A worker runs many trials on the same candles: loading them is setup, not the trial's
work, so each process keeps what it loaded (keyed by the files' paths, sizes and
modification times, so a changed file is read again) and a trial only runs its backtest.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from fsmtrader.errors import DataError
from fsmtrader.feeds import Candles
from fsmtrader.markets import MarketFilters
from fsmtrader.research.inputs import filters_and_source, load_inputs

__all__ = ["DataSpec", "Loaded", "cached_inputs", "load"]

_KEEP = 4  # data sets a process keeps (a sweep needs two: train and test)


@dataclass(frozen=True)
class DataSpec:
    """What to load: files (or folders), which symbols, which time range, in which quote.
    Plain values, so a trial's spec pickles small and loads the same on any worker."""

    paths: tuple[str, ...]
    symbols: tuple[str, ...] | None
    timerange: str | None
    quote: str
    warmup_ms: int = 0
    flag: str = "--timerange"  # the flag that gave ``timerange``, for messages
    markets: str | None = None  # a CCXT markets file for the venue's filters


@dataclass(frozen=True)
class Loaded:
    """Candles ready for a backtest: the series, their filters, the loader's warnings."""

    series: list[Candles]
    filters: dict[str, MarketFilters]
    warnings: list[str]

    @property
    def symbols(self) -> list[str]:
        return [c.symbol for c in self.series]


_CACHE: OrderedDict[tuple[object, ...], Loaded] = OrderedDict()
_LOCK = threading.Lock()  # a worker with several threads loads each data set once too


def cached_inputs(spec: DataSpec) -> tuple[Loaded, bool]:
    """``spec``'s candles, and whether this call loaded them (False: this process had
    them already)."""
    key = (spec, *(_stamp(p) for p in spec.paths))
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit, False
        loaded = load(spec)
        _CACHE[key] = loaded
        while len(_CACHE) > _KEEP:
            _CACHE.popitem(last=False)
        return loaded, True


def _stamp(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)  # load() reports the missing file
    return (st.st_size, st.st_mtime_ns)


def load(spec: DataSpec) -> Loaded:
    """Read ``spec`` as ``fsmtrader backtest`` does (``research.inputs``: the same series,
    filters and refusals, so a trial is that command's run); a DataError, one line,
    naming the sweep's own flag for the range, when it cannot."""
    markets = Path(spec.markets) if spec.markets is not None else None
    try:
        inputs = load_inputs(
            [Path(p) for p in spec.paths],
            spec.symbols,
            spec.timerange,
            spec.quote,
            warmup_ms=spec.warmup_ms,
        )
        filters, _, notes = filters_and_source(inputs.series, markets, spec.quote)
        inputs.refuse_untradeable()
    except DataError as exc:
        raise DataError(str(exc).replace("--timerange", spec.flag)) from None
    series = inputs.series
    empty = [c.symbol for c in series if not len(c)]
    if not series or empty:
        where = f" in {spec.flag} {spec.timerange}" if spec.timerange else ""
        raise DataError(f"--data: no candles{' for ' + ', '.join(empty) if empty else ''}{where}")
    warnings = [w.replace("--timerange", spec.flag) for w in [*inputs.warnings, *notes]]
    return Loaded(series, filters, warnings)
