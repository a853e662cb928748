"""The history walk against venue rules stated as a page source: every row once, oldest
first, never a request the venue refuses, never an endless loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmtrader.errors import ExchangeError
from fsmtrader.exchange.ccxt_adapter.history import Paging, Row, walk

DAY = 86_400_000


class StrictVenue:
    """Binance's allOrders rules (or MEXC's: no cursor, 7-day windows), refusing what
    the venue refuses, over rows with ascending ids and non-decreasing times."""

    def __init__(self, times: list[int], paging: Paging) -> None:
        self.rows = [Row(str(i + 1), t, i + 1) for i, t in enumerate(sorted(times))]
        self.paging = paging
        self.calls = 0

    async def fetch(self, start: int | None, end: int | None, extra: dict[str, Any]) -> Any:
        self.calls += 1
        limit, cursor = self.paging.limit, self.paging.cursor
        if self.calls > 10_000:
            raise AssertionError("the walk does not end")
        if extra:
            assert set(extra) == {cursor} and start is None and end is None  # -1128
            first = int(extra[cursor])
            return [r for r in self.rows if int(r.id) >= first][:limit]
        assert start is not None and end is not None
        if end - start > self.paging.window_ms:
            raise ExchangeError("-1127 More than 24 hours between startTime and endTime.")
        return [r for r in self.rows if start <= r.timestamp <= end][:limit]


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.integers(min_value=0, max_value=10 * DAY), max_size=60),
    limit=st.integers(min_value=2, max_value=7),
    cursor=st.sampled_from(["orderId", None]),
    since=st.integers(min_value=0, max_value=5 * DAY),
)
def test_every_row_once_within_the_rules(
    times: list[int], limit: int, cursor: str | None, since: int
) -> None:
    paging = Paging(limit, DAY if cursor else 7 * DAY, cursor)
    venue = StrictVenue(times, paging)
    want = [r.value for r in venue.rows if r.timestamp >= since]
    try:
        got = asyncio.run(walk(venue.fetch, paging, since, 11 * DAY, "test"))
    except ExchangeError as exc:
        # Only a time cursor can be stuck: more rows than a page in one millisecond.
        assert cursor is None and "cannot advance" in str(exc)
        assert max(times.count(t) for t in times) >= limit
        return
    assert got == want


def test_a_cursor_that_does_not_advance_stops() -> None:
    async def same_page(start: int | None, end: int | None, extra: dict[str, Any]) -> Any:
        return [Row("5", 100, "a"), Row("5", 100, "a")]

    with pytest.raises(ExchangeError, match="did not advance"):
        asyncio.run(walk(same_page, Paging(2, DAY, "fromId"), 0, DAY, "test"))
    with pytest.raises(ExchangeError, match="cannot advance"):
        asyncio.run(walk(same_page, Paging(2, DAY, None), 0, DAY, "test"))
    with pytest.raises(ValueError, match="limit >= 2"):
        Paging(1, DAY, "fromId")


@pytest.mark.parametrize("cursor", ["orderId", None])
def test_rows_on_the_window_edges(cursor: str | None) -> None:
    since, window = 1_000, DAY if cursor else 7 * DAY
    edges = [since, since + window - 1, since + window, since + 2 * window, since + 3 * window - 1]
    paging = Paging(5, window, cursor)
    venue = StrictVenue([since - 1, *edges], paging)
    got = asyncio.run(walk(venue.fetch, paging, since, since + 4 * window, "test"))
    assert got == [2, 3, 4, 5, 6]  # everything from since on, the row before it not
