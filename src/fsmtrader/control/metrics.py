"""Prometheus metrics of a running bot, in their own registry.

Observability is a subscriber: the counters are incremented only from the committed
records the feed hands over (so they agree with the audit trail record for record), and
the gauges are read at scrape time from the read-only view of the books (``status()`` and
``balance()`` of a ``BookReader``), never from engine objects. Exchange call latency and
the adapter's retries come from their own thread-safe counters, read at scrape time too.
The engine thread's share is a few dictionary look-ups per record, and a failure in here
is logged and counted, never raised into the commit that published the record.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from fsmtrader.control.feed import FeedItem
from fsmtrader.control.metric_counts import PREFIX, Counts, RecordCounters, gauge
from fsmtrader.engine.monitor import is_stuck
from fsmtrader.engine.policy import TimeoutPolicy
from fsmtrader.exchange.timed import CallStats, Histograms
from fsmtrader.fsm.phases import Phase
from fsmtrader.orders.states import OrderState
from fsmtrader.state.symbol import SymbolState

log = logging.getLogger("fsmtrader.metrics")

#: Push lag buckets (seconds): fine below the 200 ms bar, coarse above it.
PUSH_LAG_BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.175,
    0.2,
    0.3,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Paths an unauthenticated request is counted under; anything else is "other", so a
#: scanner trying random paths cannot grow the label set.
_API_NAMES = (
    "health status orders trades balance profit daily ghosts reconcile alerts audit settings "
    "stream lag stopentry resume forceexit recover"
)
API_PATHS: frozenset[str] = frozenset(
    ["/", "/metrics", *(f"/api/v1/{name}" for name in _API_NAMES.split())]
)


def _dec(value: Any) -> Decimal:
    """A money field of the books' JSON (a Decimal string; None or "" is zero)."""
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


