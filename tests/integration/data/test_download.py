"""download-data against the local Binance/MEXC server through the real ccxt adapter.

Each test starts :mod:`fsmtrader_testing.simserver` on a free loopback port in a background
thread (``simserver.threaded.serving_in_thread``) and logs every request the server
answers, so "only the newer rows were fetched" is the venue's word. Expected rows
are computed from the window (every closed minute overlapping ``[now - days, now)``) and
from the server's own history start, never from the downloader.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from fsmtrader.download import (
    DownloadResult,
    default_path,
    download_ohlcv,
)
from fsmtrader.errors import DataError
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.feeds.csv_replay import load_csv
from fsmtrader_testing.simserver import create_app
from fsmtrader_testing.simserver.threaded import serving_in_thread

KEY = "dummy-public-only-key"
SECRET = "dummy-public-only-secret"
BTC = "BTC/USDT"
MIN = 60_000
DAY = 24 * 60 * MIN

pytestmark = pytest.mark.timeout(120)


# --------------------------------------------------------------------------- harness


@dataclass
class Sim:
    """A running simulated exchange plus the log of klines requests it answered."""

    flavour: str
    base_url: str
    requests: list[dict[str, str]] = field(default_factory=list)

    def klines_requests(self) -> list[dict[str, str]]:
        return [r for r in self.requests if r["path"].endswith("/klines")]

    def raw_klines(self, **query: Any) -> list[list[Any]]:
        """The venue's own answer (no ccxt in between): the test oracle."""
        market = BTC.replace("/", "")
        url = f"{self.base_url}/api/v3/klines?symbol={market}&" + "&".join(
            f"{k}={v}" for k, v in query.items()
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=10) as resp:
            rows: list[list[Any]] = json.loads(resp.read().decode())
        return rows

    def history_start(self) -> int:
        """Open time of the server's first candle."""
        return int(self.raw_klines(interval="1m", startTime=0, limit=1)[0][0])


@contextmanager
def running_server(flavour: str) -> Iterator[Sim]:
    """The server on 127.0.0.1:<free port>, in a thread with its own loop, frozen prices."""
    app = create_app(flavour=flavour, api_key=KEY, api_secret=SECRET, speed=0)  # type: ignore[arg-type]
    log: list[dict[str, str]] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        log.append({"path": request.path, **request.query})

    app.on_response_prepare.append(record)
    with serving_in_thread(app, f"sim-{flavour}") as base_url:
        yield Sim(flavour, base_url, log)


@contextmanager
def adapter(sim: Sim) -> Iterator[CcxtExchange]:
    ex = CcxtExchange(
        CcxtOptions(
            sim.flavour,  # type: ignore[arg-type]
            api_key=KEY,
            api_secret=SECRET,
            base_url=sim.base_url,
            timeout_ms=5000,
            retry_base_s=0.01,
        )
    )
    try:
        ex.load_markets()
        yield ex
    finally:
        ex.close()


@pytest.fixture
def bsim() -> Iterator[Sim]:
    with running_server("binance") as sim:
        yield sim


@pytest.fixture
def bx(bsim: Sim) -> Iterator[CcxtExchange]:
    with adapter(bsim) as ex:
        bsim.requests.clear()
        yield ex


def now_ms() -> int:
    return int(time.time() * 1000)


def floor_min(ms: int) -> int:
    return ms - ms % MIN


def expected_ts(now: int, days: float, first_available: int = 0) -> list[int]:
    """Open times of every 1m candle overlapping [now - days, now) that has closed by
    ``now`` (and that the venue has)."""
    start = floor_min(now - round(days * DAY))
    return list(range(max(start, first_available), floor_min(now), MIN))


def check_file(path: Path, ts: list[int]) -> None:
    candles = load_csv(path, BTC)
    assert candles.ts.tolist() == ts
    assert all(b > a for a, b in pairwise(candles.ts))  # strictly increasing, no dups
    assert len(set(candles.ts)) == len(candles.ts)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- binance


