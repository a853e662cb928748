"""Load and write OHLCV candle CSV files (``timestamp_ms,open,high,low,close,volume``).

Loading is strict where bad data would silently corrupt a backtest (ordering, shape,
OHLC consistency) and lenient where real dumps are known to contain junk (a price of 0 or
NaN): those rows are skipped and reported, never guessed at.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pa_csv

from fsmtrader.errors import DataError
from fsmtrader.feeds.candles import Candles

log = logging.getLogger(__name__)

HEADER = ("timestamp_ms", "open", "high", "low", "close", "volume")
_ACCEPTED_HEADERS = (list(HEADER), ["timestamp", *HEADER[1:]])
_Float = npt.NDArray[np.float64]
_Columns = tuple[npt.NDArray[np.int64], _Float, _Float, _Float, _Float, _Float]
_ARROW_TYPES = {name: (pa.int64() if name == HEADER[0] else pa.float64()) for name in HEADER}
_FIELDS = HEADER
_MAX_SHOWN = 120
#: Epoch values this large cannot be milliseconds (year 5138); Binance spot dumps since
#: 2025 use microseconds, so such timestamps are divided by 1000.
_MICROSECONDS_FROM = 100_000_000_000_000
_MAX_MS = 2**63 - 1


def _shown(row: list[str]) -> str:
    """The offending row as one short line, for error messages."""
    text = ",".join(row).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def load_csv(
    path: Path | str,
    symbol: str,
    *,
    on_skip: Callable[[str], None] | None = None,
) -> Candles:
    """Read one symbol's candles in a single pass.

    Raises DataError (``"{path}:{line}: {problem} ({row})"``) on a malformed row: wrong
    column count, a non-numeric field, a timestamp not strictly after the previous one, a
    negative or non-finite volume, high < low, or open/close outside [low, high]. A row
    with a price that is 0, negative, NaN or inf is skipped: ``on_skip`` gets the same kind
    of message and a warning with the count is logged. Blank lines are ignored, and
    microsecond timestamps (>= 1e14) are converted to milliseconds.
    """
    where = str(path)
    fast = _fast_columns(path)
    if fast is not None:
        return Candles(symbol, *fast)
    skips = _Skips(on_skip)
    with _open_candle_file(path, where) as fh:
        ts, opens, highs, lows, closes, vols = _parse_rows(_data_rows(fh, where), where, skips)
    if skips.count:
        log.warning(
            "%s: skipped %d row(s) with bad prices; first: %s", where, skips.count, skips.first
        )
    if not ts:
        why = f"all {skips.count} data row(s) had bad prices" if skips.count else "no data rows"
        raise DataError(f"{where}: {why}")
    floats = (np.frombuffer(col, dtype=np.float64) for col in (opens, highs, lows, closes, vols))
    return Candles(symbol, np.frombuffer(ts, dtype=np.int64), *floats)


def _fast_columns(path: Path | str) -> _Columns | None:
    """The file's columns parsed by pyarrow (about 20x faster than row by row), or None
    when the file is not one clean, plainly written candle file: then the row parser
    reads it again and names the first problem with its line, or skips bad prices, so
    every message and every result is the row parser's."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(4096).decode("utf-8-sig").strip()
        if [f.strip().lower() for f in first.split(",")] in _ACCEPTED_HEADERS:
            skip = 1
        elif first[:1].isdigit():
            skip = 0
        else:
            return None
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(
                column_names=list(HEADER), skip_rows=skip, use_threads=False
            ),
            parse_options=pa_csv.ParseOptions(newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=_ARROW_TYPES,
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (OSError, UnicodeDecodeError, pa.ArrowException):
        return None
    cols = []
    for _ in HEADER:  # copy a column out, then let arrow free it, before the next
        cols.append(_owned(table.column(0)))
        table = table.remove_column(0)
        pa.default_memory_pool().release_unused()
    ts, o, h, lo, c, v = cols
    ts = np.where(ts >= _MICROSECONDS_FROM, ts // 1000, ts)
    return (ts, o, h, lo, c, v) if _clean(ts, o, h, lo, c, v) else None


def _owned(col: pa.ChunkedArray) -> Any:
    """One numpy array that owns its memory, so the arrow table can go at once."""
    return np.concatenate([chunk.to_numpy() for chunk in col.chunks])


def _clean(
    ts: npt.NDArray[np.int64], o: _Float, h: _Float, lo: _Float, c: _Float, v: _Float
) -> bool:
    """Whether the columns pass every rule of :func:`load_csv` with nothing to skip."""
    if not len(ts):
        return False
    with np.errstate(invalid="ignore"):
        ok = bool(ts[0] >= 0 and (np.diff(ts) > 0).all())
        ok = ok and bool(((v >= 0) & (v < np.inf)).all())
        ok = ok and bool(((lo > 0) & (h < np.inf) & (lo <= h)).all())
        ok = ok and bool(((lo <= o) & (o <= h) & (lo <= c) & (c <= h)).all())
    return ok


@dataclass(slots=True)
class _Skips:
    """Rows skipped for a bad price: how many, the first message, and who else is told."""

    on_skip: Callable[[str], None] | None
    count: int = 0
    first: str = ""

    def add(self, message: str) -> None:
        self.count += 1
        if not self.first:
            self.first = message
        if self.on_skip is not None:
            self.on_skip(message)


def _open_candle_file(path: Path | str, where: str) -> TextIO:
    """The file opened for csv (BOM tolerated); DataError saying why it cannot be."""
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{where}: candle file not found") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot open candle file: {exc.strerror or exc}") from None


def _data_rows(fh: TextIO, where: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, row)`` for each non-blank row after the optional header. A bad header, bad
    text encoding or unreadable CSV is a DataError naming the line."""
    line = 0
    header_checked = False
    try:
        for line, row in enumerate(csv.reader(fh), start=1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if not header_checked:
                header_checked = True
                if _is_header(row, where, line):
                    continue
            yield line, row
    except UnicodeDecodeError:
        raise DataError(f"{where}:{line + 1}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise DataError(f"{where}:{line + 1}: unreadable CSV ({exc})") from None


def _is_header(row: list[str], where: str, line: int) -> bool:
    """Whether the first row is an accepted header; a non-numeric row that is not one
    is an error (it would otherwise be reported as a non-numeric timestamp)."""
    if _is_int(row[0].strip()):
        return False
    if [f.strip().lower() for f in row] in _ACCEPTED_HEADERS:
        return True
    raise _fail(where, line, "unrecognised header, expected " + ",".join(HEADER), row)


def _fail(where: str, line: int, problem: str, row: list[str]) -> DataError:
    return DataError(f"{where}:{line}: {problem} ({_shown(row)})")


def _parse_rows(
    rows: Iterator[tuple[int, list[str]]], where: str, skips: _Skips
) -> tuple[array[int], array[float], array[float], array[float], array[float], array[float]]:
    """The checked columns of ``rows`` (the rules are in :func:`load_csv`), in typed
    arrays: 8 bytes a value, where a list of Python floats takes 32."""
    ts: array[int] = array("q")
    opens, highs, lows, closes, vols = (array("d") for _ in range(5))
    # Local bindings: attribute lookups in a 500k-iteration loop add up.
    ts_add, o_add, h_add = ts.append, opens.append, highs.append
    l_add, c_add, v_add = lows.append, closes.append, vols.append
    inf = math.inf
    micro = _MICROSECONDS_FROM
    prev_t = -1
    for line, row in rows:
        try:
            t_s, o_s, h_s, l_s, c_s, v_s = row
        except ValueError:
            raise _fail(where, line, f"expected 6 columns, got {len(row)}", row) from None
        try:
            t, o, h, lo = int(t_s), float(o_s), float(h_s), float(l_s)
            c, v = float(c_s), float(v_s)
        except ValueError:
            raise _fail(where, line, _non_numeric(row), row) from None
        if t >= micro:
            t //= 1000
        if t <= prev_t:
            raise _fail(where, line, _out_of_order(t, prev_t), row)
        if t > _MAX_MS:
            raise _fail(where, line, f"timestamp {t} is out of range", row)
        prev_t = t
        if not 0.0 <= v < inf:
            raise _fail(where, line, f"volume must be finite and >= 0, got {v_s.strip()}", row)
        if not (0.0 < o < inf and 0.0 < h < inf and 0.0 < lo < inf and 0.0 < c < inf):
            skips.add(f"{where}:{line}: skipped, {_bad_price(o, h, lo, c)} ({_shown(row)})")
            continue
        if h < lo:
            raise _fail(where, line, f"high {h_s.strip()} < low {l_s.strip()}", row)
        if not (lo <= o <= h and lo <= c <= h):
            raise _fail(where, line, "open/close outside [low, high]", row)
        ts_add(t)
        o_add(o)
        h_add(h)
        l_add(lo)
        c_add(c)
        v_add(v)
    return ts, opens, highs, lows, closes, vols


def _out_of_order(t: int, prev_t: int) -> str:
    if t < 0:
        return f"negative timestamp {t}"
    return f"timestamp {t} is not after the previous one {prev_t}"


def _non_numeric(row: list[str]) -> str:
    """Name the first field that does not parse (slow path, only on error)."""
    for name, text in zip(_FIELDS, row, strict=True):
        try:
            int(text) if name == "timestamp_ms" else float(text)
        except ValueError:
            return f"non-numeric {name} {text.strip()!r}"
    return "non-numeric field"  # pragma: no cover - the fast path already failed


def _bad_price(o: float, h: float, lo: float, c: float) -> str:
    """Say which price made a row unusable (slow path, only for skipped rows)."""
    for name, x in (("open", o), ("high", h), ("low", lo), ("close", c)):
        if not 0.0 < x < math.inf:
            return f"{name} price is {x!r}, not a positive finite number"
    return "bad price"  # pragma: no cover - only called when one price is bad


def _fmt(x: float) -> str:
    """Shortest text that reads back to the same float, never in exponent notation."""
    s = repr(x)
    if "e" in s or "E" in s:
        s = format(Decimal(s), "f")
    return s


def write_csv(path: Path | str, candles: Candles) -> None:
    """Write ``candles`` in the format load_csv reads, atomically.

    The data go to a temporary file in the same directory that is then renamed over
    ``path``, so a crash mid-write never leaves a truncated file for the next run to trust.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(",".join(HEADER) + "\n")
            fmt = _fmt
            out.writelines(
                f"{t},{fmt(o)},{fmt(h)},{fmt(lo)},{fmt(c)},{fmt(v)}\n"
                # Python values: the repr of a numpy float is "np.float64(...)".
                for t, o, h, lo, c, v in zip(*candles.to_lists().columns(), strict=True)
            )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