class _BookCollector:
    """Gauges read from the books at scrape time (the scraping thread)."""

    def __init__(
        self,
        status: Callable[[], dict[str, Any]],
        balance: Callable[[], dict[str, Any]],
        timeouts: TimeoutPolicy,
        failed: Callable[[], None],
    ) -> None:
        self._status = status
        self._balance = balance
        self._timeouts = timeouts
        self._failed = failed

    def collect(self) -> Iterator[Metric]:
        try:
            status = self._status()
            families = (
                self._status_families(status)
                + self._mode_families(status.get("by_mode", {}))
                + self._balance_families(self._balance())
            )
        except Exception:
            log.warning("metrics: reading the books failed", exc_info=True)
            self._failed()
            return
        yield from families

    @staticmethod
    def _mode_families(by_mode: Mapping[str, Mapping[str, Any]]) -> list[Metric]:
        """The status's per-mode totals (observe, paper, live: a canary's parts apart)."""
        symbols = GaugeMetricFamily(PREFIX + "mode_symbols", "Symbols by mode.", labels=["mode"])
        held = GaugeMetricFamily(
            PREFIX + "mode_open_positions", "Symbols holding a position, by mode.", labels=["mode"]
        )
        pnl = GaugeMetricFamily(
            PREFIX + "mode_unrealized_pnl_quote",
            "Unrealised PnL of the held symbols that have a last price, by mode.",
            labels=["mode"],
        )
        for mode, m in sorted(by_mode.items()):
            symbols.add_metric([mode], float(m["symbols"]))
            held.add_metric([mode], float(m["positions"]))
            pnl.add_metric([mode], float(_dec(m["unrealized_pnl"])))
        return [symbols, held, pnl]

    def _status_families(self, st: Mapping[str, Any]) -> list[Metric]:
        now = int(st["now_ms"])
        rows: list[Mapping[str, Any]] = list(st["symbols"])
        totals: Mapping[str, Any] = st["totals"]
        phases = GaugeMetricFamily(PREFIX + "symbols", "Symbols by phase.", labels=["phase"])
        by_phase = dict.fromkeys((p.value for p in Phase), 0)
        errors = GaugeMetricFamily(
            PREFIX + "symbol_consecutive_errors",
            "Consecutive faults of each symbol (reset when a trade completes).",
            labels=["symbol"],
        )
        stuck = positions = unknown = 0
        for row in rows:
            phase, held = Phase(row["phase"]), _dec(row.get("position"))
            by_phase[phase.value] += 1
            errors.add_metric([row["symbol"]], float(row.get("error_count") or 0))
            state = SymbolState(row["symbol"], phase, int(row["entered_ms"]))
            stuck += is_stuck(state, held, now, self._timeouts)
            positions += held > 0
            order = row.get("open_order") or {}
            unknown += order.get("state") == OrderState.UNKNOWN
        for name, n in by_phase.items():
            phases.add_metric([name], float(n))
        return [
            phases,
            errors,
            gauge("symbols_stuck", "Symbols far longer in a phase than any timeout.", float(stuck)),
            gauge("open_positions", "Symbols holding a position.", float(positions)),
            gauge(
                "open_orders_unknown", "Open orders whose outcome is unknown now.", float(unknown)
            ),
            gauge("open_orders", "Orders not over yet.", float(totals["open_orders"])),
            gauge(
                "unrealized_pnl_quote",
                "Unrealised PnL of the held symbols that have a last price.",
                float(_dec(totals["unrealized_pnl"])),
            ),
            gauge("halted", "1 while new entries are halted.", 1.0 if st["halted"] else 0.0),
            gauge(
                "entries_stopped",
                "1 while entries are stopped by a control.",
                1.0 if st["entries_stopped"] else 0.0,
            ),
        ]

    def _balance_families(self, b: Mapping[str, Any]) -> list[Metric]:
        return [
            gauge("cash_quote", "Free quote cash.", float(_dec(b["cash"]))),
            gauge(
                "reserved_quote", "Quote reserved for buys in flight.", float(_dec(b["reserved"]))
            ),
            gauge("reservations", "Buy reservations open.", float(len(b["reservations"]))),
            gauge(
                "exposure_quote",
                "Quote committed to open positions plus reservations.",
                float(_dec(b["exposure"])),
            ),
            gauge(
                "realized_pnl_quote",
                "Realised PnL of the closed trades.",
                float(_dec(b["realized_pnl"])),
            ),
        ]


class _ExchangeCollector:
    """Exchange call latency (``CallStats``) and the adapter's retries, at scrape time."""

    def __init__(
        self, calls: CallStats | None, retries: Callable[[], Mapping[str, Any]] | None
    ) -> None:
        self._calls = calls
        self._retries = retries

    def collect(self) -> Iterator[Metric]:
        if self._calls is not None:
            yield self._latency(self._calls)
        if self._retries is not None:
            yield from self._retry_families(self._retries())

    @staticmethod
    def _latency(calls: CallStats) -> Metric:
        return _histogram(
            "exchange_call_seconds",
            "Exchange call latency by method and outcome (ok or the error class).",
            ["method", "outcome"],
            calls,
        )

    @staticmethod
    def _retry_families(snap: Mapping[str, Any]) -> list[Metric]:
        retries = CounterMetricFamily(
            PREFIX + "exchange_retries",
            "Exchange calls tried again by the adapter, by action.",
            labels=["action"],
        )
        for action, n in sorted(dict(snap.get("retries", {})).items()):
            retries.add_metric([action], float(n))
        return [
            retries,
            CounterMetricFamily(
                PREFIX + "rate_limit_waits",
                "Retries that waited out a rate limit.",
                value=float(snap.get("rate_limit_waits", 0)),
            ),
            CounterMetricFamily(
                PREFIX + "rate_limit_wait_seconds",
                "Seconds spent waiting out rate limits.",
                value=float(snap.get("rate_limit_wait_seconds", 0.0)),
            ),
        ]


