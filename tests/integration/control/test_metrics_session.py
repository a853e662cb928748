"""``/metrics`` of a real paper session agrees with that session's audit trail.

A paper session (real engine, real simulated exchange, real SQLite database) runs for a few
seconds at high speed with a RecordFeed on its store's commits and Metrics listening to the
feed, as the control plane wires them; the gauges read the same database through a
BookReader. The rendered text is parsed with prometheus_client's own parser and every
counter is compared with what ``audit.jsonl`` of the same run says, and with the router's
and the engine's own counts; the gauges with the engine's books at the end.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from fsmtrader.config import load_settings
from fsmtrader.control.execute import run_control
from fsmtrader.control.feed import RecordFeed
from fsmtrader.control.metrics import Metrics
from fsmtrader.control.reads import BookReader
from fsmtrader.fsm.phases import Phase
from fsmtrader.session import PaperSession
from fsmtrader_testing.metrics_text import Samples, by, parse
from fsmtrader_testing.paper import session_toml

pytestmark = pytest.mark.timeout(120)


@dataclass
class Run:
    session: PaperSession
    metrics: Metrics
    feed: RecordFeed
    reader: BookReader

    def audit(self) -> list[dict[str, Any]]:
        path = self.session.state_dir / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def scrape(self) -> Samples:
        body, ctype = self.metrics.render()
        assert ctype.startswith("text/plain")
        return parse(body)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One paper session, run for a few seconds of wall time (hours of its market), then
    two controls and a halt on top, all committed; still open while the tests read it."""
    tmp = tmp_path_factory.mktemp("metrics")
    cfg = tmp / "c.toml"
    cfg.write_text(session_toml(seed=4, risk={"max_open_positions": 2}))
    s = load_settings(cfg, env={})
    session = PaperSession(s, tmp / "state", hours=12, speed=3000)
    feed = RecordFeed(start_after=session.store.last_audit_id())
    session.store.on_committed.append(feed.on_committed)
    reader = BookReader(session.store.path, session.state_dir)
    metrics = Metrics(
        status=lambda: reader.status(session.clock.now_ms()),
        balance=reader.balance,
        calls=None,
        retries=None,
        timeouts=session.engine.policy.timeouts,
    )
    feed.listen(metrics.observe)
    try:
        session.start()
        session.run(stop_after_s=4)
        assert run_control(session, "stopentry", {}, "test").status == 200
        assert run_control(session, "stopentry", {}, "test").status == 409  # already stopped
        session.engine.halt("metrics test")
        session.engine.commit()
        yield Run(session, metrics, feed, reader)
    finally:
        reader.close()
        session.close()


def test_every_record_of_the_audit_trail_is_counted_once(run: Run) -> None:
    audit = run.audit()
    assert audit and [r["audit_id"] for r in audit] == [i.id for i in run.feed.since(0) or []]
    got = by(run.scrape(), "fsmtrader_records_total", "kind")
    assert got == {(k,): float(n) for k, n in Counter(r["kind"] for r in audit).items()}
    assert got[("phase",)] > 50 and got[("fill",)] > 5  # the session really traded


def test_transitions_and_rejected_events_agree_with_the_audit(run: Run) -> None:
    audit, samples = run.audit(), run.scrape()
    phases = Counter((r["from"], r["to"], r["event"]) for r in audit if r["kind"] == "phase")
    got = by(samples, "fsmtrader_transitions_total", "from", "to", "event")
    assert got == {k: float(n) for k, n in phases.items()}
    assert sum(got.values()) == run.session.engine.counts["transitions"]
    rejected = Counter((r["phase"], r["event"]) for r in audit if r["kind"] == "rejected_event")
    assert by(samples, "fsmtrader_rejected_events_total", "phase", "event") == {
        k: float(n) for k, n in rejected.items()
    }


