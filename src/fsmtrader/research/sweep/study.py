"""The sweep's optuna study: its storage, its seeded sampler, and how it resumes.

The study lives in optuna's storage (an SQLite file in the run folder by default), so a
sweep stopped any way (Ctrl-C, a crash, SIGKILL, a power cut) resumes by running the
same command again. What counts towards ``--trials N`` is a *finished* trial: COMPLETE,
or PRUNED (its settings were refused by the Settings model, or its objective is
undefined, e.g. a Sharpe with no trades). A trial still RUNNING in the storage when a
sweep starts was cut off with its driver: it is marked FAIL and its parameters are
queued again as a new trial (``retry_of`` names the one it replaces), so no trial is
lost, none is counted twice, and the sweep reaches exactly N finished trials. A trial
cut off before all its parameters were drawn never ran: it stays FAIL, not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError

from fsmtrader.errors import ConfigError
from fsmtrader.research.sweep.space import Param, Space

__all__ = [
    "COUNTED",
    "Direction",
    "clean_params",
    "counted",
    "distributions",
    "open_study",
    "requeue_cut_off",
]

Direction = Literal["maximize", "minimize"]
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
FINGERPRINT = "fingerprint"

optuna.logging.set_verbosity(logging.WARNING)


def distributions(space: Space) -> dict[str, BaseDistribution]:
    """The optuna distribution of each swept setting, in the space's order."""
    return {p.key: _distribution(p) for p in space.params}


def _distribution(p: Param) -> BaseDistribution:
    if p.kind == "choice":
        return CategoricalDistribution(p.choices)
    if p.kind == "int":
        step = int(p.step) if p.step is not None else 1
        return IntDistribution(int(p.low), int(p.high), log=p.log, step=step)
    return FloatDistribution(p.low, p.high, log=p.log, step=p.step)


def clean_params(space: Space, params: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's values as a user writes them: a stepped float on its grid (optuna's
    ``low + k * step`` can come out as 1.5000000000000002)."""
    out: dict[str, Any] = {}
    for p in space.params:
        value = params[p.key]
        if p.kind == "float" and p.step is not None:
            digits = max(_decimals(p.step), _decimals(p.low))
            value = round(float(value), digits)
        out[p.key] = value
    return out


def _decimals(x: float) -> int:
    text = repr(float(x))
    return len(text.split(".")[1].rstrip("0")) if "." in text and "e" not in text else 10


def open_study(
    storage: str, name: str, direction: Direction, seed: int, fingerprint: str
) -> optuna.Study:
    """Create the study or load it to resume; refuse one made by a different sweep (its
    trials would not mean the same). The sampler's seed moves on by the number of trials
    already stored, so a resumed sweep does not draw the first session's points again."""
    try:
        study = optuna.create_study(
            storage=_storage(storage), study_name=name, direction=direction, load_if_exists=True
        )
    except (ValueError, RuntimeError, ImportError, SQLAlchemyError) as exc:  # bad URL, file
        raise ConfigError(f"--storage {storage}: cannot open it ({exc})") from None
    stored = study.user_attrs.get(FINGERPRINT)
    if stored is None and not study.trials:
        study.set_user_attr(FINGERPRINT, fingerprint)
    elif stored != fingerprint:
        raise ConfigError(
            f"--study {name}: it exists in {storage} for a different sweep (another base "
            "config, space, data, objective or seed); choose another --study or --run-dir"
        )
    if study.direction.name.lower() != direction:
        raise ConfigError(f"--direction {direction}: study {name} is {study.direction.name}")
    study.sampler = optuna.samplers.TPESampler(
        seed=seed + len(study.trials), constant_liar=True, n_startup_trials=10
    )
    return study


def _storage(url: str) -> str | RDBStorage:
    """The storage at ``url``; an SQLite file in WAL mode with ``synchronous = NORMAL``:
    a commit is then one write, not a sync of the journal and the file (it costs the
    driver less than a third as much per trial). A killed sweep keeps every commit; a
    power cut may lose the last ones, never the file's consistency (those trials are
    found RUNNING or not at all, and run again)."""
    if not url.startswith("sqlite:"):
        return url
    storage = RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    event.listen(storage.engine, "connect", _sqlite_pragmas)
    storage.engine.dispose()  # the connection made while creating the tables had none
    return storage


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def counted(study: optuna.Study) -> int:
    """Finished trials: those that count towards ``--trials``."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def requeue_cut_off(study: optuna.Study, keys: Sequence[str]) -> list[int]:
    """Mark every trial left RUNNING by a driver that died FAIL, and queue the parameters
    of every FAIL trial not yet retried as a new trial. Returns the numbers queued.

    Only one driver may run a study at a time (the sweep holds a lock on its run
    folder), so a RUNNING trial found at start belongs to a dead one. A trial whose
    parameters were not all drawn when its driver died (``keys`` are the space's) never
    reached a worker: it stays FAIL and the sampler draws a new trial in its place."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    queued = []
    for t in trials:
        params = _drawn(t, keys)
        if t.state == TrialState.FAIL and t.number not in retried and params is not None:
            study.enqueue_trial(params, user_attrs={"retry_of": t.number})
            queued.append(t.number)
    return queued


def _drawn(trial: FrozenTrial, keys: Sequence[str]) -> dict[str, Any] | None:
    """The trial's parameters if every one of ``keys`` was drawn (a queued retry's are
    fixed from the start), None for a trial cut off while it was being asked."""
    fixed = trial.system_attrs.get("fixed_params")
    params = dict(fixed) if isinstance(fixed, dict) else dict(trial.params)
    return params if all(k in params for k in keys) else None


def best_trials(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The ``k`` best COMPLETE trials, best first (ties: the earlier trial), each set of
    parameters once."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = -1.0 if study.direction.name.lower() == "maximize" else 1.0
    ranked = sorted(done, key=lambda t: (sign * float(t.value or 0.0), t.number))
    seen: set[str] = set()
    out: list[FrozenTrial] = []
    for t in ranked:
        key = repr(sorted(t.params.items()))
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out[:k]
