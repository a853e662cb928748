"""Rejections, ghosts, unknown outcomes and exchange errors, as ``/metrics`` counts them.

A real engine on the real simulated exchange with a real SQLite store, trading through
``TimedExchange`` over a ``FaultInjector``: the venue refuses orders (InvalidOrder,
InsufficientFunds), loses a create's answer (the order exists: UNKNOWN until a look-up finds
it), and the router gives up an intent it cannot pay for (a ghost before any send). The
counters are compared with the audit table of the database and with the router's own
counts; the call latency histogram with the calls the wrapper saw fail.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.control.feed import RecordFeed
from fsmtrader.control.metrics import Metrics
from fsmtrader.control.reads import BookReader
from fsmtrader.engine.monitor import stuck_symbols
from fsmtrader.errors import InsufficientFunds, InvalidOrder, NetworkError
from fsmtrader.exchange.simulated import BINANCE as SIM_BINANCE
from fsmtrader.exchange.simulated import FaultInjector, SimExchange
from fsmtrader.exchange.timed import CallStats, TimedExchange
from fsmtrader.orders.intent import Intent
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.harness import BTC, Harness, settings
from fsmtrader_testing.metrics_text import by, parse

pytestmark = pytest.mark.timeout(60)
SYM = "BTC/USDT"


class Wire:
    """What the engine trades through: the timing wrapper over the fault injector."""

    def __init__(self, stats: CallStats) -> None:
        self.stats = stats

    def __call__(self, ex: SimExchange) -> Any:
        self.faults = FaultInjector(ex)
        return TimedExchange(self.faults, self.stats)


def db_audit(db: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db)) as c:
        return [json.loads(r) for (r,) in c.execute("SELECT record FROM audit ORDER BY id")]


def round_trip(h: Harness) -> None:
    """A drop (the entry), then a rise (the take-profit), then time for the cooldown."""
    h.bar(SYM, 48_400.0)
    h.advance(2_000)
    for _ in range(3):
        h.bar(SYM, 49_500.0)
    h.advance(20 * 60_000)
    for _ in range(12):
        h.bar(SYM, 50_000.0)


def test_rejections_ghosts_and_unknowns_agree_with_the_audit_table(tmp_path: Path) -> None:
    stats = CallStats()
    wire = Wire(stats)
    # the venue shows a new order to look-ups only after 4 s: a lost answer stays UNKNOWN
    venue = SIM_BINANCE.with_lag(4_000)
    h = Harness(settings(market={"symbols": [SYM]}), {SYM: BTC}, venue=venue, wire=wire)
    db = tmp_path / "fsmtrader.db"
    store = SqliteStore(db)
    feed = RecordFeed()
    store.on_committed.append(feed.on_committed)
    h.engine.attach_store(store)
    reader = BookReader(db, tmp_path)
    metrics = Metrics(
        status=lambda: reader.status(h.clock.now_ms()),
        balance=reader.balance,
        calls=stats,
        retries=None,
        timeouts=h.engine.policy.timeouts,
    )
    feed.listen(metrics.observe)
    try:
        h.warm(SYM, 50_000.0)
        wire.faults.inject_fault("create_order", InvalidOrder("bad lot", reason="step"))
        round_trip(h)
        wire.faults.inject_fault("create_order", InsufficientFunds("no money"))
        round_trip(h)
        lost = NetworkError("reset", maybe_sent=True)
        wire.faults.inject_fault("create_order", lost, after=True)
        h.bar(SYM, 48_400.0)
        unknown_now = parse(metrics.render()[0])["fsmtrader_open_orders_unknown"][()]
        # The same books scraped as if an hour went by with the engine not moving: the
        # symbol waiting on its order is stuck, as the engine's own monitor says.
        later = h.clock.now_ms() + 3_600_000
        frozen = Metrics(
            status=lambda: reader.status(later), balance=reader.balance, calls=None, retries=None
        )
        stuck_later = parse(frozen.render()[0])["fsmtrader_symbols_stuck"][()]
        engine = h.engine
        expected_stuck = stuck_symbols(
            engine.states.values(), engine.held, later, engine.policy.timeouts
        )
        stuck_now = parse(metrics.render()[0])["fsmtrader_symbols_stuck"][()]
        h.advance(6_000)
        for _ in range(3):
            h.bar(SYM, 49_500.0)
        big = Intent.create(
            decision_id="too-big",
            symbol=SYM,
            side="buy",
            amount=Decimal("1"),  # ~50 000 USDT against 1 000
            limit_price=Decimal("50000"),
            ref_price=Decimal("50000"),
            max_slippage_bps=Decimal(50),
            time_in_force="IOC",
            leg=0,
            created_ms=h.clock.now_ms(),
        )
        h.engine.router.submit(big)
        h.engine.commit()
        samples = parse(metrics.render()[0])
    finally:
        reader.close()
        store.close()
    audit, router = db_audit(db), h.engine.router
    assert by(samples, "fsmtrader_records_total", "kind") == {
        (k,): float(n) for k, n in Counter(r["kind"] for r in audit).items()
    }
    assert (
        by(samples, "fsmtrader_order_rejections_total", "reason")
        == {(k,): float(n) for k, n in router.rejections.items() if n}
        == {("step",): 1.0, ("insufficient_funds",): 1.0}
    )
    assert (
        by(samples, "fsmtrader_ghosts_total", "reason")
        == {(k,): float(n) for k, n in router.ghost_reasons.items() if n}
        == {("step",): 1.0, ("insufficient_funds",): 1.0, ("insufficient_budget",): 1.0}
    )
    final = by(samples, "fsmtrader_orders_final_total", "state")
    assert {k: v for k, v in router.final_states.items() if v} == {
        k[0]: v for k, v in final.items()
    }
    assert final[("FAILED_FINAL",)] == 3
    orders = [r for r in audit if r["kind"] == "order"]
    became_unknown = sum(r["state"] == "UNKNOWN" and r["from"] != "UNKNOWN" for r in orders)
    assert samples["fsmtrader_orders_unknown_total"][()] == became_unknown == 1
    assert unknown_now == 1  # the gauge while it was unknown
    assert stuck_now == 0 and stuck_later == len(expected_stuck) == 1
    assert samples["fsmtrader_open_orders_unknown"][()] == 0  # found and booked since
    moves = Counter((r["from"] or "", r["state"]) for r in orders)
    assert by(samples, "fsmtrader_order_moves_total", "from", "to") == {
        k: float(n) for k, n in moves.items()
    }
    fills = Counter(r["side"] for r in audit if r["kind"] == "fill")
    assert by(samples, "fsmtrader_fills_total", "side") == {
        (k,): float(n) for k, n in fills.items()
    }
    calls = by(samples, "fsmtrader_exchange_call_seconds_count", "method", "outcome")
    assert calls[("create_order", "InvalidOrder")] == 1
    assert calls[("create_order", "InsufficientFunds")] == 1
    assert calls[("create_order", "NetworkError")] == 1
    sent = sum(n for (src, dst), n in moves.items() if dst == "SENT" and src != "UNKNOWN")
    assert calls[("create_order", "ok")] == stats.count("create_order", "ok") == sent >= 1
    assert sum(calls.values()) == stats.count()
