"""Metrics' parts on their own: the timing wrapper over the real simulated exchange, the
histograms, push lag, the web side's counters, a record that cannot be counted, and the
exposition's names (prefix, ``_total``, no family twice)."""

from __future__ import annotations

import inspect
import math
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from fsmtrader.clock import SimClock
from fsmtrader.control.feed import RecordFeed
from fsmtrader.control.metrics import Metrics
from fsmtrader.control.reads import BookReader
from fsmtrader.errors import OrderNotFound
from fsmtrader.exchange.ccxt_adapter.retry import RetryStats
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.exchange.timed import CallStats, Histograms, TimedExchange
from fsmtrader.exchange.types import Exchange
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.harness import BTC, T0
from fsmtrader_testing.metrics_text import parse

SYM = "BTC/USDT"
D = Decimal


@pytest.fixture
def sim() -> SimExchange:
    ex = SimExchange({SYM: BTC}, {"USDT": D(1000)}, clock=SimClock(T0))
    ex.update_market(SYM, T0, 50_000.0, 50_000.0, 50_000.0, 1e6)
    return ex


@pytest.fixture
def metrics(tmp_path: Path) -> Iterator[Metrics]:
    """Metrics on an empty but real state database (no symbols, no money yet)."""
    db = tmp_path / "fsmtrader.db"
    SqliteStore(db).close()
    reader = BookReader(db, tmp_path)
    yield Metrics(
        status=lambda: reader.status(T0),
        balance=reader.balance,
        calls=CallStats(),
        retries=RetryStats().snapshot,
    )
    reader.close()


def protocol_methods() -> set[str]:
    return {n for n, v in vars(Exchange).items() if inspect.isfunction(v) and not n.startswith("_")}


def test_timed_exchange_covers_the_protocol_and_records_each_call(sim: SimExchange) -> None:
    stats = CallStats()
    ex = TimedExchange(sim, stats)
    assert protocol_methods() <= {n for n in dir(ex) if not n.startswith("_")}
    assert ex.load_markets().keys() == {SYM}
    assert ex.fetch_ticker(SYM).ask > 0
    assert ex.fetch_balance()["USDT"].free == 1000
    info = ex.create_order(SYM, "buy", "limit", D("0.001"), D("49000"), "GTC", "fsm-t1")
    assert ex.fetch_order(info.id, SYM).client_order_id == "fsm-t1"
    assert ex.fetch_order_by_client_id("fsm-t1", SYM).id == info.id
    assert [o.id for o in ex.fetch_open_orders(SYM)] == [info.id]
    assert ex.cancel_order(info.id, SYM).status == "canceled"
    assert ex.fetch_my_trades(SYM) == ex.fetch_order_trades(info.id, SYM) == []
    assert [o.id for o in ex.fetch_orders(SYM, 0)] == [info.id]
    with pytest.raises(OrderNotFound) as missing:
        ex.fetch_order("no-such-order", SYM)
    assert missing.value is not None
    snap = stats.snapshot()
    assert set(snap) == {(m, "ok") for m in protocol_methods()} | {("fetch_order", "OrderNotFound")}
    assert snap[("fetch_order", "ok")].count == 1 and stats.count("fetch_order") == 2
    assert all(s.sum_s > 0 and s.buckets[-1] == s.count for s in snap.values())


def test_the_wrapper_adds_about_a_microsecond(sim: SimExchange) -> None:
    timed = TimedExchange(sim, CallStats())
    n = 3000

    def per_call(fn: object) -> float:
        best = math.inf
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                fn(SYM)  # type: ignore[operator]
            best = min(best, (time.perf_counter() - t0) / n)
        return best

    overhead = per_call(timed.fetch_ticker) - per_call(sim.fetch_ticker)
    assert overhead < 20e-6, f"{overhead * 1e6:.1f} us per call"


