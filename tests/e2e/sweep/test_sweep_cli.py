"""The sweep command as a user meets it: best.toml reproduces the best trial through
``fsmtrader backtest``, and every bad input is one ``error:`` line, exit code 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fsmtrader_testing.paper import one_error_line, run_fsmtrader

from .conftest import TRAIN, Inputs, sweep_args
from conftest import shared_file


def test_best_toml_reproduces_the_best_trial_through_backtest(
    tmp_path: Path, inputs: Inputs
) -> None:
    """The sweep and ``backtest`` read the data, the range and the markets file the same
    way: best.toml on --train's range gives the best trial's figures again."""
    markets = str(shared_file("ccxt_binance_spot_markets.json"))
    run_dir = tmp_path / "sweep"
    args = sweep_args(inputs, run_dir, 3, "--workers", "1", "--markets", markets, "--keep-runs",
                      "--json")  # fmt: skip
    proc = run_fsmtrader(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["best_value"] is not None

    bt = run_fsmtrader("backtest", "--config", str(run_dir / "best.toml"), "--data",
                       str(inputs.data), "--timerange", TRAIN, "--markets", markets, "--json",
                       cwd=tmp_path)  # fmt: skip
    assert bt.returncode == 0, bt.stderr
    (report,) = (tmp_path / "runs").glob("backtest-*/report.json")
    figures = json.loads(report.read_text())["metrics"]
    assert figures["return_pct"] == result["best_value"]
    kept = run_dir / "trials" / f"trial-{result['best_trial']:05d}" / "report.json"
    assert json.loads(kept.read_text())["metrics"] == figures  # --keep-runs kept its folder
    rows = csv.DictReader((run_dir / "trials.csv").open())
    (best,) = [r for r in rows if int(r["number"]) == result["best_trial"]]
    assert [best[k] for k in ("trades", "sharpe", "max_drawdown_pct")] == [
        str(figures[k]) for k in ("trades", "sharpe", "max_drawdown_pct")
    ]


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ('"entry.drop_trigger" = { low = 1, high = 5 }', "entry.drop_trigger: not a setting"),
        ('"entry.drop_trigger_pct" = { low = 1, high = 60 }', "high = 60 is not allowed"),
        ('"exit.stop_loss_pct" = { low = 1, high = 5, step = 0.3 }', "whole number of steps"),
        ('"backtest.both_touch" = { choices = ["first"] }', "choice 'first' is not allowed"),
        ('"entry.anchor_window_min" = { low = 1.5, high = 9 }', "low must be a whole number"),
        ("this is not toml", "invalid TOML"),
    ],
)
def test_a_bad_space_file_is_one_error_line(
    tmp_path: Path, inputs: Inputs, space: str, expected: str
) -> None:
    inputs.space.write_text(space + "\n")
    line = one_error_line(run_fsmtrader(*sweep_args(inputs, tmp_path / "s", 3), cwd=tmp_path))
    assert expected in line and str(inputs.space) in line


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("--objective", "alpha"), "--objective alpha: not a figure a sweep optimises"),
        (("--train", "2026-02-01"), "--train '2026-02-01': expected YYYYMMDD-YYYYMMDD"),
        (("--direction", "up"), "--direction up: must be maximize or minimize"),
        (("--trials", "0"), "--trials 0: must be >= 1"),
        (("--scheduler", "tcp://127.0.0.1:9"), "--scheduler tcp://127.0.0.1:9: cannot connect"),
    ],
)
def test_a_bad_flag_is_one_error_line(
    tmp_path: Path, inputs: Inputs, change: tuple[str, str], expected: str
) -> None:
    args = sweep_args(inputs, tmp_path / "s", 3)
    if change[0] in args:
        args[args.index(change[0]) + 1] = change[1]
    else:
        args += change
    assert expected in one_error_line(run_fsmtrader(*args, cwd=tmp_path, timeout=120))


def test_a_seeded_sweep_on_one_worker_proposes_the_same_trials(
    tmp_path: Path, inputs: Inputs
) -> None:
    """The sampler is seeded: on one worker (trials finish in the order they were asked)
    two sweeps propose the same parameters, past TPE's 10 random start-up trials too."""
    tables = []
    for name in ("a", "b"):
        args = sweep_args(inputs, tmp_path / name, 12, "--workers", "1", "--json")
        proc = run_fsmtrader(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        rows = csv.DictReader((tmp_path / name / "trials.csv").open())
        tables.append([{k: v for k, v in r.items() if k not in ("worker", "run_s")} for r in rows])
    assert len(tables[0]) == 12 and tables[0] == tables[1]
    assert len({r["entry.drop_trigger_pct"] + r["exit.take_profit_pct"] for r in tables[0]}) > 6
