"""A sweep killed with SIGKILL (driver and its local cluster at once) resumes when the
same command runs again, and ends with exactly ``--trials`` finished trials: the trials
that were running are marked FAIL and run again with the same parameters, once."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import time
import tomllib
from collections import Counter
from pathlib import Path

import optuna
import psutil
from optuna.trial import TrialState

from fsmtrader_testing.paper import clean_env, fsmtrader_argv, run_fsmtrader

from .conftest import SPACE_TOML, Inputs, sweep_args

TRIALS = 8
# Two weeks per trial (a few tenths of a second each): the kill lands with trials to spare.
LONGER = "20260201-20260214"
PARAMS = list(tomllib.loads(SPACE_TOML))


def states(db: Path) -> Counter[str]:
    """How many trials of the storage are in each state (nothing while it is not there)."""
    if not db.exists():
        return Counter()
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return Counter(state for (state,) in con.execute("SELECT state FROM trials"))
    except sqlite3.OperationalError:  # the tables are not created yet
        return Counter()


def session_alive(pgid: int) -> list[int]:
    alive = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid:
                alive.append(p.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


def kill_after(args: list[str], cwd: Path, db: Path, complete: int) -> Counter[str]:
    """Start the sweep in its own session, SIGKILL the whole session once ``complete``
    trials are COMPLETE; the storage's states at that moment."""
    proc = subprocess.Popen(
        fsmtrader_argv(*args),
        cwd=cwd,
        env=clean_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    try:
        while states(db)["COMPLETE"] < complete:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    for _ in range(200):  # the local cluster's processes die with the session
        if not session_alive(proc.pid):
            break
        time.sleep(0.05)
    assert session_alive(proc.pid) == []
    return states(db)


def test_a_killed_sweep_resumes_to_exactly_n_trials(tmp_path: Path, inputs: Inputs) -> None:
    run_dir = tmp_path / "sweep"
    db = run_dir / "study.db"
    args = sweep_args(inputs, run_dir, TRIALS, "--workers", "1", "--json", train=LONGER)
    at_kill = kill_after(args, tmp_path, db, complete=2)
    assert 2 <= at_kill["COMPLETE"] < TRIALS
    assert at_kill["RUNNING"] >= 1  # one more trial in flight than there are workers

    again = run_fsmtrader(*args, cwd=tmp_path, timeout=240)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["finished"] == TRIALS
    study = optuna.load_study(study_name=result["study"], storage=result["storage"])
    trials = study.get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(finished) == TRIALS
    assert len(failed) == at_kill["RUNNING"]
    assert all(t.state != TrialState.RUNNING for t in trials)
    # a trial the kill caught while optuna drew its parameters never ran: no retry
    drawn = [t for t in failed if set(t.params) == set(PARAMS)]
    assert result["retried"] == [t.number for t in drawn]
    for cut in failed:  # each cut-off trial ran again once, with its own parameters
        retries = [t for t in trials if t.user_attrs.get("retry_of") == cut.number]
        if cut not in drawn:
            assert retries == [] and set(cut.params) < set(PARAMS)
            continue
        (retry,) = retries
        assert retry in finished and retry.params == cut.params
    rows = list(csv.DictReader((run_dir / "trials.csv").open()))
    assert [int(r["number"]) for r in rows] == [t.number for t in trials]
    assert Counter(r["state"] for r in rows) == Counter(t.state.name for t in trials)

    # more --trials continue the same study (its identity leaves --trials out), and the
    # new session's sampler does not replay the first session's points
    more_args = sweep_args(inputs, run_dir, TRIALS + 2, "--json", train=LONGER)
    more = run_fsmtrader(*more_args, cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert json.loads(more.stdout)["finished"] == TRIALS + 2
    grown = optuna.load_study(study_name=result["study"], storage=result["storage"]).trials
    assert [t.number for t in grown] == list(range(len(trials) + 2))
    assert [t.params for t in grown[-2:]] != [t.params for t in trials[:2]]

    # once the study holds N finished trials, the same command adds none
    same = run_fsmtrader(*more_args, cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["finished"] == TRIALS + 2
    after = optuna.load_study(study_name=result["study"], storage=result["storage"]).trials
    assert len(after) == len(grown)