def test_one_day_of_1m_is_every_closed_minute(bx: CcxtExchange, bsim: Sim, tmp_path: Path) -> None:
    now = now_ms()
    out = tmp_path / "btc.csv"
    seen: list[tuple[int, int]] = []
    res = download_ohlcv(
        bx, BTC, days=1, out=out, now_ms=now, progress=lambda d, t: seen.append((d, t))
    )
    want = expected_ts(now, 1)
    assert len(want) == 1440
    check_file(out, want)
    assert (res.rows_before, res.rows_added, res.resumed) == (0, 1440, False)
    assert (res.first_ts, res.last_ts) == (want[0], want[-1])
    assert res.last_ts is not None and res.last_ts + MIN <= now  # the open candle is dropped
    assert res.path == out and res.written and res.missing_head_ms == 0 and not res.notes
    # 1,000 + 440 rows: two requests, and no third one past the end of the window.
    assert res.pages == 2 == len(bsim.klines_requests())
    assert [int(r["startTime"]) for r in bsim.klines_requests()] == [want[0], want[1000]]
    # progress: (covered_ms, total_ms), monotone, ending at the whole window
    total = floor_min(now) - want[0]
    assert [t for _, t in seen] == [total] * len(seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == total
    # the values are the venue's: spot-check against its raw answer
    raw = bsim.raw_klines(interval="1m", startTime=want[700], limit=1)[0]
    row = load_csv(out, BTC)
    assert (row.ts[700], row.open[700], row.close[700]) == (raw[0], float(raw[1]), float(raw[4]))
    assert leftovers(tmp_path) == []


def test_resume_fetches_only_newer_rows_and_matches_a_fresh_download(
    bx: CcxtExchange, bsim: Sim, tmp_path: Path
) -> None:
    n2 = floor_min(now_ms())
    n1 = n2 - 6 * 60 * MIN
    out = tmp_path / "btc.csv"
    first = download_ohlcv(bx, BTC, days=1, out=out, now_ms=n1)
    assert first.rows_added == 1440
    bsim.requests.clear()

    # Same window start, six hours later: 1.25 days.
    res = download_ohlcv(bx, BTC, days=1.25, out=out, now_ms=n2)
    assert res.resumed and (res.rows_before, res.rows_added) == (1440, 360)
    asked = [int(r["startTime"]) for r in bsim.klines_requests()]
    assert asked == [n1] and res.pages == 1  # only what came after the file's last row
    want = expected_ts(n2, 1.25)
    check_file(out, want)
    assert res.missing_head_ms == 0 and not res.notes

    fresh = tmp_path / "fresh.csv"
    full = download_ohlcv(bx, BTC, days=1.25, out=fresh, now_ms=n2)
    assert (full.rows_before, full.rows_added, full.resumed) == (0, 1800, False)
    assert fresh.read_bytes() == out.read_bytes()

    # Nothing new: no request, the file is not rewritten.
    bsim.requests.clear()
    mtime = out.stat().st_mtime_ns
    again = download_ohlcv(bx, BTC, days=1.25, out=out, now_ms=n2 + 30_000)
    assert (again.rows_added, again.pages, again.written) == (0, 0, False)
    assert bsim.klines_requests() == [] and out.stat().st_mtime_ns == mtime


def test_resume_does_not_refetch_a_gap_before_the_first_row_and_says_so(
    bx: CcxtExchange, tmp_path: Path
) -> None:
    now = floor_min(now_ms())
    out = tmp_path / "btc.csv"
    download_ohlcv(bx, BTC, days=0.5, out=out, now_ms=now - 60 * MIN)
    res = download_ohlcv(bx, BTC, days=1, out=out, now_ms=now)
    assert res.resumed and (res.rows_before, res.rows_added) == (720, 60)
    assert res.missing_head_ms == 12 * 60 * MIN - 60 * MIN
    assert res.first_ts == now - 60 * MIN - 720 * MIN
    assert any("not refetched" in n for n in res.notes)
    check_file(out, list(range(now - 780 * MIN, now, MIN)))


class Interrupted(Exception):
    pass


def test_an_interrupted_download_leaves_a_valid_file_that_a_resume_completes(
    bx: CcxtExchange, tmp_path: Path
) -> None:
    now = floor_min(now_ms()) + 17_000  # not on the minute: the open candle is dropped
    out = tmp_path / "btc.csv"
    calls = 0

    def stop_after_two_pages(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        download_ohlcv(
            bx, BTC, days=1, out=out, now_ms=now, page_limit=200, progress=stop_after_two_pages
        )
    want = expected_ts(now, 1)
    check_file(out, want[:400])  # both pages were kept, nothing else
    assert leftovers(tmp_path) == []

    res = download_ohlcv(bx, BTC, days=1, out=out, now_ms=now, page_limit=200)
    assert res.resumed and (res.rows_before, res.rows_added) == (400, 1040)
    assert res.pages == math.ceil(1040 / 200)
    check_file(out, want)
    fresh = tmp_path / "fresh.csv"
    download_ohlcv(bx, BTC, days=1, out=fresh, now_ms=now)
    assert fresh.read_bytes() == out.read_bytes()


def test_checkpoints_are_written_every_n_pages(bx: CcxtExchange, tmp_path: Path) -> None:
    """What a hard kill would find on disk: the last checkpoint, a valid file."""
    now = floor_min(now_ms())
    out = tmp_path / "btc.csv"
    on_disk: list[int] = []

    def look(done: int, total: int) -> None:
        on_disk.append(len(load_csv(out, BTC)) if out.exists() else 0)

    download_ohlcv(
        bx, BTC, days=1, out=out, now_ms=now, page_limit=100, checkpoint_pages=3, progress=look
    )
    assert on_disk[:9] == [0, 0, 300, 300, 300, 600, 600, 600, 900]
    assert len(load_csv(out, BTC)) == 1440


H = b"timestamp_ms,open,high,low,close,volume\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"this is not a candle file\n", "unrecognised header"),
        (H + b"60000,1,2,0.5,1.5\n", "expected 6 columns"),
        (H + b"120000,1,2,0.5,1.5,3\n60000,1,2,0.5,1.5,3\n", "not after the previous one"),
        (H + b"60000,0,2,0.5,1.5,3\n", "open price is 0.0"),
        (H + b"0,1,2,0.5,1.5,3\n300000,1,2,0.5,1.5,3\n600000,1,2,0.5,1.5,3\n", "not 60 s"),
        (H + b"60000,1,2,0.5,1.5,3\n\xff\xfe\x00\n", "not a UTF-8 text file"),
    ],
    ids=["garbage", "short-row", "out-of-order", "zero-price", "other-timeframe", "binary"],
)
def test_a_corrupt_existing_file_is_refused_and_left_untouched(
    bx: CcxtExchange, bsim: Sim, tmp_path: Path, content: bytes, problem: str
) -> None:
    out = tmp_path / "btc.csv"
    out.write_bytes(content)
    before = out.stat().st_mtime_ns
    with pytest.raises(DataError) as err:
        download_ohlcv(bx, BTC, days=1, out=out, now_ms=now_ms())
    assert str(out) in str(err.value) and problem in str(err.value)
    assert out.read_bytes() == content and out.stat().st_mtime_ns == before
    assert bsim.klines_requests() == [] and leftovers(tmp_path) == []


