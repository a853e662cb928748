"""Download closed OHLCV candles from an exchange into the CSV format the backtest reads.

Why it is shaped the way it is:

* **Closed candles only, on the venue's grid.** The window is ``[now - days, now)``; every
  candle that overlaps it *and has ended* by ``now_ms`` is kept (the first one may start
  a little before ``now - days``; the still-open last one is dropped), so a backtest never
  sees a bar whose close is still moving. One day of 1m is always 1,440 rows.
* **Resumable.** An existing file is loaded strictly; its rows are kept as they are and
  only candles after its last timestamp are fetched, even when that is before the window
  (a hole mid-series would hurt a backtest more than extra history). A gap *before* its
  first row is not filled (that would mean rewriting history under the file's rows); the
  result says how much of the window that leaves uncovered. A file that does not load
  is refused with :class:`DataError` and never touched: it may be someone's only copy.
* **Crash-tolerant.** The file is rewritten atomically (``write_csv``: temp file in the
  same directory + ``os.replace``) every ``checkpoint_pages`` pages and, on any exception
  (network error, Ctrl-C, a progress callback raising), once more with what was fetched
  before the exception is re-raised. An interrupted download therefore leaves a valid
  file that the next call resumes.
* **Pagination by ``since``.** Each page asks from the last timestamp + one interval.
  A page that brings nothing new ends the download. An *empty* page while candles are
  known to exist later (some venues, e.g. MEXC through ccxt, answer only a fixed time
  window after ``since``, so a stretch without data reads as empty) is bridged by a
  binary search for the next page that has data, instead of ending early.

Only ``fetch_ohlcv`` of the exchange is used (public market data: no key is needed).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from fsmtrader.errors import DataError
from fsmtrader.feeds.candles import Candles
from fsmtrader.feeds.csv_replay import HEADER, load_csv, write_csv
from fsmtrader.progress import Progress

log = logging.getLogger("fsmtrader.download")

MINUTE_MS: Final = 60_000
DAY_MS: Final = 24 * 60 * MINUTE_MS
#: Timeframes we download, with their length. All are whole minutes, so the venue's
#: candle grid (aligned to the Unix epoch) is the grid we compute the window on.
TIMEFRAMES: Final[dict[str, int]] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "1d": DAY_MS,
}
DEFAULT_CHECKPOINT_PAGES: Final = 20
_NAME_PART: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Here ``progress(done, total)`` is (covered_ms, total_ms): after every request, how much of
# the time to fetch (from where this call started fetching to ``now_ms``) is covered so far.


class OhlcvSource(Protocol):
    """What the downloader needs: :class:`~fsmtrader.exchange.ccxt_adapter.sync.CcxtExchange`
    has it, and so can any test double."""

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = ...,
        since: int | None = ...,
        limit: int | None = ...,
    ) -> Sequence[Sequence[float]]: ...


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What one call did.

    ``rows_before`` rows were in the file already (a resume), ``rows_added`` were fetched
    now; ``first_ts`` / ``last_ts`` span the whole file (None when it holds nothing).
    ``pages`` counts ``fetch_ohlcv`` requests. ``missing_head_ms`` is how much of the start
    of the window the file does not cover: on a resume, the gap before its first row that
    is deliberately not refetched; otherwise, time before the venue's first candle.
    ``written`` is False when the file was left as it was (nothing new, or no data)."""

    path: Path
    rows_before: int
    rows_added: int
    first_ts: int | None
    last_ts: int | None
    resumed: bool
    pages: int
    window_start_ms: int = 0
    window_end_ms: int = 0
    missing_head_ms: int = 0
    skipped_rows: int = 0
    written: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rows(self) -> int:
        return self.rows_before + self.rows_added


def interval_ms(timeframe: str) -> int:
    """Length of ``timeframe`` in ms; ValueError naming the allowed ones otherwise."""
    try:
        return TIMEFRAMES[timeframe]
    except (KeyError, TypeError):
        raise ValueError(
            f"timeframe must be one of {', '.join(TIMEFRAMES)}, got {timeframe!r}"
        ) from None


