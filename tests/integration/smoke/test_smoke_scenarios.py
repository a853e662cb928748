"""Single smoke scenarios through ``run_smoke``, on settings that pass and on settings that
fail them for a real reason (the reason named in the report); D on the MEXC profile (a
visibility lag through the kill and the restart)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.config import Settings, load_settings
from fsmtrader.markets import on_grid
from fsmtrader.smoke import ScenarioResult, run_smoke
from fsmtrader.smoke.engine_scenarios import BLESS


def mine(**tables: Any) -> Settings:
    return load_settings(None, env={}, overrides=tables)


def one(s: Settings, name: str, tmp: Path) -> ScenarioResult:
    report = run_smoke(s, [name], work_dir=tmp)
    assert [r.name for r in report.scenarios] == [name]
    assert report.passed is report.scenarios[0].passed
    return report.scenarios[0]


def test_a_bumps_a_4_usdt_entry_to_bless_min_notional(tmp_path: Path) -> None:
    r = one(mine(), "A", tmp_path)
    assert r.passed, r.reason
    f = r.figures
    assert f["requested_notional"] < BLESS.min_notional <= f["bumped_notional"]
    assert on_grid(f["order_price"], BLESS.tick_size) and f["order_amount"] % 1 == 0
    assert f["position_cost"] >= BLESS.min_notional and f["position_qty"] == f["order_amount"]
    reserved = [x for x in r.audit if x["kind"] == "order" and x["state"] == "RESERVED"]
    assert len(reserved) == 1 and reserved[0]["reason"] == "bumped_to_min_notional"
    assert Decimal(reserved[0]["amount"]) == f["order_amount"]


def test_a_runs_on_its_own_usdt_market_whatever_the_users_quote(tmp_path: Path) -> None:
    r = one(mine(market={"quote": "USDC", "symbols": ["BTC/USDC"]}), "A", tmp_path)
    assert r.passed, r.reason
    assert r.figures["market"] == "BLESS/USDT"


def test_a_fails_when_the_budget_cannot_reach_min_notional(tmp_path: Path) -> None:
    r = one(mine(market={"starting_balance": "4.5"}), "A", tmp_path)
    assert not r.passed
    assert r.reason == (
        "no buy intent: GUARDS_BLOCKED: can_afford "
        "(the budget, 4.5 USDT, cannot reach min_notional 5)"
    )
    assert r.figures["budget"] == Decimal("4.5")
    assert [x["event"] for x in r.audit] == ["GUARDS_BLOCKED"]


def test_b_books_the_exchanges_fills_exactly_also_with_fees_in_the_base_asset(
    tmp_path: Path,
) -> None:
    for sim in ({"fee_asset": "quote"}, {"fee_asset": "received"}):
        r = one(mine(sim=sim), "B", tmp_path)
        assert r.passed, (sim, r.reason)
        f = r.figures
        assert f["fills"] >= 2 and len(f["fill_prices"]) >= 2 and f["buy_intents"] >= 2
        assert f["position_qty"] == f["sum_qty_received"]
        assert f["position_avg_entry"] == f["cost_per_unit_received"]
        if sim["fee_asset"] == "quote":
            assert f["weighted_avg_price"] == f["position_avg_entry"]
        else:  # the base-asset fee shrinks what was received, not what was paid
            assert f["sum_qty_received"] < f["sum_fill_qty"]
        fills = [x for x in r.audit if x["kind"] == "fill"]
        assert len(fills) == f["fills"]


def test_b_fails_when_a_spread_guard_blocks_every_entry(tmp_path: Path) -> None:
    r = one(mine(entry={"max_spread_bps": 1}), "B", tmp_path)
    assert not r.passed and r.reason == "no position: GUARDS_BLOCKED: spread"


def test_c_walks_the_users_ladder_to_its_end_then_waits(tmp_path: Path) -> None:
    ladder = [0, 20, 60]
    r = one(mine(exit={"exit_ladder_bps": ladder}, sim={"venue": "mexc"}), "C", tmp_path)
    assert r.passed, r.reason
    f = r.figures
    assert f["market_orders"] == 0 and f["ladder_exhausted"] >= 1
    first = [Decimal(p) for p in f["attempts"][0]]
    assert len(first) == len(ladder) and first == sorted(first, reverse=True)
    assert all("exit ladder exhausted" in b for b in f["sells_blocked"])
    assert f["sell_fees"] == f["sum_sell_fill_fees"]
    assert abs(f["realized_pnl"] - f["recomputed_pnl"]) <= Decimal("1e-8")
    sells = [x for x in r.audit if x["kind"] == "order" and x["state"] == "NEW"]
    assert sells and all(x["time_in_force"] == "IOC" and x["limit_price"] for x in sells)


def test_c_fails_a_config_that_would_market_sell(tmp_path: Path) -> None:
    r = one(mine(exit={"never_market_sells": False}), "C", tmp_path)
    assert not r.passed
    assert r.reason.startswith("exit.never_market_sells = false")
    assert "1 market sell order(s) sent" in r.reason
    assert r.figures["market_orders"] == 1


def test_c_fails_a_one_rung_ladder(tmp_path: Path) -> None:
    r = one(mine(exit={"exit_ladder_bps": [0]}), "C", tmp_path)
    assert not r.passed
    assert r.reason == "no exit attempt stepped down the ladder (fewer than two sell legs)"


def test_d_recovers_on_the_mexc_profile_without_drift(tmp_path: Path) -> None:
    secret = "do-not-write-me-anywhere-0123456789"
    env = {"FSMTRADER_API__TOKEN": secret, "FSMTRADER_EXCHANGE__API_SECRET": secret}
    s = load_settings(None, env=env, overrides={"sim": {"venue": "mexc"}})
    report = run_smoke(s, ["D"], work_dir=tmp_path)
    r = report.scenarios[0]
    assert r.passed, r.reason
    f = r.figures
    assert f["killed_rc"] == -9 and f["restart_rc"] == 0 and f["reconcile_ok"]
    assert (f["duplicates"], f["orphans"], f["drift"], f["lost_fills"]) == (0, 0, 0, 0)
    opened = {o["intent_id"] for o in f["at_kill"]["open_orders"]}
    assert opened and opened <= {x["intent_id"] for x in r.audit}
    (config_file,) = tmp_path.glob("scenario-D-*/scenario-d.toml")
    config = config_file.read_text()
    assert 'venue = "mexc"' in config and secret not in config
    assert "token =" not in config and "api_secret" not in config
    assert secret not in json.dumps(report.to_json())
