"""A backtest's inputs: candle files or folders, the symbols in them, a time range, and
everything about them a user should hear before trusting a run (gaps, seconds for
milliseconds, a series too short to warm up, a quote the wallet does not hold).

The backtest command, the sweep and the fast driver all load data through
:func:`load_inputs`, so each sees the same series and the same warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from fsmtrader.errors import DataError
from fsmtrader.feeds import Candles
from fsmtrader.feeds.files import FileName, candle_suffix, load_file, parse_name
from fsmtrader.markets import MarketFilters
from fsmtrader.research.timerange import Timerange, parse_timerange
from fsmtrader.runner import filters_for, load_markets_file

#: Epoch values in [1e9, 1e11) read as ms would date from 1970-01-12 to 1973-03; as
#: seconds they are 2001-09 to 5138: such a file holds seconds.
_SECONDS = (1_000_000_000, 100_000_000_000)


@dataclass(slots=True)
class Inputs:
    """The series to run (in run order) and what was found on the way.

    ``gaps`` maps a symbol to its missing spans ``(from_ms, to_ms)``, half-open: the open
    time of the first missing candle and that of the next candle present. Nothing is
    filled in. ``sources`` maps a symbol to the file(s) it came from.
    """

    series: list[Candles]
    warnings: list[str] = field(default_factory=list)
    gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    skipped_rows: dict[str, int] = field(default_factory=dict)
    timerange: str | None = None
    too_short: list[str] = field(default_factory=list)

    def refuse_untradeable(self) -> None:
        """DataError when no series is long enough to warm up: the run could only be
        empty (one too short among others is a warning only)."""
        if self.series and len(self.too_short) == len(self.series):
            raise DataError(
                f"{', '.join(self.too_short)}: too short to warm up "
                "(entry.anchor_window_min), so the run could not trade; give more candles "
                "or a shorter anchor window"
            )

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` records about the inputs."""
        return {
            "files": dict(self.sources),
            "symbols": [c.symbol for c in self.series],
            "candles": {c.symbol: len(c) for c in self.series},
            "interval_ms": self.series[0].interval_ms() if self.series else None,
            "span": {c.symbol: _span(c) for c in self.series},
            "timerange": self.timerange,
            "gaps": {s: [list(g) for g in gs] for s, gs in self.gaps.items()},
            "missing_candles": {c.symbol: self.missing(c) for c in self.series},
            "skipped_rows": dict(self.skipped_rows),
            "warnings": list(self.warnings),
        }

    def missing(self, c: Candles) -> int:
        """How many candles the gaps of ``c`` leave out."""
        iv = c.interval_ms()
        return sum((b - a) // iv for a, b in self.gaps.get(c.symbol, []))

    def line(self, c: Candles) -> str:
        """One line for the user about one series."""
        span = _span(c)
        gaps = self.gaps.get(c.symbol, [])
        holes = f", {len(gaps)} gap(s), {self.missing(c):,} missing" if gaps else ""
        return (
            f"{c.symbol}: {len(c):,} candles {span['from']} to {span['to']} "
            f"from {self.sources.get(c.symbol, '?')}{holes}"
        )


def load_inputs(
    paths: Sequence[Path],
    symbols: Sequence[str] | None,
    timerange: str | None,
    quote: str,
    *,
    warmup_ms: int = 0,
) -> Inputs:
    """The series in ``paths`` (files or folders of CSV, Feather, Parquet or freqtrade
    JSON), named from their file names unless ``symbols`` names them, cut to
    ``timerange`` (freqtrade's ``YYYYMMDD-YYYYMMDD``, both ends inclusive, either may be
    empty). ``quote`` is the wallet's currency (``market.quote``): a symbol quoted in
    anything else is refused. ``warmup_ms`` (the signal's anchor window) warns about a
    series too short to ever trade (see :meth:`Inputs.refuse_untradeable`).

    Raises DataError with a one-line message naming the file, flag or symbol.
    """
    if not paths:
        raise DataError("--data: give at least one candle file or folder")
    wanted = _wanted(symbols)
    found, warnings = _discover(paths)
    groups = _assign(found, wanted, warnings)
    window = parse_timerange(timerange)
    out = Inputs(series=[], warnings=warnings, timerange=timerange)
    for symbol, files in groups.items():
        _check_quote(symbol, quote)
        c = _load_group(symbol, files, out)
        out.series.append(_cut(c, window, timerange))
    _check_intervals(out.series)
    for c in out.series:
        _note_gaps(c, out)
    _check_warmup(out, warmup_ms)
    return out


def input_symbols(paths: Sequence[Path], symbols: Sequence[str] | None) -> list[str]:
    """The symbols :func:`load_inputs` would run, in order, from the file names alone
    (no file is read): what the settings need before the data are loaded."""
    if not paths:
        raise DataError("--data: give at least one candle file or folder")
    found, warnings = _discover(paths)
    return list(_assign(found, _wanted(symbols), warnings))


def _wanted(symbols: Sequence[str] | None) -> list[str] | None:
    """``--symbols`` normalised to ``BASE/QUOTE``; DataError naming a malformed one."""
    if symbols is None:
        return None
    out: list[str] = []
    for raw in symbols:
        s = raw.strip().upper()
        base, slash, q = s.partition("/")
        if not (slash and base and q and "/" not in q):
            raise DataError(f"--symbols: {raw!r} is not BASE/QUOTE, e.g. BTC/USDT")
        if s in out:
            raise DataError(f"--symbols: {s} is given twice")
        out.append(s)
    if not out:
        raise DataError("--symbols: no symbol given")
    return out


@dataclass(frozen=True, slots=True)
class _Found:
    path: Path
    name: FileName
    explicit: bool  # named on the command line, not found in a folder


def _discover(paths: Sequence[Path]) -> tuple[list[_Found], list[str]]:
    """Every candle file ``paths`` name: files as given, folders' candle files by name."""
    found: list[_Found] = []
    warnings: list[str] = []
    for p in paths:
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and candle_suffix(f))
            files = [f for f in files if not f.name.startswith(".")]
            if not files:
                raise DataError(f"{p}: no candle files (.csv, .feather, .parquet, .json) in it")
            for f in files:
                name = parse_name(f)
                if not name.prices:
                    continue  # freqtrade's mark/index/funding series: not traded prices
                if name.symbol is None:
                    warnings.append(f"{f}: skipped, the name says no symbol (like BTC_USDT-1m)")
                    continue
                found.append(_Found(f, name, explicit=False))
        elif p.exists():
            found.append(_Found(p, parse_name(p), explicit=True))
        else:
            raise DataError(f"{p}: candle file not found")
    if not found:
        raise DataError(f"--data {' '.join(map(str, paths))}: no candle files with a symbol")
    _once(found)
    return found, warnings


