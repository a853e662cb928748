"""One trial in this process: settings refused by the model name the key, the figures are
the report's, the candles are read once per process and again when the file changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fsmtrader.config import load_settings
from fsmtrader.research.sweep.data import DataSpec, cached_inputs
from fsmtrader.research.sweep.trial import TrialSpec, evaluate, nested, trial_table
from fsmtrader.smoke.derive import settings_table

from conftest import shared_file

LTC = "binance_usdm_LTCUSDT_1m_2026-02.csv"


@pytest.fixture
def two_days(tmp_path: Path) -> Path:
    path = tmp_path / "LTCUSDT-1m-2026-02.csv"
    lines = shared_file(LTC).read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: 1 + 2 * 1440]))
    return path


def spec_for(path: Path, objective: str = "return_pct") -> TrialSpec:
    base = settings_table(load_settings(None, env={}, overrides={"exit": {"max_hold_min": 60}}))
    return TrialSpec(base, DataSpec((str(path),), None, None, "USDT"), objective)


def test_dotted_parameters_land_in_their_tables() -> None:
    params = {"entry.drop_trigger_pct": 2, "exit.stop_loss_pct": 1.5, "seed": 3}
    assert nested(params) == {"entry": {"drop_trigger_pct": 2}, "exit": {"stop_loss_pct": 1.5},
                              "seed": 3}  # fmt: skip
    table = trial_table(
        {"entry": {"anchor_window_min": 30, "drop_trigger_pct": 1}}, params, ["X/USDT"]
    )
    assert table["entry"] == {"anchor_window_min": 30, "drop_trigger_pct": 2}
    assert table["market"] == {"symbols": ["X/USDT"]}


def test_refused_settings_name_the_key_and_run_nothing(two_days: Path) -> None:
    """trailing distance 1.5 >= activation 1.0: each bound is allowed, the pair is not."""
    out = evaluate(spec_for(two_days), {"exit.trailing_distance_pct": 1.5}, "t")
    assert out.invalid is not None and out.metrics == {} and out.value is None
    assert out.invalid.startswith("exit.trailing_distance_pct: must be < exit.trailing_act")


def test_a_trial_scores_with_the_report_and_repeats_exactly(two_days: Path) -> None:
    a = evaluate(spec_for(two_days), {"entry.drop_trigger_pct": 0.6}, "a")
    b = evaluate(spec_for(two_days), {"entry.drop_trigger_pct": 0.6}, "b")
    c = evaluate(spec_for(two_days), {"entry.drop_trigger_pct": 1.4}, "c")
    assert a.invalid is None and a.metrics["trades"] and a.value == a.metrics["return_pct"]
    assert a.metrics == b.metrics and a.metrics != c.metrics
    assert not b.loaded  # the candles were in this process already


def test_an_undefined_objective_has_no_value(two_days: Path) -> None:
    """No trade can trigger at a 40 % drop: profit factor has no losing trade to divide by."""
    out = evaluate(spec_for(two_days, "profit_factor"), {"entry.drop_trigger_pct": 40}, "t")
    assert out.invalid is None and out.metrics["trades"] == 0 and out.value is None


def test_candles_are_read_once_per_process_and_again_when_the_file_changes(two_days: Path) -> None:
    spec = DataSpec((str(two_days),), None, None, "USDT")
    first, loaded = cached_inputs(spec)
    again, loaded_again = cached_inputs(spec)
    assert (loaded, loaded_again) == (True, False) and again is first
    assert len(first.series[0]) == 2 * 1440 and first.symbols == ["LTC/USDT"]
    with two_days.open("a") as fh:  # one more candle: a new size and modification time
        fh.write("1770076800000,59.0,59.1,58.9,59.0,10.0\n")
    os.utime(two_days, ns=(1, 1))
    fresh, reloaded = cached_inputs(spec)
    assert reloaded and fresh is not first


def test_a_running_sweep_rewrites_its_table_as_trials_finish(
    tmp_path: Path, two_days: Path
) -> None:
    from fsmtrader.research.sweep import SweepRequest, parse_space, plan
    from fsmtrader.research.sweep.run import table_too
    from fsmtrader.research.sweep.study import distributions, open_study

    space = parse_space({"entry.drop_trigger_pct": {"low": 1, "high": 2}}, "s.toml")
    req = SweepRequest(load_settings(None, env={}), space, (str(two_days),), None, None, None,
                       3, "return_pct", run_dir=tmp_path / "sweep")  # fmt: skip
    p = plan(req)
    p.run_dir.mkdir()
    study = open_study(p.storage, p.study, p.direction, 0, p.fingerprint)
    seen: list[tuple[int, int, float | None]] = []
    report = table_too(p, study, lambda *a: seen.append(a), every_s=0)
    study.tell(study.ask(distributions(space)), 1.5)
    report(1, 3, 1.5)
    assert seen == [(1, 3, 1.5)]
    lines = (p.run_dir / "trials.csv").read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("0,COMPLETE,1.5,")


def test_a_fast_trial_scores_as_the_stepped_one(two_days: Path) -> None:
    """--fast sets backtest.fast in the trials' base: the same figures, fewer candles
    stepped (the fast driver's promise, seen through a sweep's trial)."""
    step = spec_for(two_days)
    fast = TrialSpec({**step.base, "backtest": {**step.base["backtest"], "fast": True}},
                     step.data, step.objective)  # fmt: skip
    for drop in (0.6, 1.4):
        a = evaluate(step, {"entry.drop_trigger_pct": drop}, "step")
        b = evaluate(fast, {"entry.drop_trigger_pct": drop}, "fast")
        assert a.metrics["trades"] and a.metrics == b.metrics
