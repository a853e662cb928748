"""The candles a sweep runs on, loaded once per process and kept for the next trial.

A worker runs many trials on the same candles: loading them is setup, not the trial's
work, so each process keeps what it loaded (keyed by the files' paths, sizes and
modification times, so a changed file is read again) and a trial only runs its backtest.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fsmtrader.errors import DataError
from fsmtrader.feeds import Candles, load_csv
from fsmtrader.markets import MarketFilters
from fsmtrader.runner import filters_for

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


def cached_inputs(spec: DataSpec) -> tuple[Loaded, bool]:
    """``spec``'s candles, and whether this call loaded them (False: this process had
    them already)."""
    key = (spec, *(_stamp(p) for p in spec.paths))
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
    """Read ``spec`` from disk (a DataError, one line, when it cannot)."""
    series, warnings = _read(spec)
    if not series or not all(len(c) for c in series):
        empty = [c.symbol for c in series if not len(c)]
        raise DataError(
            f"--data: no candles{' for ' + ', '.join(empty) if empty else ''}"
            f"{' in ' + spec.timerange if spec.timerange else ''}"
        )
    return Loaded(series, filters_for(series, spec.quote), warnings)


def _read(spec: DataSpec) -> tuple[list[Candles], list[str]]:
    """Until ``research.inputs.load_inputs`` lands: CSV files, one symbol each."""
    paths = [Path(p) for p in spec.paths]
    symbols = list(spec.symbols) if spec.symbols else [_symbol_of(p, spec.quote) for p in paths]
    if len(symbols) != len(paths):
        raise DataError(f"--symbols: {len(symbols)} given for {len(paths)} --data file(s)")
    skipped: list[str] = []
    series = [load_csv(p, s, on_skip=skipped.append) for p, s in zip(paths, symbols, strict=True)]
    if spec.timerange:
        start, end = _timerange(spec.timerange)
        series = [_between(c, start, end) for c in series]
    warnings = [f"skipped {len(skipped)} bad row(s); first: {skipped[0]}"] if skipped else []
    return series, warnings


def _symbol_of(path: Path, quote: str) -> str:
    match = re.search(rf"([A-Z0-9]+?)[_-]?{quote}(?![A-Z])", path.name)
    if not match:
        raise DataError(f"--data {path}: cannot tell the symbol from the name; give --symbols")
    return f"{match.group(1).split('_')[-1]}/{quote}"


def _timerange(text: str) -> tuple[int | None, int | None]:
    start, sep, end = text.partition("-")
    if not sep:
        raise DataError(
            f"--timerange {text}: expected YYYYMMDD-YYYYMMDD (either side may be empty)"
        )
    return _day(start, text), _day(end, text)


def _day(part: str, text: str) -> int | None:
    if not part:
        return None
    try:
        day = datetime.strptime(part, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        raise DataError(f"--timerange {text}: {part!r} is not a date YYYYMMDD") from None
    return int(day.timestamp() * 1000)


def _between(c: Candles, start: int | None, end: int | None) -> Candles:
    ts = c.ts
    lo = 0 if start is None else next((i for i, t in enumerate(ts) if t >= start), len(ts))
    hi = len(ts) if end is None else next((i for i, t in enumerate(ts) if t >= end), len(ts))
    return c.slice(lo, hi)
