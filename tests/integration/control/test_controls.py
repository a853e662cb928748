"""The controls on a real running paper session (its SQLite store, its simulated exchange):
submitted from another thread as the API does, run by the session's own loop between two
stimuli, each refused with its reason when the bot's state does not allow it, each leaving
an audit record naming who asked. A stop of new entries survives a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fsmtrader.control.desk import ControlDesk, ControlResult
from fsmtrader.session import PaperSession
from fsmtrader_testing.harness import settings
from fsmtrader_testing.paper import PAPER_SESSION
from fsmtrader_testing.steer import run_steered

SPEED = 1800.0  # half an hour of market per wall second


def config() -> Any:
    return settings(seed=7, **PAPER_SESSION)


def ask(desk: ControlDesk, action: str, symbol: str = "") -> ControlResult:
    args = {"symbol": symbol} if symbol else {}
    return desk.submit(action, args, who="test").result(timeout=10)


def run_with(session: PaperSession, script: Callable[[ControlDesk], None], limit_s: float) -> None:
    """Run the session in this thread while ``script`` steers it from another."""
    run_steered(session, lambda: script(session.desk), limit_s)


def audit(state: Path) -> list[dict[str, Any]]:
    lines = (state / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_controls_run_in_the_loop_refuse_with_reasons_and_are_audited(tmp_path: Path) -> None:
    state, s = tmp_path / "state", config()
    results: dict[str, ControlResult] = {}

    def script(desk: ControlDesk) -> None:
        results["recover_idle"] = ask(desk, "recover", "BTC/USDT")
        results["unknown"] = ask(desk, "forceexit", "XRP/USDT")
        results["bogus"] = ask(desk, "launch", "")
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # until some symbol holds a position
            r = ask(desk, "forceexit", "all")
            if r.ok:
                results["forceexit"] = r
                break
            assert r.status == 409 and "nothing to force-exit" in r.message
            time.sleep(0.05)
        results["stop"] = ask(desk, "stopentry")
        results["stop_again"] = ask(desk, "stopentry")
        results["reconcile"] = ask(desk, "reconcile")
        time.sleep(1.5)  # let the forced exits go down the ladder

    session = PaperSession(s, state, hours=48, speed=SPEED)
    try:
        session.start()
        run_with(session, script, limit_s=60)
        assert session.engine.entries_stopped.startswith("by test at ")
    finally:
        session.close()

    assert results["recover_idle"].status == 409
    assert "not in ERROR" in results["recover_idle"].message
    assert results["unknown"].status == 400 and "XRP/USDT" in results["unknown"].message
    assert results["bogus"].status == 400 and "unknown control" in results["bogus"].message
    assert "forceexit" in results, "no position was ever held to force-exit"
    forced = results["forceexit"].data["symbols"]
    assert forced and all(p != "POSITION" for p in forced.values())
    assert results["stop"].ok and "open positions are still managed" in results["stop"].message
    assert (
        results["stop_again"].status == 409 and "already stopped" in results["stop_again"].message
    )
    assert results["reconcile"].ok and results["reconcile"].data["reconcile"]["ok"] is True

    records = audit(state)
    controls = [r for r in records if r["kind"] == "control"]
    waited = [c for c in controls if c["action"] == "forceexit" and c["result"] == 409]
    assert all("nothing to force-exit" in c["message"] for c in waited)
    assert [(c["action"], c["result"]) for c in controls if c not in waited] == [
        ("recover", 409),
        ("forceexit", 400),
        ("forceexit", 200),
        ("stopentry", 200),
        ("stopentry", 409),
        ("reconcile", 200),
    ]
    assert all(c["who"] == "test" for c in controls)
    forced_trades = [
        r for r in records if r["kind"] == "trade" and r["exit_reason"] == "force_exit"
    ]
    assert {t["symbol"] for t in forced_trades} == set(forced)
    # the forced sells went through the router as limit IOC steps, never market orders
    sells = [
        r for r in records if r["kind"] == "order" and r["side"] == "sell" and r["state"] == "NEW"
    ]
    assert sells and all(r["limit_price"] is not None for r in sells)


def test_a_stop_survives_a_restart_and_resume_lifts_it(tmp_path: Path) -> None:
    state, s = tmp_path / "state", config()
    session = PaperSession(s, state, hours=48, speed=SPEED)
    try:
        session.start()
        run_with(session, lambda desk: _expect_ok(ask(desk, "stopentry")), limit_s=20)
    finally:
        session.close()
    stop_id = max(r["audit_id"] for r in audit(state) if r["kind"] == "control")

    session = PaperSession(s, state, hours=48, speed=SPEED)
    try:
        session.start()
        assert session.engine.entries_stopped.startswith("by test at ")
        session.run(stop_after_s=3)  # an hour and a half of market: drops come, no entry
    finally:
        session.close()
    after = [r for r in audit(state) if r["audit_id"] > stop_id]
    assert not [r for r in after if r["kind"] == "phase" and r["event"] == "SIGNAL"]
    assert not [r for r in after if r["kind"] == "order" and r["side"] == "buy"]

    session = PaperSession(s, state, hours=48, speed=SPEED)
    results: list[ControlResult] = []
    try:
        session.start()
        run_with(
            session,
            lambda desk: results.extend([ask(desk, "resume"), ask(desk, "resume")]),
            limit_s=20,
        )
        assert session.engine.entries_stopped == ""
    finally:
        session.close()
    assert results[0].ok and "stop lifted" in results[0].message
    assert results[1].status == 409 and "not stopped" in results[1].message


def _expect_ok(result: ControlResult) -> None:
    assert result.ok, result.message
