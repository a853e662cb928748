"""Walking a venue's order or trade history within its rules, every page of it.

Binance's allOrders / myTrades answer at most ``limit`` rows (1000) and refuse a
startTime..endTime span over 24 hours (-1127); past a full page they continue from an
id (``orderId`` >= n, ``fromId`` >= n, without times). We continue from the last id
seen, inclusive (one row of overlap, deduplicated): it is an id the venue certainly
knows, so no reading of "an id that does not exist" can restart the history. MEXC has
no id cursor: a full page continues from the last row's time, within windows of at
most 7 days, and its myTrades pages hold 100. One walk: from ``since`` to now in
windows the venue allows, each window paged until a short page, rows deduplicated by
id. Every step must advance (a later window, a larger id, a later time): one that
cannot raises ExchangeError, so a venue that keeps answering the same full page never
loops us forever.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from fsmtrader.errors import ExchangeError

T = TypeVar("T")
# A walk ends this far past our clock, so a venue clock slightly ahead of ours loses no row.
CLOCK_SKEW_MS: Final = 60_000


def walk_end_ms() -> int:
    return int(time.time() * 1000) + CLOCK_SKEW_MS


@dataclass(frozen=True, slots=True)
class Row(Generic[T]):
    """One history entry as the walk needs it: its venue id and time, and the value."""

    id: str
    timestamp: int
    value: T


# (startTime or None, endTime or None, extra wire params) -> one page, as the venue gave
# it: None for a row that could not be read (it still counts towards a full page).
Page = list[Row[T] | None]
Fetch = Callable[[int | None, int | None, dict[str, Any]], Awaitable[Page[T]]]


@dataclass(frozen=True, slots=True)
class Paging:
    """One endpoint's rules: page size, the longest time window, the id cursor's wire
    name (None: the venue has none, pages continue by time)."""

    limit: int
    window_ms: int
    cursor: str | None

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_ms < 1:
            raise ValueError("history paging needs limit >= 1 and window_ms >= 1")
        if self.cursor is not None and self.limit < 2:
            raise ValueError("an id cursor pages by the last id, inclusive: limit >= 2")


class _Seen(Generic[T]):
    def __init__(self, since: int | None) -> None:
        self.rows: dict[str, Row[T]] = {}
        self.since = since

    def add(self, rows: Page[T]) -> None:
        for row in rows:
            if row is not None and (self.since is None or row.timestamp >= self.since):
                self.rows[row.id] = row

    def values(self) -> list[T]:
        ordered = sorted(self.rows.values(), key=lambda r: (r.timestamp, _id_order(r.id)))
        return [r.value for r in ordered]


def _id_order(row_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order, others after them in text order."""
    return (0, int(row_id), "") if row_id.isdigit() else (1, 0, row_id)


async def walk(
    fetch: Fetch[T], paging: Paging, since: int | None, now_ms: int, what: str
) -> list[T]:
    """Every row from ``since`` (None: from the first id, with an id cursor) to
    ``now_ms``, oldest first, each once."""
    seen: _Seen[T] = _Seen(since)
    if since is None:
        if paging.cursor is None:
            raise ValueError(f"{what}: a walk without an id cursor needs a start time")
        await _by_id(fetch, paging, 0, seen, what)
        return seen.values()
    start = since
    while start <= now_ms:
        end = min(start + paging.window_ms - 1, now_ms)
        if await _window(fetch, paging, start, end, seen, what):
            break  # an id walk went on to the newest row
        start = end + 1
    return seen.values()


async def _window(
    fetch: Fetch[T], paging: Paging, start: int, end: int, seen: _Seen[T], what: str
) -> bool:
    """Page one window; True when it handed over to the id cursor (which reaches now)."""
    page_start = start
    while True:
        rows = await fetch(page_start, end, {})
        seen.add(rows)
        if len(rows) < paging.limit:
            return False
        if paging.cursor is not None:
            await _by_id(fetch, paging, _next_id(rows, what), seen, what)
            return True
        last = max((r.timestamp for r in rows if r is not None), default=page_start)
        if last <= page_start:
            raise ExchangeError(
                f"{what}: more than {paging.limit} rows at {page_start} ms; "
                "the time cursor cannot advance"
            )
        page_start = last  # inclusive: rows at this time again, deduplicated by id


async def _by_id(fetch: Fetch[T], paging: Paging, first: int, seen: _Seen[T], what: str) -> None:
    cursor = first
    while True:
        rows = await fetch(None, None, {paging.cursor or "": str(cursor)})
        seen.add(rows)
        if len(rows) < paging.limit:
            return
        following = _next_id(rows, what)
        if following <= cursor:
            raise ExchangeError(f"{what}: the id cursor did not advance past {cursor}")
        cursor = following


def _next_id(rows: Page[Any], what: str) -> int:
    """The cursor that continues after ``rows``: their largest id (inclusive)."""
    try:
        return max(int(r.id) for r in rows if r is not None)
    except ValueError:  # a non-numeric id, or no readable row
        raise ExchangeError(f"{what}: an id cursor needs numeric ids") from None
