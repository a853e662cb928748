"""The study in a real SQLite storage: it refuses another sweep's study, a cut-off trial
comes back once with its own parameters, and the best trials are ranked per direction."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from fsmtrader.errors import ConfigError
from fsmtrader.research.sweep import parse_space
from fsmtrader.research.sweep.study import (
    best_trials,
    clean_params,
    counted,
    distributions,
    open_study,
    requeue_cut_off,
)

SPACE = parse_space(
    {
        "entry.drop_trigger_pct": {"low": 0.5, "high": 3, "step": 0.1},
        "entry.anchor_window_min": {"low": 10, "high": 60, "step": 5},
        "backtest.both_touch": {"choices": ["stop_first", "target_first"]},
    },
    "space.toml",
)


def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def requeue_on_reopen(tmp_path: Path) -> list[int]:
    """What a new driver queues again when it opens the study."""
    return requeue_cut_off(open_study(storage(tmp_path), "s", "maximize", 3, "f"), SPACE.keys())


def test_a_study_of_another_sweep_is_refused(tmp_path: Path) -> None:
    study = open_study(storage(tmp_path), "s", "maximize", 1, "aaa")
    study.tell(study.ask(distributions(SPACE)), 1.0)
    assert counted(open_study(storage(tmp_path), "s", "maximize", 1, "aaa")) == 1
    with pytest.raises(ConfigError, match=r"--study s: it exists .* for a different sweep"):
        open_study(storage(tmp_path), "s", "maximize", 1, "bbb")
    with pytest.raises(ConfigError, match="--direction minimize: study s is MAXIMIZE"):
        open_study(storage(tmp_path), "s", "minimize", 1, "aaa")


def test_a_cut_off_trial_is_failed_and_asked_again_with_its_parameters(tmp_path: Path) -> None:
    dists = distributions(SPACE)
    first = open_study(storage(tmp_path), "s", "maximize", 3, "f")
    done, cut = first.ask(dists), first.ask(dists)
    first.tell(done, 0.5)  # `cut` stays RUNNING: its driver died

    study = open_study(storage(tmp_path), "s", "maximize", 3, "f")
    assert requeue_cut_off(study, SPACE.keys()) == [cut.number]
    assert study.trials[cut.number].state == TrialState.FAIL
    again = study.ask(dists)
    assert again.params == cut.params and again.user_attrs["retry_of"] == cut.number
    study.tell(again, 0.7)
    assert requeue_on_reopen(tmp_path) == []
    assert counted(study) == 2


def test_a_trial_cut_off_while_its_parameters_were_drawn_is_not_retried(
    tmp_path: Path,
) -> None:
    """The driver died between optuna creating the trial and drawing its last parameter:
    the trial never reached a worker, so it is failed and a fresh one is drawn, never a
    retry with parts of a parameter set."""
    dists = distributions(SPACE)
    first = open_study(storage(tmp_path), "s", "maximize", 3, "f")
    half = first.ask()
    half.suggest_float("entry.drop_trigger_pct", 0.5, 3, step=0.1)  # then the kill

    study = open_study(storage(tmp_path), "s", "maximize", 3, "f")
    assert requeue_cut_off(study, SPACE.keys()) == []
    assert study.trials[half.number].state == TrialState.FAIL
    fresh = study.ask(dists)
    assert "retry_of" not in fresh.user_attrs and set(fresh.params) == set(SPACE.keys())
    study.tell(fresh, 0.1)
    assert requeue_on_reopen(tmp_path) == []


def test_the_retry_of_a_retry_keeps_the_chain(tmp_path: Path) -> None:
    """A retry cut off in turn is failed and queued again; a queued retry not yet asked
    is not queued twice."""
    dists = distributions(SPACE)
    study = open_study(storage(tmp_path), "s", "maximize", 3, "f")
    cut = study.ask(dists)
    assert requeue_on_reopen(tmp_path) == [0]
    assert requeue_on_reopen(tmp_path) == []
    study = open_study(storage(tmp_path), "s", "maximize", 3, "f")
    retry = study.ask(dists)  # asked, then cut off too
    assert retry.params == cut.params
    assert requeue_on_reopen(tmp_path) == [1]
    waiting = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert [t.user_attrs["retry_of"] for t in waiting] == [1]


def test_stepped_floats_are_cleaned_to_their_grid() -> None:
    raw = {"entry.drop_trigger_pct": 0.7000000000000001, "entry.anchor_window_min": 15,
           "backtest.both_touch": "target_first"}  # fmt: skip
    assert clean_params(SPACE, raw)["entry.drop_trigger_pct"] == 0.7


@pytest.mark.parametrize(("direction", "order"), [("maximize", [2, 0]), ("minimize", [1, 0])])
def test_best_trials_rank_by_direction_once_per_parameter_set(
    tmp_path: Path, direction: str, order: list[int]
) -> None:
    study = optuna.create_study(storage=storage(tmp_path), direction=direction)
    dists = distributions(SPACE)
    for value, params in ((2.0, "a"), (1.0, "b"), (3.0, "c"), (3.0, "c"), (None, "d")):
        fixed = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 0.5}[params]
        study.enqueue_trial({"entry.drop_trigger_pct": fixed, "entry.anchor_window_min": 10,
                             "backtest.both_touch": "stop_first"})  # fmt: skip
        t = study.ask(dists)
        study.tell(t, value, state=None if value is not None else TrialState.PRUNED)
    assert [t.number for t in best_trials(study, 2)] == order
