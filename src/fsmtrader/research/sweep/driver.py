"""Trials on Dask distributed: an embedded local cluster, or an existing one.

The driver (this process) owns the study: it asks optuna for a trial, sends the trial's
parameters to a worker, and tells optuna the outcome. Workers never touch the storage;
they load the candles once per process (``data.cached_inputs``) and run ``evaluate``.
The driver keeps one trial more in flight than there are worker threads, so a worker
never waits for the driver to ask optuna for its next trial.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import optuna
from distributed import Client, Future, LocalCluster, as_completed
from optuna.distributions import BaseDistribution
from optuna.trial import Trial, TrialState

from fsmtrader.errors import FsmTraderError
from fsmtrader.research.sweep.space import Space
from fsmtrader.research.sweep.study import clean_params, counted, distributions
from fsmtrader.research.sweep.trial import Outcome, TrialSpec, evaluate

__all__ = ["TrialProgress", "cluster", "run_many", "run_study", "slots"]

#: ``progress(finished, total, best)``: trials finished of the total, the best value yet.
TrialProgress = Callable[[int, int, float | None], None]


@contextmanager
def cluster(scheduler: str | None, workers: int) -> Iterator[Client]:
    """A client of the cluster at ``scheduler`` (``tcp://host:port``), or of a local
    cluster of ``workers`` single-threaded processes on 127.0.0.1, no dashboard, that
    stops when the block ends."""
    # Dask logs at INFO to its loggers, and they propagate to the CLI's handler: one
    # line per worker start and stop is noise between the header and the progress bar.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s", set_as_default=False)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError, ValueError) as exc:
            raise FsmTraderError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    local = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # no dashboard; the scheduler's plain HTTP routes (health, metrics) on a free
        # port of 127.0.0.1, not on 8787, where another sweep may be
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
    )
    with local, Client(local, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        # Ctrl-C reaches the whole process group: the driver stops the sweep and closes
        # the cluster, so its worker processes must not die first, each with a traceback.
        client.run(_ignore_sigint)
        yield client


def _ignore_sigint() -> None:
    """Run in each worker process's main thread (where its event loop runs)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def slots(client: Client) -> int:
    """How many trials the cluster runs at once: its worker threads (at least one)."""
    threads: dict[str, int] = client.nthreads()  # type: ignore[no-untyped-call]
    return max(sum(threads.values()), 1)


def _submit(
    client: Client, spec: TrialSpec, params: Mapping[str, Any], label: str
) -> Future[Outcome]:
    return client.submit(evaluate, spec, dict(params), label, pure=False)


def run_study(
    client: Client,
    study: optuna.Study,
    space: Space,
    spec: TrialSpec,
    total: int,
    progress: TrialProgress | None = None,
) -> None:
    """Run trials until the study holds ``total`` finished ones."""
    dists: dict[str, BaseDistribution] = distributions(space)
    inflight: dict[Future[Outcome], Trial] = {}
    queue = as_completed(loop=client.loop)  # type: ignore[no-untyped-call]
    depth = slots(client) + 1
    done = counted(study)

    def launch() -> None:
        while done + len(inflight) < total and len(inflight) < depth:
            trial = study.ask(dists)
            params = clean_params(space, trial.params)
            future = _submit(client, spec, params, f"trial-{trial.number:05d}")
            inflight[future] = trial
            queue.add(future)  # type: ignore[no-untyped-call]

    launch()
    _report(progress, study, done, total)
    for future in queue:
        trial = inflight.pop(future)
        try:
            outcome: Outcome = future.result()
        except Exception as exc:  # a bug on the worker: fail it (resumed later), stop
            study.tell(trial, state=TrialState.FAIL)
            raise FsmTraderError(
                f"trial {trial.number} failed on a worker: {type(exc).__name__}: {exc}"
            ) from exc
        _tell(study, trial, spec.objective, outcome)
        done += 1
        _report(progress, study, done, total)
        launch()


def _tell(study: optuna.Study, trial: Trial, objective: str, outcome: Outcome) -> None:
    """Record the outcome on the trial, then finish it: COMPLETE with its value, or
    PRUNED with the reason (refused settings, an undefined objective)."""
    trial.set_user_attr("metrics", outcome.metrics)
    trial.set_user_attr("worker", outcome.worker)
    trial.set_user_attr("run_s", outcome.run_s)
    trial.set_user_attr("loaded", outcome.loaded)  # the first trial of a worker process
    if outcome.invalid is not None:
        trial.set_user_attr("note", f"settings refused: {outcome.invalid}")
        study.tell(trial, state=TrialState.PRUNED)
    elif outcome.value is None:
        trial.set_user_attr("note", f"{objective} is undefined for this run")
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, outcome.value)


def _report(progress: TrialProgress | None, study: optuna.Study, done: int, total: int) -> None:
    if progress is None:
        return
    try:
        best: float | None = study.best_value
    except ValueError:  # no COMPLETE trial yet
        best = None
    progress(done, total, best)


def run_many(
    client: Client,
    spec: TrialSpec,
    params: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    progress: TrialProgress | None = None,
) -> list[Outcome]:
    """Run each of ``params`` once on the cluster; the outcomes in the same order."""
    futures = [_submit(client, spec, p, label) for p, label in zip(params, labels, strict=True)]
    position = {f.key: i for i, f in enumerate(futures)}
    results: list[Outcome | None] = [None] * len(futures)
    done = as_completed(futures, loop=client.loop)  # type: ignore[no-untyped-call]
    for n, future in enumerate(done, start=1):
        results[position[future.key]] = future.result()
        if progress is not None:
            progress(n, len(futures), None)
    return [r for r in results if r is not None]
