"""A whole sweep: check everything, open (or resume) the study, run the trials on the
cluster, write the outputs, and re-run the best trials out of sample.

Everything that can be checked before a trial runs is checked here first (the space,
the objective, the data, the base settings with each bound), so a mistake costs one
error line, not a cluster's worth of failed trials.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna

from fsmtrader.config import Settings
from fsmtrader.config.display import show
from fsmtrader.errors import ConfigError
from fsmtrader.research.report import OBJECTIVES
from fsmtrader.research.sweep.data import DataSpec, Loaded, cached_inputs
from fsmtrader.research.sweep.driver import TrialProgress, cluster, run_many, run_study
from fsmtrader.research.sweep.outputs import (
    OosRow,
    best_table,
    write_best_toml,
    write_oos_csv,
    write_trials_csv,
)
from fsmtrader.research.sweep.space import Space
from fsmtrader.research.sweep.study import (
    Direction,
    best_trials,
    clean_params,
    counted,
    open_study,
    requeue_cut_off,
)
from fsmtrader.research.sweep.trial import TrialSpec, trial_settings, trial_table
from fsmtrader.research.timerange import parse_timerange
from fsmtrader.smoke.derive import settings_table

__all__ = ["OOS_SHOWN", "SweepRequest", "SweepResult", "fingerprint", "plan", "run_sweep"]

#: The figures the out-of-sample table shows next to the objective.
OOS_SHOWN = ("return_pct", "max_drawdown_pct", "sharpe", "trades")
LOCK_FILE = ".sweep.lock"
TABLE_EVERY_S = 60.0


@dataclass(frozen=True)
class SweepRequest:
    """Everything the ``sweep`` command was given (see ``fsmtrader sweep --help``)."""

    base: Settings
    space: Space
    data: tuple[str, ...]
    symbols: tuple[str, ...] | None
    train: str | None
    test: str | None
    trials: int
    objective: str
    direction: Direction | None = None
    seed: int = 0
    scheduler: str | None = None
    workers: int = 2
    storage: str | None = None
    study: str | None = None
    run_dir: Path | None = None
    top: int = 5
    keep_runs: bool = False
    markets: str | None = None


@dataclass
class SweepResult:
    run_dir: Path
    study: str
    storage: str
    direction: Direction
    finished: int
    retried: list[int]
    best: dict[str, Any] | None
    best_value: float | None
    best_trial: int | None
    files: dict[str, Path]
    oos: list[OosRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """A checked request: the study's name, storage and folder, and the trial spec."""

    request: SweepRequest
    direction: Direction
    run_dir: Path
    study: str
    storage: str
    train: TrialSpec
    loaded: Loaded
    fingerprint: str
    warnings: list[str]


def fingerprint(req: SweepRequest, base: dict[str, Any]) -> str:
    """What makes two sweeps the same study: base settings, space, data, objective, seed
    (not ``--trials``, the cluster or the test range: those may change on a resume)."""
    doc = {
        "base": base,
        "space": [asdict(p) for p in req.space.params],
        "data": [req.data, req.symbols, req.train, req.markets],
        "objective": req.objective,
        "seed": req.seed,
    }
    text = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan(req: SweepRequest) -> Plan:
    """Check the request and name the study; loads the training candles once here."""
    if req.objective not in OBJECTIVES:
        raise ConfigError(
            f"--objective {req.objective}: not a figure a sweep optimises "
            f"(one of: {', '.join(OBJECTIVES)})"
        )
    for flag, value, least in (("--trials", req.trials, 1), ("--workers", req.workers, 1),
                               ("--top", req.top, 0)):  # fmt: skip
        if value < least:
            raise ConfigError(f"{flag} {value}: must be >= {least}")
    direction: Direction = req.direction or OBJECTIVES[req.objective]
    if req.scheduler is not None:
        reachable(req.scheduler)
    base = settings_table(req.base)
    spec = TrialSpec(base, data_spec(req, req.train, "--train"), req.objective)
    loaded, _ = cached_inputs(spec.data)
    warnings = list(loaded.warnings) + edge_warnings(req.space, base, loaded.symbols)
    if req.test is not None:  # a typo in --test should not wait for the last trial
        warnings += cached_inputs(data_spec(req, req.test, "--test"))[0].warnings
        warnings += _overlap(req.train, req.test)
    digest = fingerprint(req, base)
    study = req.study or f"{Path(req.space.source).stem}-{digest[:10]}"
    run_dir = req.run_dir or req.base.runs_dir / f"sweep-{study}"
    storage = req.storage or f"sqlite:///{(run_dir / 'study.db').resolve()}"
    if req.keep_runs:
        spec = replace(spec, keep_dir=str((run_dir / "trials").resolve()))
    return Plan(req, direction, run_dir, study, storage, spec, loaded, digest, warnings)


