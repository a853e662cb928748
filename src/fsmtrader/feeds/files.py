"""Candle files other than our CSV: Feather, Parquet and freqtrade's JSON, and what a file
name says about its symbol and timeframe.

Freqtrade stores a pair as ``BTC_USDT-1m.feather`` (``date`` column, a UTC timestamp, then
open/high/low/close/volume); its ``.parquet``, ``.json`` and ``.json.gz`` files hold the
same. Reading them lets a user backtest what they already downloaded. The checks are the
ones :func:`~fsmtrader.feeds.csv_replay.load_csv` applies, done on whole columns, and an
error names the file and the row.
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from fsmtrader.errors import DataError
from fsmtrader.feeds.candles import Candles
from fsmtrader.feeds.csv_replay import load_csv

#: Suffixes of the formats read here, longest first (``.json.gz`` before ``.gz``).
SUFFIXES = (".json.gz", ".jsongz", ".feather", ".parquet", ".json", ".csv")
#: Quote currencies a name like ``LTCUSDT`` is split on, longest first.
QUOTES = (
    "FDUSD",
    "USDT",
    "USDC",
    "TUSD",
    "BUSD",
    "USDE",
    "EUR",
    "TRY",
    "BRL",
    "GBP",
    "JPY",
    "USD",
    "DAI",
    "BTC",
    "ETH",
    "BNB",
)
_TIME_COLUMNS = ("date", "timestamp_ms", "timestamp", "open_time", "time")
_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
#: freqtrade candle types that are not traded prices (skipped in a folder).
_NOT_PRICES = ("mark", "index", "premiumindex", "funding_rate")
_TIMEFRAME = re.compile(r"\d+[smhdwMy]")
_FREQTRADE = re.compile(
    r"(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?"
    r"-(?P<tf>\d+[smhdwMy])(?:-(?P<kind>[A-Za-z_]+))?"
)


@dataclass(frozen=True, slots=True)
class FileName:
    """What a candle file's name says: the symbol (None: cannot tell), the timeframe
    (None: not in the name) and whether it holds traded prices at all."""

    symbol: str | None
    timeframe: str | None
    prices: bool = True


def candle_suffix(path: Path) -> str | None:
    """The format suffix of ``path`` (lower case), None if it is not a candle file."""
    name = path.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), None)


def parse_name(path: Path) -> FileName:
    """Symbol and timeframe from a file name: freqtrade's ``BTC_USDT-1m.feather`` (and
    ``BTC_USDT_USDT-1m-futures.feather``), our ``binance_BTCUSDT_1m.csv``, Binance's
    ``LTCUSDT-1m-2026-02.csv``."""
    suffix = candle_suffix(path) or path.suffix
    stem = path.name[: len(path.name) - len(suffix)]
    m = _FREQTRADE.fullmatch(stem)
    if m:
        kind = (m["kind"] or "").lower()
        symbol = f"{m['base'].upper()}/{m['quote'].upper()}"
        return FileName(symbol, m["tf"], kind not in _NOT_PRICES)
    if stem.lower().endswith("-trades"):
        return FileName(None, None, prices=False)  # freqtrade's raw trades, not candles
    tokens = re.split(r"[_\-. ]+", stem)
    timeframe = next((t for t in tokens if _TIMEFRAME.fullmatch(t)), None)
    for token in tokens:
        # A lower-case word counts only next to a timeframe: "country.csv" is no COUN/TRY.
        found = split_symbol(token) if timeframe or token.isupper() else None
        if found is not None:
            return FileName(found, timeframe)
    return FileName(None, timeframe)


def split_symbol(token: str) -> str | None:
    """``LTCUSDT`` -> ``LTC/USDT`` on a known quote; None when no quote fits."""
    up = token.upper()
    if not up.isalnum() or up.isdigit():
        return None
    for quote in QUOTES:
        if up.endswith(quote) and len(up) > len(quote):
            return f"{up[: -len(quote)]}/{quote}"
    return None


def load_file(path: Path, symbol: str, *, on_skip: Callable[[str], None] | None = None) -> Candles:
    """Candles of one file of any supported format (by its suffix)."""
    suffix = candle_suffix(path)
    if suffix == ".csv" or suffix is None:
        return load_csv(path, symbol, on_skip=on_skip)
    if not path.is_file():
        raise DataError(f"{path}: candle file not found")
    if suffix in (".json", ".json.gz", ".jsongz"):
        table = _json_table(path, gz=suffix != ".json")
        return _from_columns(table.column_names, table.column, path, symbol, on_skip)
    names, read = _arrow_file(path, suffix)
    return _from_columns(names, read, path, symbol, on_skip)


def _arrow_file(path: Path, suffix: str) -> tuple[list[str], Callable[[str], pa.ChunkedArray]]:
    """A Feather or Parquet file's column names and a reader of one column: read one at
    a time, a column's arrow buffers go back to the system before the next is read."""
    try:
        if suffix == ".feather":
            import pyarrow.feather as feather

            try:
                names = pa.ipc.open_file(path).schema.names
            except pa.ArrowInvalid:  # Feather V1 (before 2020): read whole
                table = feather.read_table(path)
                return table.column_names, table.column

            def read(name: str) -> pa.ChunkedArray:
                return feather.read_table(path, columns=[name], memory_map=False).column(0)

        else:
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            names = pf.schema_arrow.names

            def read(name: str) -> pa.ChunkedArray:
                return pf.read(columns=[name], use_threads=False).column(0)

        return list(names), _checked_read(read, path, suffix)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: not a readable {suffix[1:]} file ({exc})") from None