# --------------------------------------------------------------------------- MEXC


def test_mexc_small_download_in_pages_of_500(tmp_path: Path) -> None:
    with running_server("mexc") as sim, adapter(sim) as ex:
        now = now_ms()
        out = tmp_path / "mexc.csv"
        sim.requests.clear()
        res = download_ohlcv(ex, BTC, days=0.5, out=out, now_ms=now)
        want = expected_ts(now, 0.5)
        check_file(out, want)
        assert res.rows_added == 720
        # MEXC answers at most 500 per request (ccxt also sends a 500-candle endTime)
        assert res.pages == 2 == len(sim.klines_requests())


def test_mexc_window_before_the_listing_is_bridged_not_ended(tmp_path: Path) -> None:
    """ccxt asks MEXC for [since, since + 500 candles) only; before the first candle the
    answer is empty although later candles exist. The download must go on."""
    with running_server("mexc") as sim, adapter(sim) as ex:
        first = sim.history_start()
        now = now_ms()
        out = tmp_path / "mexc.csv"
        res = download_ohlcv(ex, BTC, days=2.5, out=out, now_ms=now)
        want = expected_ts(now, 2.5, first_available=first)
        assert floor_min(now - round(2.5 * DAY)) < first  # the window starts before history
        check_file(out, want)
        assert res.first_ts == first and res.missing_head_ms == first - res.window_start_ms
        assert any("bridged" in n for n in res.notes)
        assert res.pages < len(want) / 500 + 25  # a binary search, not a walk


# --------------------------------------------------------------------------- edge cases