def _once(found: list[_Found]) -> None:
    """A file named twice (two --data for it, or a file and its folder) is a typo, not
    two series: said as such, before it reads as an overlap in time."""
    seen: set[Path] = set()
    for f in found:
        key = f.path.resolve()
        if key in seen:
            raise DataError(f"--data: {f.path} is given twice (as a file or in a folder)")
        seen.add(key)


def _assign(
    found: list[_Found], wanted: list[str] | None, warnings: list[str]
) -> dict[str, list[_Found]]:
    """The files of each symbol, in run order (``--symbols`` order, else first seen)."""
    if wanted is not None and len(wanted) == 1 and len(found) == 1 and found[0].explicit:
        only = found[0]
        if only.name.symbol not in (None, wanted[0]):
            warnings.append(
                f"{only.path}: its name says {only.name.symbol}; run as {wanted[0]} "
                "(--symbols names a single file)"
            )
        return {wanted[0]: [only]}
    groups: dict[str, list[_Found]] = {}
    for f in found:
        if f.name.symbol is None:
            raise DataError(
                f"{f.path}: cannot tell the symbol from the file name; name files like "
                "BTC_USDT-1m.csv, or give one file with --symbols"
            )
        groups.setdefault(f.name.symbol, []).append(f)
    if wanted is not None:
        missing = [s for s in wanted if s not in groups]
        if missing:
            raise DataError(
                f"--symbols {', '.join(missing)}: no candle file for it in --data "
                f"(found: {', '.join(groups)})"
            )
        groups = {s: groups[s] for s in wanted}
    return {s: _one_timeframe(s, files, warnings) for s, files in groups.items()}


def _one_timeframe(symbol: str, files: list[_Found], warnings: list[str]) -> list[_Found]:
    """One timeframe per symbol: the finest its files' names give; the rest are named in
    a warning. Files of that one timeframe (monthly dumps) are joined in time order."""
    frames = {f.name.timeframe for f in files}
    if len(frames) <= 1:
        return files
    if None in frames:
        names = ", ".join(str(f.path) for f in files)
        raise DataError(f"{symbol}: several files and not every name says its timeframe: {names}")
    best = min((f.name.timeframe or "" for f in files), key=_timeframe_ms)
    keep = [f for f in files if f.name.timeframe == best]
    dropped = ", ".join(f.path.name for f in files if f.name.timeframe != best)
    warnings.append(f"{symbol}: several timeframes; using the finest, {best} (ignored: {dropped})")
    return keep


def _timeframe_ms(tf: str) -> int:
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}
    return int(tf[:-1]) * unit[tf[-1]] * 1000


def _check_quote(symbol: str, quote: str) -> None:
    q = symbol.partition("/")[2].partition(":")[0]
    if q != quote:
        raise DataError(
            f"{symbol}: quoted in {q}, but the wallet holds {quote} (market.quote); "
            f'set market.quote = "{q}" in --config, or use {quote} pairs'
        )


def _load_group(symbol: str, files: list[_Found], out: Inputs) -> Candles:
    """One symbol's candles from its file(s), seconds turned into ms (with a warning)."""
    parts: list[Candles] = []
    skipped: list[str] = []
    for f in files:
        c = _as_ms(load_file(f.path, symbol, on_skip=skipped.append), f.path, out.warnings)
        parts.append(c)
    if skipped:
        out.skipped_rows[symbol] = len(skipped)
        out.warnings.append(
            f"{symbol}: skipped {len(skipped)} row(s) with bad prices; first: {skipped[0]}"
        )
    out.sources[symbol] = ", ".join(str(f.path) for f in files)
    return parts[0] if len(parts) == 1 else _join(symbol, parts, files)