def test_histogram_buckets_are_inclusive_cumulative_and_thread_safe() -> None:
    h = Histograms((0.1, 0.2, 0.5))
    for v in (0.1, 0.15, 0.2, 0.7):
        h.observe(("a",), v)
    (series,) = h.snapshot().values()
    assert series.buckets == (1, 3, 3) and series.count == 4
    assert series.sum_s == pytest.approx(1.15)
    with pytest.raises(ValueError):
        Histograms((0.2, 0.1))
    stats = CallStats()
    threads = [
        threading.Thread(target=lambda: [stats.record("m", "ok", 0.001) for _ in range(5000)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.count("m", "ok") == 20_000


def test_push_lag_buckets_fine_below_200_ms(metrics: Metrics) -> None:
    metrics.observe_push_lag([5, 150, 199.9, 200, 250, -0.3, math.nan, math.inf])
    s = parse(metrics.render()[0])
    buckets = {float(dict(k)["le"]): v for k, v in s["fsmtrader_push_lag_seconds_bucket"].items()}
    assert sum(1 for le in buckets if le < 0.2) >= 12  # resolution where the bar is
    assert buckets[0.001] == 1  # -0.3 ms counts as 0
    assert buckets[0.005] == 2
    assert buckets[0.2] == 5
    assert buckets[float("inf")] == s["fsmtrader_push_lag_seconds_count"][()] == 6
    assert s["fsmtrader_push_lag_seconds_sum"][()] == pytest.approx(0.8049, abs=1e-6)


def test_auth_failures_streams_and_empty_books(metrics: Metrics) -> None:
    metrics.auth_failure("/api/v1/status")
    metrics.auth_failure("/api/v1/status")
    metrics.auth_failure("/wp-admin/setup.php")
    metrics.auth_failure("/api/v1/../../etc/passwd")
    metrics.stream_clients(3)
    metrics.stream_dropped()
    s = parse(metrics.render()[0])
    auth = {dict(k)["path"]: v for k, v in s["fsmtrader_api_auth_failures_total"].items()}
    assert auth == {"/api/v1/status": 2, "other": 2}
    assert s["fsmtrader_stream_clients"][()] == 3
    assert s["fsmtrader_stream_dropped_total"][()] == 1
    assert s["fsmtrader_open_positions"][()] == 0 and s["fsmtrader_halted"][()] == 0
    assert s["fsmtrader_book_read_errors_total"][()] == 0
    assert s["fsmtrader_rate_limit_waits_total"][()] == 0


def test_a_record_that_cannot_be_counted_is_logged_and_counted_never_raised(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    feed = RecordFeed()
    feed.listen(metrics.observe)
    phase = {"kind": "phase", "ts": 1, "symbol": SYM, "from": "IDLE", "to": "ENTRY_EVAL"}
    fill = {"kind": "fill", "side": "buy", "price": "1", "amount": "2"}
    feed.on_committed([(1, phase), (2, fill)])  # type: ignore[list-item]
    assert feed.failures == 0
    s = parse(metrics.render()[0])
    assert s["fsmtrader_observe_errors_total"][()] == 1  # the phase record has no event
    assert s["fsmtrader_records_total"] == {(("kind", "phase"),): 1, (("kind", "fill"),): 1}
    # a fill record without a mode (saved before per-symbol modes) counts under mode ""
    assert s["fsmtrader_fills_quote_total"] == {(("mode", ""), ("side", "buy")): 2.0}
    assert "cannot count record" in caplog.text


def test_names_are_prefixed_unique_and_counters_end_in_total(metrics: Metrics) -> None:
    body, ctype = metrics.render()
    assert ctype.startswith("text/plain; version=0.0.4")
    text = body.decode()
    types = [line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE")]
    names = [name for name, _ in types]
    assert len(names) == len(set(names)) and all(n.startswith("fsmtrader_") for n in names)
    assert all(n.endswith("_total") for n, kind in types if kind == "counter")
    assert "_created" not in text  # counters of our own collectors carry no creation series
    assert not [n for n, kind in types if kind == "histogram" and not n.endswith("_seconds")]