def _checked_read(
    read: Callable[[str], pa.ChunkedArray], path: Path, suffix: str
) -> Callable[[str], pa.ChunkedArray]:
    def column(name: str) -> pa.ChunkedArray:
        try:
            return read(name)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{path}: not a readable {suffix[1:]} file ({exc})") from None

    return column


def _json_table(path: Path, *, gz: bool) -> pa.Table:
    """freqtrade's JSON candles: a list of ``[ts_ms, open, high, low, close, volume]``."""
    try:
        raw = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: not a JSON candle file ({exc})") from None
    data = _json_numbers(raw)
    shape = f"{path}: expected rows of [ts, open, high, low, close, volume]"
    if data is None:
        try:
            rows = json.loads(raw)
        except ValueError as exc:
            raise DataError(f"{path}: not a JSON candle file ({exc})") from None
        try:
            data = np.asarray(rows, dtype=np.float64)
        except (ValueError, TypeError):
            raise DataError(shape) from None
    if data.ndim != 2 or data.shape[1] != 6:
        raise DataError(shape)
    names = ("date", *_PRICE_COLUMNS)
    arrays: list[Any] = [pa.array(data[:, 0].astype(np.int64))]
    arrays += [pa.array(data[:, i]) for i in range(1, 6)]
    return pa.table(arrays, names=names)


def _json_numbers(raw: bytes) -> npt.NDArray[np.float64] | None:
    """``[[n, n, n, n, n, n], ...]`` parsed by numpy as one run of numbers: a year of
    minutes as Python lists would take hundreds of MB. None when the text is anything
    else (then json names the problem)."""
    compact = raw.translate(None, b" \t\r\n")
    if not (compact.startswith(b"[[") and compact.endswith(b"]]")):
        return None
    chars = np.frombuffer(compact, dtype=np.uint8)
    opens, closes = np.flatnonzero(chars == ord("["))[1:], np.flatnonzero(chars == ord("]"))[:-1]
    commas = np.flatnonzero(chars == ord(","))
    rows = len(opens)
    if len(closes) != rows or not (opens < closes).all():
        return None
    per_row = np.searchsorted(commas, closes) - np.searchsorted(commas, opens)
    if not (per_row == 5).all():
        return None  # not six numbers in every row
    del chars, commas
    flat = compact.translate(None, b"[]")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns, then stops early, on a bad token
        try:
            values = np.fromstring(flat.decode("ascii"), sep=",")
        except (ValueError, UnicodeDecodeError, DeprecationWarning):
            return None
    if values.size != rows * 6:
        return None
    return values.reshape(rows, 6)


def _from_columns(
    names: list[str],
    read: Callable[[str], pa.ChunkedArray],
    path: Path,
    symbol: str,
    on_skip: Callable[[str], None] | None,
) -> Candles:
    """The candles in the named columns; each is copied into numpy and its arrow memory
    released before the next is read, so loading needs little more than the result."""
    lower = {name.lower(): name for name in names}
    time_col = next((lower[c] for c in _TIME_COLUMNS if c in lower), None)
    missing = [c for c in _PRICE_COLUMNS if c not in lower]
    if time_col is None or missing:
        need = "a date/timestamp column" if time_col is None else ", ".join(missing)
        raise DataError(f"{path}: no {need} (columns: {', '.join(names)})")
    pool = pa.default_memory_pool()
    ts = _ms_column(read(time_col), path, time_col)
    pool.release_unused()
    prices = []
    for c in _PRICE_COLUMNS:
        prices.append(_float_column(read(lower[c]), path, c))
        pool.release_unused()
    return checked(path, symbol, ts, *prices, on_skip=on_skip)