def _as_ms(c: Candles, path: Path, warnings: list[str]) -> Candles:
    ts = np.asarray(c.ts, dtype=np.int64)
    lo, hi = _SECONDS
    if len(ts) and ts[0] >= lo and ts[-1] < hi:
        first = int(ts[0])
        warnings.append(
            f"{path}: timestamps look like seconds ({first} = {_iso(first * 1000)} as "
            "seconds, 1970 as milliseconds); read them as seconds"
        )
        ts = ts * 1000
    return Candles(c.symbol, ts, *(np.asarray(x, dtype=np.float64) for x in c.columns()[1:]))


def _join(symbol: str, parts: list[Candles], files: list[_Found]) -> Candles:
    """Several files of one symbol and timeframe (monthly dumps) as one series."""
    order = sorted(range(len(parts)), key=lambda i: int(parts[i].ts[0]))
    for a, b in pairwise(order):
        if int(parts[b].ts[0]) <= int(parts[a].ts[-1]):
            raise DataError(
                f"{symbol}: {files[a].path} and {files[b].path} overlap in time; give one"
            )
    cols = [np.concatenate([parts[i].columns()[k] for i in order]) for k in range(6)]
    return Candles(symbol, *cols)


def _cut(c: Candles, window: Timerange, text: str | None) -> Candles:
    if window.start_ms is None and window.stop_ms is None:
        return c
    ts = np.asarray(c.ts)
    lo = 0 if window.start_ms is None else int(np.searchsorted(ts, window.start_ms, "left"))
    hi = len(ts) if window.stop_ms is None else int(np.searchsorted(ts, window.stop_ms, "right"))
    if hi <= lo:
        span = _span(c)
        raise DataError(
            f"--timerange {text}: no {c.symbol} candles in it (its data run from "
            f"{span['from']} to {span['to']})"
        )
    return c.slice(lo, hi)


def _check_intervals(series: list[Candles]) -> None:
    frames = {c.symbol: c.interval_ms() for c in series}
    if len(set(frames.values())) > 1:
        each = ", ".join(f"{s} {ms // 1000} s" for s, ms in frames.items())
        raise DataError(f"the series have different candle intervals ({each}); give one timeframe")


def _note_gaps(c: Candles, out: Inputs) -> None:
    """Record the missing spans of ``c`` and warn once about them."""
    ts = np.asarray(c.ts, dtype=np.int64)
    iv = c.interval_ms()
    at = np.flatnonzero(np.diff(ts) > iv)
    if not len(at):
        return
    spans = [(int(ts[i]) + iv, int(ts[i + 1])) for i in at.tolist()]
    out.gaps[c.symbol] = spans
    start, stop = max(spans, key=lambda s: s[1] - s[0])
    out.warnings.append(
        f"{c.symbol}: {len(spans)} gap(s), {out.missing(c):,} candle(s) missing; longest "
        f"{(stop - start) // iv:,} from {_iso(start)}; left as gaps, nothing filled in"
    )


def _check_warmup(out: Inputs, warmup_ms: int) -> None:
    short = [c for c in out.series if int(c.ts[-1]) - int(c.ts[0]) < warmup_ms]
    for c in short:
        minutes = (int(c.ts[-1]) - int(c.ts[0])) // 60_000
        out.warnings.append(
            f"{c.symbol}: {len(c)} candles span {minutes} min, less than the "
            f"{warmup_ms // 60_000} min entry.anchor_window_min needs to warm up: it cannot trade"
        )
    out.too_short = [c.symbol for c in short]


def filters_and_source(
    series: Sequence[Candles], markets: Path | None, quote: str
) -> tuple[dict[str, MarketFilters], str, list[str]]:
    """Each series' exchange filters from a CCXT markets file, else derived from its
    first price; where they came from; and warnings (a non-USDT quote without a markets
    file gets guessed filters, so the run says so)."""
    if markets is not None:
        table = load_markets_file(markets)
        unknown = [c.symbol for c in series if c.symbol not in table]
        if unknown:
            known = ", ".join(sorted(table))
            raise DataError(f"{', '.join(unknown)}: not in {markets} (known: {known})")
        return {c.symbol: table[c.symbol] for c in series}, f"from {markets}", []
    warnings = [
        f"{c.symbol}: no --markets file, so its filters (tick, step, min notional 5 {quote}) "
        "are guesses from the price; pass --markets for the venue's real ones"
        for c in series
        if quote != "USDT"
    ]
    return filters_for(series, quote), "defaults derived from the data", warnings


def _span(c: Candles) -> dict[str, Any]:
    first, last = int(c.ts[0]), int(c.ts[-1])
    return {"from_ms": first, "to_ms": last, "from": _iso(first), "to": _iso(last)}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
