"""A sweep on an existing Dask cluster (a real scheduler and two worker processes on
127.0.0.1) gives each trial exactly the figures the same trial gives run here, serially."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import optuna
import psutil
from optuna.trial import TrialState

from fsmtrader.config import load_settings
from fsmtrader.research.report import METRIC_KEYS
from fsmtrader.research.sweep import SweepRequest, load_space, plan
from fsmtrader.research.sweep.run import data_spec
from fsmtrader.research.sweep.trial import evaluate
from fsmtrader_testing.paper import run_fsmtrader

from .conftest import TEST, TRAIN, DaskCluster, Inputs, sweep_args


def _float(text: str) -> float | int | None:
    if text == "":
        return None
    return int(text) if text.lstrip("-").isdigit() else float(text)


def test_trials_on_a_cluster_equal_a_serial_run(
    tmp_path: Path, inputs: Inputs, dask_cluster: DaskCluster
) -> None:
    run_dir = tmp_path / "sweep"
    args = sweep_args(inputs, run_dir, 6, "--scheduler", dask_cluster.address, "--test", TEST,
                      "--top", "2", "--json")  # fmt: skip
    proc = run_fsmtrader(*args, cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["finished"] == 6 and result["run_dir"] == str(run_dir)
    # the sweep's folder holds its outputs and its study, no run folder per trial
    files = {p.name for p in run_dir.iterdir() if not p.name.startswith("study.db-")}
    assert files == {".sweep.lock", "study.db", "trials.csv", "best.toml", "oos.csv"}
    assert not (tmp_path / "runs").exists()
    study = optuna.load_study(study_name=result["study"], storage=result["storage"])
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(trials) == 6

    # every trial ran in one of the two `dask worker` processes, none in the sweep's own
    worker_pids = {
        c.pid for w in dask_cluster.workers for c in psutil.Process(w.pid).children(recursive=True)
    }
    ran_on = {int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in trials}
    assert ran_on and ran_on <= worker_pids
    # each worker process read the candles once: its first trial loaded them
    for pid in ran_on:
        mine = sorted((t for t in trials if t.user_attrs["worker"].endswith(f":{pid}")),
                      key=lambda t: t.datetime_start or 0)  # fmt: skip
        assert [t.user_attrs["loaded"] for t in mine] == [True] + [False] * (len(mine) - 1)

    # the same trials, run serially in this process, give exactly the same figures
    base = load_settings(inputs.base, env={})
    req = SweepRequest(base, load_space(inputs.space), (str(inputs.data),), None, TRAIN, None,
                       6, "return_pct", seed=base.seed)  # fmt: skip
    spec = plan(req).train
    rows = {int(r["number"]): r for r in csv.DictReader((run_dir / "trials.csv").open())}
    for t in trials:
        serial = evaluate(spec, rows_params(rows[t.number], req.space.keys()), f"serial-{t.number}")
        assert serial.invalid is None
        assert serial.metrics == t.user_attrs["metrics"]
        assert serial.value == t.value == _float(rows[t.number]["value"])
        assert {k: _float(rows[t.number][k]) for k in METRIC_KEYS} == serial.metrics

    # the best two on the training range were run again on the test range
    oos = list(csv.DictReader((run_dir / "oos.csv").open()))
    assert [int(r["rank"]) for r in oos] == [1, 2]
    assert int(oos[0]["trial"]) == result["best_trial"]
    assert _float(oos[0]["train_return_pct"]) == result["best_value"]
    on_test = replace(spec, data=data_spec(req, TEST, "--test"))
    assert [o["test"] for o in result["oos"]] == [
        evaluate(on_test, o["params"], f"oos-{o['rank']}").metrics for o in result["oos"]
    ]
    assert [o["test"] for o in result["oos"]] != [o["train"] for o in result["oos"]]

    # best.toml is the base with the best trial's parameters
    best = load_settings(run_dir / "best.toml", env={})
    assert best.market.symbols == ["LTC/USDT"] and best.seed == base.seed
    assert best.entry.anchor_window_min == 30 and best.exit.max_hold_min == 240
    assert best.entry.drop_trigger_pct == result["best"]["entry.drop_trigger_pct"]
    assert best.exit.take_profit_pct == result["best"]["exit.take_profit_pct"]
    assert best.backtest.both_touch == result["best"]["backtest.both_touch"]


def rows_params(row: dict[str, str], keys: list[str]) -> dict[str, object]:
    """A trials.csv row's parameters, typed as the space file types them."""
    out: dict[str, object] = {}
    for k in keys:
        value = row[k]
        try:
            out[k] = _float(value)
        except ValueError:
            out[k] = value
    return out