def default_path(out_dir: Path | str, exchange: str, symbol: str, timeframe: str) -> Path:
    """Where ``download-data`` puts a series: ``data/binance_BTCUSDT_1m.csv``.

    The name is built only from safe characters, so a symbol like ``BTC/USDT`` or
    ``BTC/USDT:USDT`` can never turn into a path outside ``out_dir``."""
    interval_ms(timeframe)
    market = symbol.replace("/", "").replace(":", "")
    venue = exchange.strip().lower()
    for what, part in (("exchange", venue), ("symbol", market)):
        if not _NAME_PART.fullmatch(part):
            raise ValueError(f"{what} {part!r} is not usable in a file name")
    return Path(out_dir) / f"{venue}_{market}_{timeframe}.csv"


def download_ohlcv(
    exchange: OhlcvSource,
    symbol: str,
    *,
    timeframe: str = "1m",
    days: float,
    out: Path,
    now_ms: int,
    progress: Progress | None = None,
    page_limit: int = 1000,
    checkpoint_pages: int = DEFAULT_CHECKPOINT_PAGES,
) -> DownloadResult:
    """Fetch the closed ``timeframe`` candles of ``symbol`` overlapping
    ``[now_ms - days, now_ms)`` into ``out`` (see the module doc), resuming an existing
    file. ``page_limit`` is the ``limit`` asked per request (venues may answer fewer: MEXC
    500); ``progress`` is called after every request with ``(covered_ms, total_ms)``.

    Raises ValueError for a bad timeframe, days, page_limit or checkpoint_pages, DataError
    for an existing file that does not load, and whatever the exchange raises (after
    saving what was fetched before it)."""
    iv = interval_ms(timeframe)
    _check_limits(days, page_limit, checkpoint_pages)
    now_ms = int(now_ms)
    out = Path(out)
    start, end = _window(now_ms, days, iv)
    resume = _resume_point(out, symbol, iv, start)
    data = resume.data
    rows_before = len(data)
    dl = _Pager(exchange, symbol, timeframe, iv, page_limit, now_ms, resume.fetch_from, progress)
    written = _fetch_into(data, dl, out, checkpoint_pages)
    return DownloadResult(
        path=out,
        rows_before=rows_before,
        rows_added=len(data) - rows_before,
        first_ts=data.ts[0] if data.ts else None,
        last_ts=data.ts[-1] if data.ts else None,
        resumed=resume.resumed,
        pages=dl.count,
        window_start_ms=start,
        window_end_ms=end,
        missing_head_ms=data.ts[0] - start if data.ts and data.ts[0] > start else 0,
        skipped_rows=dl.skipped,
        written=written,
        notes=(*resume.notes, *_outcome_notes(data, dl, start, resumed=resume.resumed)),
    )


# --------------------------------------------------------------------------- internals


def _check_limits(days: float, page_limit: int, checkpoint_pages: int) -> None:
    """ValueError naming the first argument no download can be made with."""
    if isinstance(days, bool) or not isinstance(days, int | float) or not math.isfinite(days):
        raise ValueError(f"days must be a finite number > 0, got {days!r}")
    if days <= 0:
        raise ValueError(f"days must be > 0, got {days!r}")
    if page_limit < 1:
        raise ValueError(f"page_limit must be >= 1, got {page_limit}")
    if checkpoint_pages < 1:
        raise ValueError(f"checkpoint_pages must be >= 1, got {checkpoint_pages}")


def _window(now_ms: int, days: float, iv: int) -> tuple[int, int]:
    """``(start, end)`` on the venue's grid: the open time of the candle containing
    ``now - days`` and of the candle still running at ``now_ms``."""
    raw_start = now_ms - round(days * DAY_MS)
    return raw_start - raw_start % iv, now_ms - now_ms % iv