def _ms_column(col: pa.ChunkedArray, path: Path, name: str) -> npt.NDArray[np.int64]:
    """Epoch ms from a timestamp column (any unit) or an integer one."""
    if col.null_count:
        raise DataError(f"{path}: column {name} has {col.null_count} empty value(s)")
    kind = col.type
    if pa.types.is_timestamp(kind):  # datetime64 of the same unit: its int64s, no compute
        ints = np.asarray(col.to_numpy()).view(np.int64)
        unit: str = kind.unit
        if unit == "s":
            return ints * 1000
        return ints // {"ms": 1, "us": 1000, "ns": 1_000_000}[unit]
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return np.array(col.to_numpy(), dtype=np.int64)  # a copy numpy owns
    raise DataError(f"{path}: column {name} is {kind}, not a timestamp or a number")


def _float_column(col: pa.ChunkedArray, path: Path, name: str) -> npt.NDArray[np.float64]:
    """A price column as float64; pyarrow.compute (~14 MB, ~50 ms to load) only for a
    column of another type."""
    if pa.types.is_float64(col.type):
        return np.array(col.to_numpy(), dtype=np.float64)  # a copy numpy owns; nulls as NaN
    import pyarrow.compute as pc

    try:
        out = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowException:
        raise DataError(f"{path}: column {name} is {col.type}, not a number") from None
    return np.array(out, dtype=np.float64)  # a copy numpy owns; nulls arrive as NaN


def checked(
    where: Path | str,
    symbol: str,
    ts: npt.NDArray[np.int64],
    *prices: npt.NDArray[np.float64],
    on_skip: Callable[[str], None] | None = None,
) -> Candles:
    """Candles from columns after load_csv's rules, on whole columns: microsecond and
    nanosecond epochs become ms, timestamps strictly increase, volume is finite and >= 0,
    rows with a price that is not positive and finite are skipped (``on_skip`` hears of
    each), OHLC are consistent. Errors name the row (1 = the first data row)."""
    o, h, lo, c, v = prices
    ts = np.where(ts >= 100_000_000_000_000_000, ts // 1_000_000, ts)
    ts = np.where(ts >= 100_000_000_000_000, ts // 1000, ts)
    bad = np.flatnonzero(np.diff(ts) <= 0) + 1
    if len(ts) and ts[0] < 0:
        bad = np.concatenate(([0], bad))
    _refuse(where, bad, ts, "timestamp not after the previous one (or negative)")
    _refuse(where, np.flatnonzero(~((v >= 0) & (v < np.inf))), v, "volume must be finite and >= 0")
    good = np.ones(len(ts), dtype=bool)
    for x in (o, h, lo, c):
        good &= (x > 0) & (x < np.inf)
    skipped = np.flatnonzero(~good)
    for i in skipped.tolist():
        if on_skip is not None:
            on_skip(f"{where}: row {i + 1}: skipped, a price is not a positive finite number")
    _refuse(where, np.flatnonzero(good & (h < lo)), h, "high < low")
    outside = np.flatnonzero(good & ((o < lo) | (o > h) | (c < lo) | (c > h)))
    _refuse(where, outside, o, "open/close outside [low, high]")
    if len(skipped):
        ts = ts[good]
        o, h, lo, c, v = (col[good] for col in (o, h, lo, c, v))
    if not len(ts):
        why = f"all {len(skipped)} row(s) had bad prices" if len(skipped) else "no data rows"
        raise DataError(f"{where}: {why}")
    return Candles(symbol, ts, o, h, lo, c, v)


def _refuse(where: Path | str, rows: npt.NDArray[np.intp], col: Any, problem: str) -> None:
    if len(rows):
        i = int(rows[0])
        more = f" (and {len(rows) - 1} more row(s))" if len(rows) > 1 else ""
        raise DataError(f"{where}: row {i + 1}: {problem}, got {col[i].item()!r}{more}")