def reachable(address: str) -> None:
    """A ConfigError now, before any output, when nothing listens at ``address`` (a typo
    in ``--scheduler``); the Dask client's own connect follows when the sweep starts."""
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    if not host or not port.isdigit() or "://" in host:
        raise ConfigError(f"--scheduler {address}: expected tcp://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"--scheduler {address}: cannot connect ({exc})") from None


def data_spec(req: SweepRequest, timerange: str | None, flag: str) -> DataSpec:
    """The candles of ``--train`` or ``--test``. The warm-up check uses the base anchor
    window (a swept one may be longer; a trial too short to warm up simply trades less)."""
    warmup_ms = req.base.entry.anchor_window_min * 60_000
    quote = req.base.market.quote
    return DataSpec(req.data, req.symbols, timerange, quote, warmup_ms, flag, req.markets)


def edge_warnings(space: Space, base: dict[str, Any], symbols: list[str]) -> list[str]:
    """A warning for each end of a range (or choice) that the Settings model refuses with
    the base's other settings, e.g. a stop-loss range above the flash-crash guard: every
    trial out there would be pruned, which the user should hear before the sweep."""
    out: list[str] = []
    for p in space.params:
        values = p.choices if p.kind == "choice" else (p.low, p.high)
        for value in values:
            v = int(value) if p.kind == "int" else value
            try:
                trial_settings(trial_table(base, {p.key: v}, symbols))
            except ConfigError as exc:
                first = str(exc).splitlines()[0]
                out.append(f"{p.key} = {show(v)} with the base's other settings: {first}")
    return out


def _overlap(train: str | None, test: str | None) -> list[str]:
    """A warning when the test range shares candles with the training range."""
    a, b = parse_timerange(train), parse_timerange(test)
    lo = max(a.start_ms or -(2**62), b.start_ms or -(2**62))
    hi = min(
        a.stop_ms if a.stop_ms is not None else 2**62, b.stop_ms if b.stop_ms is not None else 2**62
    )
    if lo > hi:
        return []
    return [
        f"--test {test} overlaps --train {train or '(all candles)'} (both ends are "
        "inclusive): the out-of-sample check is partly in sample"
    ]


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """One driver per run folder: a second one would find the first one's running
    trials and take them for cut-off ones. The kernel drops the lock when we die."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / LOCK_FILE).open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{run_dir}: another sweep is running in this folder") from None
        yield


def run_sweep(p: Plan, progress: TrialProgress | None = None) -> SweepResult:
    """Run (or resume) the planned sweep to ``--trials`` finished trials, then write the
    outputs and run the out-of-sample check."""
    req = p.request
    with _locked(p.run_dir), contextlib.ExitStack() as stack:
        study = open_study(p.storage, p.study, p.direction, req.seed, p.fingerprint)
        retried = requeue_cut_off(study, req.space.keys())
        to_run = counted(study) < req.trials
        if not to_run and req.test is None:  # nothing for a cluster to do
            return _finish(p, study, retried)
        client = stack.enter_context(cluster(req.scheduler, req.workers))
        try:
            run_study(client, study, req.space, p.train, req.trials, table_too(p, study, progress))
        except BaseException:  # Ctrl-C, a failed trial: keep the table of what finished
            with contextlib.suppress(Exception):
                write_trials_csv(p.run_dir, study, req.space)
            raise
        result = _finish(p, study, retried)
        if req.test is not None and result.best is not None:
            result.oos = _out_of_sample(p, study, client)
            shown = list(dict.fromkeys((req.objective, *OOS_SHOWN)))
            result.files["oos"] = write_oos_csv(p.run_dir, result.oos, req.space.keys(), shown)
    return result


def table_too(
    p: Plan, study: optuna.Study, progress: TrialProgress | None, every_s: float = TABLE_EVERY_S
) -> TrialProgress:
    """``progress``, and trials.csv rewritten at most every ``every_s`` seconds while a
    long sweep runs (the storage stays the truth; the table is for a look meanwhile)."""
    written = time.monotonic()

    def report(done: int, total: int, best: float | None) -> None:
        nonlocal written
        if progress is not None:
            progress(done, total, best)
        if time.monotonic() - written >= every_s:
            write_trials_csv(p.run_dir, study, p.request.space)
            written = time.monotonic()

    return report


def _finish(p: Plan, study: optuna.Study, retried: list[int]) -> SweepResult:
    """trials.csv and best.toml from the storage; the result without the OOS rows."""
    req = p.request
    files = {"trials": write_trials_csv(p.run_dir, study, req.space)}
    top = best_trials(study, 1)
    best = clean_params(req.space, top[0].params) if top else None
    if top and best is not None:
        keep = {k: str(getattr(req.base, k)) for k in ("state_dir", "runs_dir")}
        if req.base.database_url:
            keep["database_url"] = req.base.database_url
        table = best_table(p.train.base, best, p.loaded.symbols, keep)
        header = [
            f"fsmtrader sweep {p.study}: trial {top[0].number} of {len(study.trials)}, "
            f"{req.objective} = {top[0].value!r} on --train {req.train or 'all candles'}",
        ]
        files["best"] = write_best_toml(p.run_dir, table, header)
    return SweepResult(
        p.run_dir,
        p.study,
        p.storage,
        p.direction,
        counted(study),
        retried,
        best,
        top[0].value if top else None,
        top[0].number if top else None,
        files,
        warnings=list(p.warnings),
    )


def _out_of_sample(p: Plan, study: optuna.Study, client: Any) -> list[OosRow]:
    """The ``--top`` best trials on the training range, run again on ``--test``."""
    req = p.request
    top = best_trials(study, req.top)
    keep = None if p.train.keep_dir is None else str(Path(p.train.keep_dir).parent / "oos")
    spec = replace(p.train, data=data_spec(req, req.test, "--test"), keep_dir=keep)
    params = [clean_params(req.space, t.params) for t in top]
    labels = [f"oos-{rank:02d}-trial-{t.number:05d}" for rank, t in enumerate(top, start=1)]
    outcomes = run_many(client, spec, params, labels)
    return [
        OosRow(
            rank, t.number, prm, dict(t.user_attrs.get("metrics", {})), o.metrics, o.invalid or ""
        )
        for rank, (t, prm, o) in enumerate(zip(top, params, outcomes, strict=True), start=1)
    ]
