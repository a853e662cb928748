"""Exchange call latency, retries and rate-limit waits over real ccxt on the local Binance
server: the server's fault injection makes a call wait out a 429, fail after its retries,
and refuse an order; ``/metrics`` shows each by method and outcome, and the adapter's
retry counts as the scrape reads them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from fsmtrader.control.metrics import Metrics
from fsmtrader.control.reads import BookReader
from fsmtrader.errors import ExchangeError, InvalidOrder
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.exchange.timed import CallStats, TimedExchange
from fsmtrader_testing.metrics_text import parse

from simserver_support import KEY, SECRET, Sim, running_server

pytestmark = pytest.mark.timeout(60)
SYM = "BTC/USDT"
ACCOUNT = "GET /api/v3/account"


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    with running_server("binance") as s:
        yield s


@pytest.fixture
def adapter(sim: Sim) -> Iterator[CcxtExchange]:
    options = CcxtOptions(
        "binance",
        api_key=KEY,
        api_secret=SECRET,
        base_url=sim.base_url,
        rate_limit=False,
        retry_attempts=3,
        retry_base_s=0.01,
        max_wait_s=2.0,
    )
    with CcxtExchange(options, inline=True) as ex:
        yield ex


def test_latency_outcomes_retries_and_rate_limit_waits(
    sim: Sim, adapter: CcxtExchange, tmp_path: Path
) -> None:
    stats = CallStats()
    ex = TimedExchange(adapter, stats)
    # No state database here: the book gauges cannot be read, and that is counted (and
    # logged), never raised into the scrape.
    missing = tmp_path / "none.db"
    metrics = Metrics(
        status=lambda: BookReader(missing, tmp_path).status(0),
        balance=lambda: BookReader(missing, tmp_path).balance(),
        calls=stats,
        retries=adapter.retry_stats,
    )
    ex.load_markets()
    sim.fault(ACCOUNT, "rate_limit", retry_after_s=1)  # the server sends whole seconds
    t0 = time.monotonic()
    assert "USDT" in ex.fetch_balance()  # waited out the 429, then answered
    assert time.monotonic() - t0 >= 1.0
    sim.fault(ACCOUNT, "unavailable", times=3)
    with pytest.raises(ExchangeError) as failed:
        ex.fetch_balance()  # three attempts, all 503
    sim.fault("POST /api/v3/order", "reject", reason="min_notional")
    with pytest.raises(InvalidOrder):
        ex.create_order(SYM, "buy", "limit", Decimal("0.001"), Decimal("100"), "GTC", "fsmx1")
    samples = parse(metrics.render()[0])

    counts = {
        (dict(k)["method"], dict(k)["outcome"]): v
        for k, v in samples["fsmtrader_exchange_call_seconds_count"].items()
    }
    error = type(failed.value).__name__
    assert counts == {
        ("load_markets", "ok"): 1,
        ("fetch_balance", "ok"): 1,
        ("fetch_balance", error): 1,
        ("create_order", "InvalidOrder"): 1,
    }
    slow = next(
        v
        for k, v in samples["fsmtrader_exchange_call_seconds_sum"].items()
        if dict(k) == {"method": "fetch_balance", "outcome": "ok"}
    )
    assert slow >= 1.0  # the wait is inside the call the engine made
    buckets = {
        float(dict(k)["le"]): v
        for k, v in samples["fsmtrader_exchange_call_seconds_bucket"].items()
        if dict(k)["method"] == "fetch_balance" and dict(k)["outcome"] == "ok"
    }
    assert buckets[0.5] == 0 and buckets[float("inf")] == 1
    retries = {dict(k)["action"]: v for k, v in samples["fsmtrader_exchange_retries_total"].items()}
    assert retries == {"fetch_balance": 1 + 2}  # one after the 429, two after the 503s
    assert samples["fsmtrader_rate_limit_waits_total"][()] == 1
    assert samples["fsmtrader_rate_limit_wait_seconds_total"][()] >= 1.0
    assert adapter.retry_stats()["retries"] == {"fetch_balance": 3}
    assert samples["fsmtrader_book_read_errors_total"][()] == 1
    assert "fsmtrader_symbols" not in samples  # no books, no made-up gauges