@dataclass(frozen=True, slots=True)
class _Resume:
    """Where a download starts: the candles already held (appended to in place), the
    first open time to ask for, and what to tell the user about the existing file."""

    data: Candles
    fetch_from: int
    resumed: bool
    notes: tuple[str, ...] = ()


def _resume_point(out: Path, symbol: str, iv: int, start: int) -> _Resume:
    """A new file starts at the window; an existing one right after its last candle."""
    data = _load_existing(out, symbol, iv)
    if data is None:
        return _Resume(Candles(symbol, [], [], [], [], [], []), start, resumed=False)
    # Continue from the file's end even if that is before the window: a hole in
    # the middle of a series would be worse for a backtest than extra history.
    notes: tuple[str, ...] = ()
    if data.ts[0] > start:
        notes = (
            f"{out.name} starts at {data.ts[0]}, after the window start {start}: "
            "the gap before its first row is not refetched (delete the file to get it)",
        )
    return _Resume(data, data.ts[-1] + iv, resumed=True, notes=notes)


def _fetch_into(data: Candles, dl: _Pager, out: Path, checkpoint_pages: int) -> bool:
    """Append every page to ``data``, rewriting ``out`` every ``checkpoint_pages`` pages,
    at the end, and on any exception (then re-raised); whether ``out`` was written."""
    written = False
    saved_rows, saved_at_page = len(data), 0
    try:
        for page in dl.pages():
            dl.skipped += _append(data, page, dl.start, dl.now_ms, dl.iv)
            if dl.count - saved_at_page >= checkpoint_pages and len(data) > saved_rows:
                write_csv(out, data)
                saved_rows, saved_at_page, written = len(data), dl.count, True
            dl.report(data.ts[-1] + dl.iv if data.ts else dl.start)
    except BaseException:
        if len(data) > saved_rows:
            _save_interrupted(out, data)
        raise
    if len(data) > saved_rows:
        write_csv(out, data)
        written = True
    return written


def _save_interrupted(out: Path, data: Candles) -> None:
    """Keep what an interrupted download fetched; a failure to do so is logged, not
    raised, so the exception that interrupted it is the one the caller sees."""
    try:
        write_csv(out, data)
        log.warning("download of %s interrupted: kept %d rows in %s", data.symbol, len(data), out)
    except Exception as exc:
        log.error("download of %s interrupted and %s could not be saved: %s", data.symbol, out, exc)


def _outcome_notes(data: Candles, dl: _Pager, start: int, *, resumed: bool) -> list[str]:
    """What the user should know about the fetch: no data, a late first candle, skipped
    rows, bridged empty stretches."""
    notes: list[str] = []
    if not data.ts:
        notes.append(
            f"no closed {dl.timeframe} candles for {dl.symbol} in the window: nothing written"
        )
    elif data.ts[0] > start and not resumed:
        notes.append(f"the venue has no {dl.symbol} candles before {data.ts[0]}")
    if dl.skipped:
        notes.append(f"{dl.skipped} row(s) with unusable prices were skipped")
    if dl.bridged:
        notes.append(f"{dl.bridged} empty stretch(es) bridged by searching for the next data")
    return notes


def _load_existing(out: Path, symbol: str, iv: int) -> Candles | None:
    """The file's candles, None if there is no file (or only a header); DataError if it
    is not a clean file of this timeframe. Nothing is ever written here."""
    if not out.exists():
        return None
    try:
        if out.is_file() and out.stat().st_size < 200:
            text = out.read_text(encoding="utf-8-sig").strip().lower()
            if text.replace(" ", "") in (",".join(HEADER), "timestamp," + ",".join(HEADER[1:])):
                return None
    except (OSError, UnicodeDecodeError):
        pass  # load_csv below names the problem

    def refuse_skip(message: str) -> None:
        raise DataError(message)

    try:
        candles = load_csv(out, symbol, on_skip=refuse_skip).to_lists()
    except DataError as exc:
        raise DataError(f"cannot resume {out}: {exc}; move or delete it") from None
    if len(candles) >= 2 and candles.interval_ms() != iv:
        raise DataError(
            f"cannot resume {out}: its candles are {candles.interval_ms() // 1000} s apart, "
            f"not {iv // 1000} s (another timeframe?); move or delete it"
        )
    return candles


