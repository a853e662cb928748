"""What a sweep leaves in its run folder: trials.csv, best.toml and oos.csv.

Each file is written whole (a temporary name in the same folder, then a rename), so a
sweep killed while writing leaves the previous version, never half of one. The files are
rebuilt from the study's storage, the one source of truth, every time a sweep ends.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from fsmtrader.research.report import METRIC_KEYS
from fsmtrader.research.sweep.space import Space
from fsmtrader.research.sweep.study import clean_params
from fsmtrader.research.sweep.trial import Figure, trial_table
from fsmtrader.smoke.derive import to_toml

__all__ = [
    "BEST_TOML",
    "OOS_CSV",
    "TRIALS_CSV",
    "OosRow",
    "best_table",
    "trials_rows",
    "write_atomic",
    "write_best_toml",
    "write_oos_csv",
    "write_trials_csv",
]

TRIALS_CSV, BEST_TOML, OOS_CSV = "trials.csv", "best.toml", "oos.csv"


def write_atomic(path: Path, text: str) -> None:
    """``text`` into ``path`` whole: a temporary file beside it, flushed, then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(["" if v is None else v for v in row] for row in rows)
    return buf.getvalue()


def trials_rows(study: optuna.Study, space: Space) -> tuple[list[str], list[list[Any]]]:
    """Every trial of the study, in order: number, state, objective value, the swept
    parameters (as the trial used them), every report figure, why it was pruned or which
    trial it retries."""
    keys = space.keys()
    header = [
        "number",
        "state",
        "value",
        *keys,
        *METRIC_KEYS,
        "note",
        "retry_of",
        "worker",
        "run_s",
    ]
    rows: list[list[Any]] = []
    for t in study.get_trials(deepcopy=False):
        figures: Mapping[str, Figure] = t.user_attrs.get("metrics", {})
        params = clean_params(space, t.params) if t.params else {}
        rows.append(
            [
                t.number,
                t.state.name,
                t.value,
                *(params.get(k) for k in keys),
                *(figures.get(k) for k in METRIC_KEYS),
                t.user_attrs.get("note", ""),
                t.user_attrs.get("retry_of"),
                t.user_attrs.get("worker", ""),
                t.user_attrs.get("run_s"),
            ]
        )
    return header, rows


def write_trials_csv(run_dir: Path, study: optuna.Study, space: Space) -> Path:
    path = run_dir / TRIALS_CSV
    write_atomic(path, _csv(*trials_rows(study, space)))
    return path


def best_table(
    base: Mapping[str, Any],
    params: Mapping[str, Any],
    symbols: list[str],
    keep: Mapping[str, Any],
) -> dict[str, Any]:
    """The base settings with the best trial's parameters and the data's symbols, plus
    the base's own folders (``keep``): the complete settings of the best trial."""
    return {**dict(keep), **trial_table(base, params, symbols)}


def write_best_toml(run_dir: Path, table: Mapping[str, Any], header: Sequence[str]) -> Path:
    """``best.toml``: a config file ``fsmtrader backtest --config`` accepts."""
    path = run_dir / BEST_TOML
    comments = "".join(f"# {line}\n" for line in header)
    write_atomic(path, comments + to_toml(dict(table)))
    return path


@dataclass(frozen=True)
class OosRow:
    """One of the best trials on the training range, run again on the test range."""

    rank: int
    trial: int
    params: dict[str, Any]
    train: dict[str, Figure]
    test: dict[str, Figure]
    note: str = ""


def write_oos_csv(
    run_dir: Path, rows: Sequence[OosRow], keys: Sequence[str], shown: Sequence[str]
) -> Path:
    """``oos.csv``: rank, trial, parameters, then each ``shown`` figure on train and test."""
    header = ["rank", "trial", *keys]
    for name in shown:
        header += [f"train_{name}", f"test_{name}"]
    header.append("note")
    body = []
    for r in rows:
        line: list[Any] = [r.rank, r.trial, *(r.params.get(k) for k in keys)]
        for name in shown:
            line += [r.train.get(name), r.test.get(name)]
        line.append(r.note)
        body.append(line)
    path = run_dir / OOS_CSV
    write_atomic(path, _csv(header, body))
    return path
