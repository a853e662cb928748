"""``fsmtrader smoke`` as a user runs it: a real subprocess, every scenario (D and E start
real paper sessions of their own), the report file read back; a config that would
market-sell fails C with exit code 1; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.config import load_settings
from fsmtrader.smoke.derive import config_sha256
from fsmtrader_testing.paper import run_fsmtrader


def report_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_smoke_runs_every_scenario_and_writes_the_report(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text(
        "[exit]\nexit_ladder_bps = [0, 5, 15, 40]\n[timeouts]\nsell_fill_timeout_s = 20\n"
    )
    proc = run_fsmtrader("smoke", "--config", str(config), cwd=tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "smoke: PASS 5/5" in proc.stdout
    for name in "ABCDE":
        assert f"smoke {name}: PASS" in proc.stderr
    assert "Traceback" not in proc.stderr
    rep = report_of(tmp_path / "smoke_test_report.json")  # the default, in the cwd
    assert rep["passed"] is True and rep["failed"] == []
    assert rep["settings"]["exit.exit_ladder_bps"] == [0, 5, 15, 40]
    assert rep["config_sha256"] == config_sha256(load_settings(config, env={}))
    assert abs(rep["generated_ms"] / 1000 - time.time()) < 120
    by = {r["name"]: r for r in rep["scenarios"]}
    assert list(by) == list("ABCDE")
    for r in by.values():
        assert r["passed"] is True and r["reason"] == "" and r["title"]
        assert r["audit"], f"{r['name']}: no audit excerpt"
    a = by["A"]["figures"]
    assert Decimal(a["requested_notional"]) < Decimal(a["min_notional"]) == 5
    assert Decimal(a["bumped_notional"]) >= 5
    assert a["price_on_tick_grid"] and a["amount_on_step_grid"]
    assert [r["state"] for r in by["A"]["audit"] if r["kind"] == "order"][:2] == ["NEW", "RESERVED"]
    b = by["B"]["figures"]
    assert b["fills"] >= 2 and b["partially_filled_orders"] >= 1
    assert b["position_qty"] == b["sum_qty_received"]
    assert b["position_avg_entry"] == b["cost_per_unit_received"]
    assert b["position_fees"] == b["sum_fill_fees"]
    c = by["C"]["figures"]
    assert c["exit_ladder_bps"] == [0, 5, 15, 40]  # the user's ladder
    assert c["market_orders"] == 0 and c["ladder_exhausted"] >= 1
    assert len(c["attempts"][0]) == 4  # every rung of the user's ladder
    assert c["realized_pnl"] == c["recomputed_pnl"]
    d = by["D"]["figures"]
    assert d["killed_rc"] == -9 and d["open_orders_at_kill"] >= 1 and d["positions_at_kill"] >= 1
    assert (d["duplicates"], d["orphans"], d["drift"], d["lost_fills"]) == (0, 0, "0", 0)
    assert d["reconcile_ok"] is True and d["restart_rc"] == 0
    e = by["E"]["figures"]
    assert e["samples"] >= 1000 and e["p95_ms"] <= 200 and e["within_200ms_pct"] > 95
    assert all(r["kind"] == "phase" and r["lag_ms"] >= 0 for r in by["E"]["audit"])


def test_a_config_that_would_market_sell_fails_c(tmp_path: Path) -> None:
    config = tmp_path / "risky.toml"
    config.write_text("[exit]\nnever_market_sells = false\n")
    out = tmp_path / "out" / "r.json"
    proc = run_fsmtrader(
        "smoke", "--scenario", "c", "--report", str(out), "--config", str(config), cwd=tmp_path
    )
    assert proc.returncode == 1, proc.stderr
    assert "smoke C: FAIL" in proc.stderr and "never_market_sells" in proc.stderr
    assert "smoke: FAIL 0/1" in proc.stdout
    rep = report_of(out)
    (c,) = rep["scenarios"]
    assert rep["passed"] is False and rep["failed"] == ["C"]
    assert "exit.never_market_sells = false" in c["reason"]
    assert "market sell order(s) sent" in c["reason"]  # and the run did send one
    assert c["figures"]["market_orders"] >= 1
    assert [r for r in c["audit"] if r["kind"] == "order" and r.get("limit_price", 1) is None]
    assert "scenario state kept in" in proc.stderr


def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    proc = run_fsmtrader("smoke", "--scenario", "F", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["error: --scenario: must be one of A, B, C, D, E (got 'F')"]
    assert not (tmp_path / "smoke_test_report.json").exists()
    proc = run_fsmtrader("smoke", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "config file not found" in proc.stderr