class FakeVenue:
    """A misbehaving venue: overlapping, repeated, unsorted pages and an open candle."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.calls: list[int | None] = []

    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None
    ) -> list[tuple[int, float, float, float, float, float]]:
        self.calls.append(since)
        start = max(self.first, (since or self.first) - 3 * MIN)  # overlaps the last page
        ts = list(range(start, self.last + MIN, MIN))[: limit or 500]
        rows = [(t, 10.0, 11.0, 9.0, 10.5, 1.0) for t in ts]
        return list(reversed(rows + rows[:2]))  # newest first, with duplicates


def test_overlapping_unsorted_duplicate_pages_give_a_clean_file(tmp_path: Path) -> None:
    now = 1_000 * DAY + 30_000  # mid-minute
    venue = FakeVenue(first=1_000 * DAY - 100 * MIN, last=1_000 * DAY)  # last one is open
    out = tmp_path / "x.csv"
    res = download_ohlcv(venue, BTC, days=1, out=out, now_ms=now, page_limit=30)
    want = list(range(1_000 * DAY - 100 * MIN, 1_000 * DAY, MIN))
    check_file(out, want)
    assert res.rows_added == 100 and res.missing_head_ms == DAY - 100 * MIN
    assert any("no BTC/USDT candles before" in n for n in res.notes)


def test_a_venue_ignoring_since_does_not_loop_forever(tmp_path: Path) -> None:
    class Stuck:
        calls = 0

        def fetch_ohlcv(
            self,
            symbol: str,
            timeframe: str = "1m",
            since: int | None = None,
            limit: int | None = None,
        ) -> Sequence[Sequence[float]]:
            self.calls += 1
            return [(0, 1.0, 1.0, 1.0, 1.0, 0.0), (MIN, 1.0, 1.0, 1.0, 1.0, 0.0)]

    venue = Stuck()
    res = download_ohlcv(venue, BTC, days=1, out=tmp_path / "s.csv", now_ms=DAY, page_limit=2)
    assert res.rows_added == 2 and venue.calls == 2


def test_no_data_writes_nothing(tmp_path: Path) -> None:
    class Empty:
        def fetch_ohlcv(
            self,
            symbol: str,
            timeframe: str = "1m",
            since: int | None = None,
            limit: int | None = None,
        ) -> Sequence[Sequence[float]]:
            return []

    out = tmp_path / "none.csv"
    res = download_ohlcv(Empty(), BTC, days=1, out=out, now_ms=10 * DAY)
    assert (res.rows_added, res.first_ts, res.written) == (0, None, False)
    assert not out.exists() and any("nothing written" in n for n in res.notes)


def test_a_header_only_file_is_started_afresh(tmp_path: Path) -> None:
    out = tmp_path / "h.csv"
    out.write_text("timestamp_ms,open,high,low,close,volume\n")
    venue = FakeVenue(first=0, last=10 * DAY)
    res = download_ohlcv(venue, BTC, days=0.01, out=out, now_ms=10 * DAY)
    assert not res.resumed and res.rows_added == 15 and len(load_csv(out, BTC)) == 15


class NoCalls:
    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None
    ) -> Sequence[Sequence[float]]:
        raise AssertionError("validation must come before any request")


@pytest.mark.parametrize("timeframe", ["2m", "1M", "1w", "", "60"])
def test_bad_timeframe_names_the_allowed_ones(tmp_path: Path, timeframe: str) -> None:
    with pytest.raises(ValueError) as err:
        download_ohlcv(NoCalls(), BTC, timeframe=timeframe, days=1, out=tmp_path / "x", now_ms=0)
    assert "1m, 3m, 5m, 15m, 30m, 1h, 4h, 1d" in str(err.value)
    assert repr(timeframe) in str(err.value)
    with pytest.raises(ValueError, match="1m, 3m, 5m"):
        default_path("data", "binance", BTC, timeframe)


@pytest.mark.parametrize("days", [0, -1, math.nan, math.inf, -math.inf])
def test_days_must_be_positive_and_finite(tmp_path: Path, days: float) -> None:
    with pytest.raises(ValueError, match="days must be"):
        download_ohlcv(NoCalls(), BTC, days=days, out=tmp_path / "x", now_ms=DAY)
    assert not (tmp_path / "x").exists()


def test_default_path() -> None:
    assert default_path("data", "binance", BTC, "1m") == Path("data/binance_BTCUSDT_1m.csv")
    assert default_path(Path("d"), "MEXC", "ETH/USDT", "4h") == Path("d/mexc_ETHUSDT_4h.csv")
    assert default_path("d", "binance", "BTC/USDT:USDT", "1d").name == "binance_BTCUSDTUSDT_1d.csv"
    for bad in ("../../etc/x", "..", "BTC USDT", "", ".hidden/USDT", "BTC/USDT\n"):
        with pytest.raises(ValueError, match="file name"):
            default_path("data", "binance", bad, "1m")


def test_result_rows_property() -> None:
    r = DownloadResult(Path("x"), 3, 4, 0, 1, True, 1)
    assert r.rows == 7