def _histogram(name: str, doc: str, labels: list[str], hist: Histograms) -> Metric:
    fam = HistogramMetricFamily(PREFIX + name, doc, labels=labels)
    bounds = [repr(float(b)) for b in hist.bounds]
    for key, series in sorted(hist.snapshot().items()):
        buckets = [*zip(bounds, series.buckets, strict=True), ("+Inf", series.count)]
        fam.add_metric(list(key), buckets, series.sum_s)
    return fam


class _WebCounters:
    """What the web side reports (its own thread): auth failures, push clients, drops,
    push lag, failed book reads of the scrape."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.auth = Counts(
            "api_auth_failures", "Requests refused for a missing or wrong token.", ["path"]
        )
        self.dropped = Counts("stream_dropped", "Push clients dropped as too slow.")
        self.book_errors = Counts("book_read_errors", "Scrapes that could not read the books.")
        self.tg_sent = Counts(
            "telegram_messages", "Telegram messages by kind and outcome.", ["kind", "outcome"]
        )
        self.tg_foreign = Counts(
            "telegram_foreign_updates", "Telegram updates from chats not configured (ignored)."
        )
        self.clients = 0
        self.lag = Histograms(PUSH_LAG_BUCKETS_S)

    def inc(self, counts: Counts, *key: str) -> None:
        with self.lock:
            counts.inc(*key)

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            copies = [
                (c, dict(c.values))
                for c in (self.auth, self.dropped, self.book_errors, self.tg_sent, self.tg_foreign)
            ]
            clients = self.clients
        for c, values in copies:
            yield c.family(values)
        yield gauge("stream_clients", "Push stream clients connected now.", float(clients))
        yield _histogram(
            "push_lag_seconds",
            "Commit of a record to its arrival in a dashboard (measured by the page).",
            [],
            self.lag,
        )


class Metrics:
    """The bot's metrics; ``render()`` is the body of ``GET /metrics``. ``timeouts`` are
    the engine's (what "stuck" is measured against; the defaults otherwise)."""

    def __init__(
        self,
        *,
        status: Callable[[], dict[str, Any]],
        balance: Callable[[], dict[str, Any]],
        calls: CallStats | None,
        retries: Callable[[], Mapping[str, Any]] | None,
        timeouts: TimeoutPolicy | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self._records = RecordCounters()
        self._web = web = _WebCounters()
        book = _BookCollector(
            status, balance, timeouts or TimeoutPolicy(), lambda: web.inc(web.book_errors)
        )
        for collector in (self._records, book, _ExchangeCollector(calls, retries), web):
            self.registry.register(collector)

    def observe(self, items: Sequence[FeedItem]) -> None:
        """Count a batch of committed records (a RecordFeed listener; never raises)."""
        rc = self._records
        with rc.lock:
            for item in items:
                try:
                    rc.count(item.record)
                except Exception:
                    log.warning("metrics: cannot count record %r", item.record, exc_info=True)
                    rc.errors.inc()
                rc.last_ms = max(rc.last_ms, item.committed_ms)

    def observe_push_lag(self, samples_ms: Sequence[float]) -> None:
        """Push lags a dashboard measured, in ms. A slightly negative lag (the page's
        clock read a hair before the server's) counts as zero; non-numbers are dropped."""
        for ms in samples_ms:
            value = float(ms)
            if math.isfinite(value):
                self._web.lag.observe((), max(value, 0.0) / 1000)

    def auth_failure(self, path: str) -> None:
        self._web.inc(self._web.auth, path if path in API_PATHS else "other")

    def stream_clients(self, n: int) -> None:
        with self._web.lock:
            self._web.clients = n

    def stream_dropped(self) -> None:
        self._web.inc(self._web.dropped)

    def telegram_message(self, kind: str, outcome: str) -> None:
        """A notification or reply: ``outcome`` is sent, dropped_full (the queue was full),
        dropped_rate (rate-limited), failed (retries gave up)."""
        self._web.inc(self._web.tg_sent, kind, outcome)

    def telegram_foreign(self) -> None:
        self._web.inc(self._web.tg_foreign)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of everything, and its content type (format
        0.0.4, which every Prometheus reads: all our names are plain legacy names)."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
