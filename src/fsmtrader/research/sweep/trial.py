"""One trial: the base settings with the trial's parameters, validated by the Settings
model, backtested in this process on candles it already holds, scored by the report.

``evaluate`` is what a Dask worker runs. It is a pure function of its arguments (the
backtest is deterministic), so a trial run on a cluster and the same trial run here
give the same figures, and a trial re-run after a crash gives what it would have.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsmtrader.config import Settings, load_settings
from fsmtrader.errors import ConfigError
from fsmtrader.research.report import read_report
from fsmtrader.research.sweep.data import DataSpec, cached_inputs
from fsmtrader.runner import Backtest
from fsmtrader.smoke.derive import merge

__all__ = ["Outcome", "TrialSpec", "evaluate", "nested", "trial_settings", "trial_table"]

Figure = float | int | None


@dataclass(frozen=True)
class TrialSpec:
    """What every trial of a sweep shares: the base settings as a TOML table (no
    environment is read on a worker: a cluster's workers do not share your shell), the
    candles, the objective, and where to keep each trial's run folder (None: nowhere)."""

    base: dict[str, Any]
    data: DataSpec
    objective: str
    keep_dir: str | None = None


@dataclass(frozen=True)
class Outcome:
    """A trial's result. ``invalid`` says why the Settings model refused the trial's
    settings (then there are no figures); ``loaded``: this trial's process read the
    candles (the first trial on each worker process), in ``load_s`` seconds."""

    metrics: dict[str, Figure] = field(default_factory=dict)
    value: float | None = None
    invalid: str | None = None
    worker: str = ""
    loaded: bool = False
    load_s: float = 0.0
    run_s: float = 0.0
    cpu_s: float = 0.0  # the backtest's CPU time in its process (run_s less any waiting)


def nested(params: Mapping[str, Any]) -> dict[str, Any]:
    """``{"entry.drop_trigger_pct": 2}`` as ``{"entry": {"drop_trigger_pct": 2}}``."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        *tables, name = key.split(".")
        node = out
        for t in tables:
            node = node.setdefault(t, {})
        node[name] = value
    return out


def trial_table(
    base: Mapping[str, Any], params: Mapping[str, Any], symbols: list[str]
) -> dict[str, Any]:
    """The settings table of a trial: the base, the parameters, the data's symbols."""
    return merge(merge(dict(base), nested(params)), {"market": {"symbols": symbols}})


def trial_settings(table: Mapping[str, Any]) -> Settings:
    """``table`` through the Settings model; a ConfigError naming each bad key."""
    try:
        return load_settings(None, env={}, overrides=table)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(" (from override)", "")) from None


def evaluate(spec: TrialSpec, params: Mapping[str, Any], label: str) -> Outcome:
    """Run one trial where this is called (a Dask worker, or here)."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    started = time.perf_counter()
    data, loaded = cached_inputs(spec.data)
    load_s = time.perf_counter() - started
    try:
        settings = trial_settings(trial_table(spec.base, params, data.symbols))
    except ConfigError as exc:
        return Outcome(invalid=str(exc).replace("\n", "; "), worker=worker, loaded=loaded)
    keep = spec.keep_dir is not None
    root = Path(spec.keep_dir) if spec.keep_dir is not None else Path(tempfile.mkdtemp())
    run_dir = root / label
    shutil.rmtree(run_dir, ignore_errors=True)  # a retried trial starts afresh
    shutil.rmtree(run_dir.with_name(run_dir.name + ".partial"), ignore_errors=True)
    begun, cpu = time.perf_counter(), time.process_time()
    try:
        Backtest(settings, data.series, data.filters, run_dir).run(report_html=keep)
        figures: dict[str, Figure] = dict(read_report(run_dir)["metrics"])
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    run_s, cpu_s = time.perf_counter() - begun, time.process_time() - cpu
    value = figures.get(spec.objective)
    score = float(value) if isinstance(value, int | float) and math.isfinite(value) else None
    timing = (round(load_s, 6), round(run_s, 6), round(cpu_s, 6))
    return Outcome(figures, score, None, worker, loaded, *timing)