def _usable(o: float, h: float, lo: float, c: float, v: float) -> bool:
    """The rules ``load_csv`` enforces, so the file written always loads again."""
    inf = math.inf
    return 0.0 < lo <= h < inf and lo <= o <= h and lo <= c <= h and 0.0 <= v < inf


def _append(
    data: Candles, page: Sequence[Sequence[float]], floor: int, now_ms: int, iv: int
) -> int:
    """Add the page's closed candles after the last one held; returns rows skipped as
    unusable. Out-of-order or repeated rows are dropped, so ``ts`` stays strictly
    increasing."""
    skipped = 0
    ts, opens, highs, lows, closes, vols = data.appendable()
    last = ts[-1] if ts else floor - 1
    for row in sorted(page, key=lambda r: r[0]):
        t = int(row[0])
        if t <= last or t < floor or t + iv > now_ms:
            continue  # seen, before the window, or not closed by now_ms
        o, h, lo, c, v = (float(x) for x in row[1:6])
        if not _usable(o, h, lo, c, v):
            skipped += 1
            continue
        ts.append(t)
        opens.append(o)
        highs.append(h)
        lows.append(lo)
        closes.append(c)
        vols.append(v)
        last = t
    return skipped


class _Pager:
    """Walks ``since`` from ``start`` to ``end`` one page at a time (see the module doc
    for the empty-page search)."""

    def __init__(
        self,
        exchange: OhlcvSource,
        symbol: str,
        timeframe: str,
        iv: int,
        limit: int,
        now_ms: int,
        start: int,
        progress: Progress | None,
    ) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.timeframe = timeframe
        self.iv = iv
        self.limit = limit
        self.now_ms = now_ms
        self.end = now_ms - now_ms % iv
        self.start = start
        self.progress = progress
        self.count = 0
        self.skipped = 0
        self.bridged = 0
        self._covered = start

    def fetch(self, since: int | None, limit: int | None = None) -> list[Sequence[float]]:
        rows = self.exchange.fetch_ohlcv(
            self.symbol, self.timeframe, since, self.limit if limit is None else limit
        )
        self.count += 1
        return [r for r in rows if len(r) >= 6]

    def report(self, covered_to: int) -> None:
        self._covered = max(self._covered, min(covered_to, self.end))
        if self.progress is not None:
            total = max(self.end - self.start, 0)
            self.progress(min(self._covered - self.start, total), total)

    def pages(self) -> Iterator[list[Sequence[float]]]:
        """Raw pages until the window end is reached or a page brings nothing new."""
        since = self.start
        while since + self.iv <= self.now_ms:  # else no candle from `since` has closed
            page = self.fetch(since)
            if not page:
                page = self.bridge(since)
            newest = max((int(r[0]) for r in page), default=None)
            if newest is None or newest < since:
                return  # nothing new: the venue has no more
            since = newest + self.iv
            yield page

    def bridge(self, since: int) -> list[Sequence[float]]:
        """``since`` gave an empty page. If the venue has a newer candle, binary-search
        the earliest ``since`` whose page is not empty and return that page."""
        newest = self.fetch(None, 1)
        self.report(since)
        latest = max((int(r[0]) for r in newest), default=None)
        if latest is None or latest <= since:
            return []  # really nothing after since
        lo, hi = since, latest  # page(lo) is empty; page(hi) holds at least `latest`
        found: list[Sequence[float]] = []
        while hi - lo > self.iv:
            mid = lo + (hi - lo) // 2 // self.iv * self.iv
            page = [r for r in self.fetch(mid) if int(r[0]) >= mid]
            self.report(since)
            if page:
                hi, found = mid, page
            else:
                lo = mid
        if not found:
            found = [r for r in self.fetch(hi) if int(r[0]) >= hi]
            self.report(since)
        if found:
            self.bridged += 1
        return found
