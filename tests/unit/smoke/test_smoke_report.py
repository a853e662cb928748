"""The smoke report (written whole), the scenario names, a scenario's settings (the user's,
validated, never a secret) and the verdicts of D and E on the figures they judge."""

from __future__ import annotations

import hashlib
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from fsmtrader.config import load_settings
from fsmtrader.errors import FsmTraderError
from fsmtrader.smoke import (
    ScenarioResult,
    SmokeReport,
    parse_scenarios,
    read_report,
    write_report,
)
from fsmtrader.smoke.derive import config_sha256, scenario_settings, scenario_table, to_toml
from fsmtrader.smoke.judge_runs import judge_lag, judge_recovery, lag_figures
from fsmtrader.smoke.verify import Verdict


def test_scenario_names_in_run_order_once_and_a_bad_one_named() -> None:
    assert parse_scenarios(None) == list("ABCDE")
    assert parse_scenarios(["e", "a", "E"]) == ["A", "E"]
    with pytest.raises(FsmTraderError) as exc:
        parse_scenarios(["A", "F", "x"])
    assert str(exc.value) == "--scenario: must be one of A, B, C, D, E (got 'F', 'X')"


def test_the_report_is_written_whole_and_replaces_the_old_one(tmp_path: Path) -> None:
    ok = ScenarioResult("A", "t", True, {"n": Decimal("5.0")}, [{"kind": "order"}])
    bad = ScenarioResult("C", "t", False, {}, [], "1 market sell order(s) sent")
    path = tmp_path / "sub" / "smoke_test_report.json"
    write_report(SmokeReport([ok]), path)
    first = os.stat(path).st_ino
    write_report(SmokeReport([ok, bad]), path)
    assert os.stat(path).st_ino != first  # a new file renamed over the old one
    data = json.loads(path.read_text())
    assert data["passed"] is False and data["failed"] == ["C"]
    assert data["scenarios"][0]["figures"] == {"n": "5.0"}  # Decimal text, exact
    assert data["scenarios"][1]["reason"] == "1 market sell order(s) sent"
    assert sorted(p.name for p in path.parent.iterdir()) == ["smoke_test_report.json"]
    assert SmokeReport([]).passed is False  # nothing run is not a pass
    back = read_report(path)
    assert back.to_json() == data and back.failed == ["C"]
    (tmp_path / "other.json").write_text('{"version": 99}')
    for name, why in (("other.json", "not a smoke report (version 99"), ("no.json", "not found")):
        with pytest.raises(FsmTraderError) as exc:
            read_report(tmp_path / name)
        assert why in str(exc.value) and name in str(exc.value)


def test_a_scenario_takes_the_users_settings_and_no_secret(tmp_path: Path) -> None:
    secret = "a-token-nobody-may-read-0123456789"
    user = load_settings(
        None,
        env={"FSMTRADER_API__TOKEN": secret},
        overrides={
            "exit": {"exit_ladder_bps": [0, 7], "never_market_sells": False},
            "market": {"modes": {"ETH/USDT": "observe"}},
            "api": {"enabled": True},
        },
    )
    own = {"market": {"symbols": ["BLESS/USDT"]}, "risk": {"position_size": "4"}}
    s = scenario_settings(user, own)
    assert s.exit.exit_ladder_bps == [0, 7] and s.exit.never_market_sells is False
    assert s.market.symbols == ["BLESS/USDT"] and s.market.modes == {}
    assert s.risk.position_size == 4 and s.risk.max_total_exposure == user.risk.max_total_exposure
    assert s.api.enabled is False and s.api.token is None
    text = to_toml(scenario_table(user, own))
    assert secret not in text
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_settings(path, env={}) == s  # the file says what the scenario ran
    assert config_sha256(user) == config_sha256(user.model_copy())
    # the contract with `fsmtrader preflight`: the canonical JSON of the redacted settings
    canonical = json.dumps(user.redacted_dict(), sort_keys=True, separators=(",", ":"))
    assert config_sha256(user) == hashlib.sha256(canonical.encode()).hexdigest()
    assert config_sha256(user) != config_sha256(s)


def test_d_fails_on_a_restart_that_fails_or_on_any_drift() -> None:
    at_kill = {"open_orders": [{"intent_id": "i1"}], "positions": ["BTC/USDT"]}
    clean = Verdict(0, 0, Decimal(0), 0, [])
    report = {"ok": True, "recovered_intents": 1}
    fig: dict[str, object] = {}
    assert judge_recovery(at_kill, 0, "paper: restored session", report, clean, [1, 2], fig) == []
    assert fig["open_orders_at_kill"] == 1 and fig["drift"] == 0
    failed = judge_recovery(at_kill, 2, "a\nerror: locked", report, None, [], {})
    assert failed == ["the restart exited 2: a | error: locked"]
    dup = Verdict(1, 0, Decimal(0), 0, ["duplicate: d1 has 3 buy legs"])
    got = judge_recovery(at_kill, 0, "restored session", {"ok": False}, dup, [1, 1], {})
    assert got[0].startswith("start-up reconcile not ok")
    assert got[1] == (
        "oracle: duplicates=1 orphans=0 drift=0 lost_fills=0: duplicate: d1 has 3 buy legs"
    )
    assert got[2] == "audit.jsonl does not hold every committed row once, in order"


def test_e_passes_only_within_the_reference_bar() -> None:
    fast = [1.0] * 960 + [250.0] * 40  # 96 % within 200 ms, p95 1 ms
    fig: dict[str, object] = {}
    assert judge_lag(fast, 1000, fig) == []
    assert fig["within_200ms_pct"] == 96.0 and fig["p95_ms"] == 1.0 and fig["max_ms"] == 250.0
    slow = [1.0] * 940 + [250.0] * 60  # 94 %: p95 is 250
    assert judge_lag(slow, 1000, {}) == [
        "push lag p95 250.0 ms > 200 ms",
        "94.0 % of transitions within 200 ms (need > 95 %)",
    ]
    assert judge_lag(fast[:10], 1000, {}) == ["only 10 phase transitions pushed (need 1000)"]
    assert lag_figures([5.0, 1.0, 3.0])["p50_ms"] == 3.0