def test_orders_by_final_state_fills_and_ghosts_agree_with_audit_and_router(run: Run) -> None:
    audit, samples = run.audit(), run.scrape()
    orders = [r for r in audit if r["kind"] == "order"]
    settled = Counter(r["from"] for r in orders if r["state"] == "RECONCILED")
    given_up = sum(r["state"] == "FAILED_FINAL" for r in orders) - sum(
        r["from"] == "FAILED_FINAL" for r in orders
    )
    expected = {(k,): float(n) for k, n in settled.items()}
    final = by(samples, "fsmtrader_orders_final_total", "state")
    found = sum(by(samples, "fsmtrader_orders_found_after_given_up_total", "state").values())
    if given_up or final.get(("FAILED_FINAL",)):
        expected[("FAILED_FINAL",)] = float(given_up) + found
    assert final == expected
    router = run.session.engine.router
    assert {k: v for k, v in router.final_states.items() if v} == {
        k[0]: int(v - (found if k[0] == "FAILED_FINAL" else 0)) for k, v in final.items()
    }
    fills = Counter(r["side"] for r in audit if r["kind"] == "fill")
    assert by(samples, "fsmtrader_fills_total", "side") == {
        (k,): float(n) for k, n in fills.items()
    }
    assert by(samples, "fsmtrader_ghosts_total", "reason") == {
        (k,): float(n) for k, n in router.ghost_reasons.items() if n
    }
    ghosts = Counter(
        r["reason"].removeprefix("ghost:")
        for r in orders
        if r["state"] == "FAILED_FINAL" and r["reason"].startswith("ghost:")
    )
    assert run.reader.ghosts()["by_reason"] == {k: n for k, n in router.ghost_reasons.items() if n}
    assert all(
        by(samples, "fsmtrader_ghosts_total", "reason").get((k,)) == n for k, n in ghosts.items()
    )


def test_controls_and_halts_are_counted_by_action_and_result(run: Run) -> None:
    audit, samples = run.audit(), run.scrape()
    controls = Counter((r["action"], str(r["result"])) for r in audit if r["kind"] == "control")
    assert controls == {("stopentry", "200"): 1, ("stopentry", "409"): 1}
    assert by(samples, "fsmtrader_controls_total", "action", "result") == {
        k: float(n) for k, n in controls.items()
    }
    halts = sum(r["kind"] == "halt" for r in audit)
    assert samples["fsmtrader_halts_total"][()] == halts >= 1
    assert samples["fsmtrader_halted"][()] == 1.0
    assert samples["fsmtrader_entries_stopped"][()] == 1.0


def test_gauges_are_the_engine_books(run: Run) -> None:
    samples, engine = run.scrape(), run.session.engine
    pf = engine.portfolio
    phases = Counter(st.phase.value for st in engine.states.values())
    assert by(samples, "fsmtrader_symbols", "phase") == {(k,): float(n) for k, n in phases.items()}
    assert len(samples["fsmtrader_symbols"]) == len(Phase)  # every phase, zeros included
    held = sum(1 for p in pf.positions.values() if p.qty > 0)
    assert samples["fsmtrader_open_positions"][()] == held
    assert Decimal(str(samples["fsmtrader_exposure_quote"][()])) == pytest.approx(pf.exposure())
    assert samples["fsmtrader_realized_pnl_quote"][()] == float(pf.realized_pnl)
    assert pf.realized_pnl != 0 and pf.trades  # trades closed, so the figure means something
    assert samples["fsmtrader_reserved_quote"][()] == float(pf.reserved_total)
    assert samples["fsmtrader_reservations"][()] == len(pf.reserved)
    assert samples["fsmtrader_cash_quote"][()] == float(pf.cash)
    assert samples["fsmtrader_symbols_stuck"][()] == len(engine.stuck_symbols())
    errors = by(samples, "fsmtrader_symbol_consecutive_errors", "symbol")
    assert errors == {
        (s,): float(st.error_count) for s, st in engine.states.items() if st.error_count
    }
    unknown = sum(r.state.value == "UNKNOWN" for r in engine.router.open_records())
    assert samples["fsmtrader_open_orders_unknown"][()] == unknown
    assert samples["fsmtrader_open_orders"][()] == len(engine.router.open_records())
    last_ms = max(i.committed_ms for i in run.feed.since(0) or [])
    assert samples["fsmtrader_last_commit_timestamp_seconds"][()] == last_ms / 1000
    assert samples["fsmtrader_book_read_errors_total"][()] == 0
    assert samples["fsmtrader_observe_errors_total"][()] == 0
