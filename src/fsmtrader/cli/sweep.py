"""The ``sweep`` command: optuna over settings, trials on a Dask cluster, out-of-sample check."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from fsmtrader.cli.console import err, out
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import ConfigOpt, DataOpt, MarketsOpt, settings_from
from fsmtrader.config import Settings
from fsmtrader.config.display import show
from fsmtrader.errors import ConfigError

if TYPE_CHECKING:  # optuna and dask load only when a sweep runs: every command imports this
    from fsmtrader.research.sweep import SweepResult
    from fsmtrader.research.sweep.driver import TrialProgress
    from fsmtrader.research.sweep.run import Plan

Opt = typer.Option
TABLE_SHOWN = ("return_pct", "trades")  # next to the objective (oos.csv has more)


SpaceOpt = Annotated[Path, Opt("--space", help="TOML file: the settings to vary and their ranges.")]
TrialsOpt = Annotated[int, Opt("--trials", help="Finished trials the study should hold.")]
ObjectiveOpt = Annotated[str, Opt("--objective", help="Report figure to optimise, e.g. sharpe.")]
SymbolsOpt = Annotated[str | None, Opt(help="Symbols, comma-separated, e.g. BTC/USDT,ETH/USDT.")]
TrainOpt = Annotated[
    str | None, Opt(help="Training range YYYYMMDD-YYYYMMDD (default: all candles).")
]
TestOpt = Annotated[str | None, Opt(help="Out-of-sample range: the --top best trials run on it.")]
DirectionOpt = Annotated[str | None, Opt(help="maximize or minimize (default: the figure's own).")]
SchedulerOpt = Annotated[str | None, Opt(help="An existing Dask scheduler, tcp://HOST:PORT.")]
WorkersOpt = Annotated[int, Opt(help="Worker processes of the embedded local cluster.")]
SeedOpt = Annotated[int | None, Opt(help="Sampler seed (default: the config's seed).")]
StorageOpt = Annotated[
    str | None, Opt(help="optuna storage URL (default: SQLite in the run folder).")
]
StudyOpt = Annotated[str | None, Opt(help="Study name (default: from the space and the inputs).")]
TopOpt = Annotated[int, Opt(help="How many of the best trials to re-run on --test.")]
RunDirOpt = Annotated[Path | None, Opt(help="The sweep's folder (default: runs_dir/sweep-STUDY).")]
FastOpt = Annotated[
    bool, Opt("--fast", help="Trials with backtest.fast: skip candles where nothing can happen.")
]
KeepOpt = Annotated[bool, Opt("--keep-runs", help="Keep each trial's run folder (RUN_DIR/trials).")]
JsonOpt = Annotated[bool, Opt("--json", help="Print one JSON object at the end.")]


def sweep(
    space: SpaceOpt,
    trials: TrialsOpt,
    objective: ObjectiveOpt,
    data: DataOpt,
    config: ConfigOpt = None,
    symbols: SymbolsOpt = None,
    train: TrainOpt = None,
    test: TestOpt = None,
    direction: DirectionOpt = None,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = 2,
    seed: SeedOpt = None,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    top: TopOpt = 5,
    run_dir: RunDirOpt = None,
    fast: FastOpt = False,
    keep_runs: KeepOpt = False,
    markets: MarketsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search settings with optuna (seeded), running trials on Dask distributed; resumes."""

    def run() -> None:
        from fsmtrader.research.sweep import SweepRequest, load_space, plan, run_sweep

        if direction not in (None, "maximize", "minimize"):
            raise ConfigError(f"--direction {direction}: must be maximize or minimize")
        wanted = [s.strip() for s in symbols.split(",")] if symbols else None
        base = _base_settings(config, data, wanted, fast)
        req = SweepRequest(
            base, load_space(space), tuple(str(p) for p in data),
            tuple(wanted) if wanted else None, train, test, trials, objective,
            direction=direction,  # type: ignore[arg-type]  # checked above
            seed=base.seed if seed is None else seed, scheduler=scheduler, workers=workers,
            storage=storage, study=study, run_dir=run_dir, top=top, keep_runs=keep_runs,
            markets=str(markets) if markets is not None else None,
        )  # fmt: skip
        p = plan(req)
        if not as_json:
            _header(p)
        with _bar(quiet=as_json) as progress:
            result = run_sweep(p, progress)
        if as_json:
            out.print_json(json.dumps(_as_json(result), default=str))
        else:
            _print_result(p, result)

    guard(run)


def _base_settings(
    config: Path | None, data: list[Path], wanted: list[str] | None, fast: bool
) -> Settings:
    """The config's settings; as ``backtest`` does, with the data's symbols when the
    config's own do not fit its quote (the trials run on the data's symbols anyway)."""
    from fsmtrader.research.inputs import input_symbols

    extra = {"backtest": {"fast": True}} if fast else {}
    try:
        return settings_from(config, **extra)
    except ConfigError:
        return settings_from(config, market={"symbols": input_symbols(data, wanted)}, **extra)


def _header(p: Plan) -> None:
    req = p.request
    where = req.scheduler or f"a local cluster of {req.workers} worker(s)"
    err.print(
        f"sweep {escape(p.study)}: {req.trials} trials, {p.direction} {req.objective} on "
        f"{len(p.loaded.series)} series ({', '.join(p.loaded.symbols)}), "
        f"{sum(len(c) for c in p.loaded.series)} candles, on {escape(where)}",
        highlight=False,
    )
    for param in req.space.params:
        err.print(f"  {escape(param.describe())}", highlight=False)
    for warning in p.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    err.print(f"  study in {escape(p.storage)}", highlight=False)


@contextmanager
def _bar(*, quiet: bool) -> Iterator[TrialProgress | None]:
    if quiet:
        yield None
        return
    columns = (
        TextColumn("trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("sweep", total=None, best="-")

        def progress(done: int, total: int, best: float | None) -> None:
            bar.update(
                task, completed=done, total=total, best="-" if best is None else f"{best:.6g}"
            )

        yield progress


def _print_result(p: Plan, r: SweepResult) -> None:
    req = p.request
    if r.retried:
        err.print(f"resumed: trial(s) {', '.join(map(str, r.retried))} were cut off and re-run")
    if r.best is None:
        out.print(f"no trial finished with a {req.objective}; see {r.files['trials']}")
        return
    out.print(
        f"best: trial {r.best_trial}, {req.objective} = {r.best_value:.6g} "
        f"({r.finished} finished trials)",
        highlight=False,
    )
    for key, value in r.best.items():
        out.print(f"  {key} = {show(value)}", highlight=False)
    if r.oos:
        out.print(_oos_table(req.objective, req.space.keys(), r))
    elif req.test is None:
        err.print(
            "[yellow]note:[/yellow] no --test range: the best trial was not checked out of sample"
        )
    for name, path in r.files.items():
        out.print(f"{name}: {escape(str(path))}", highlight=False)


def _oos_table(objective: str, keys: Sequence[str], r: SweepResult) -> Table:
    t = Table(title=f"out of sample: the best {len(r.oos)} on --train, run on --test")
    for col in ("rank", "trial", *(k.rsplit(".", 1)[-1] for k in keys)):
        t.add_column(col, justify="right")
    for name in dict.fromkeys((objective, *TABLE_SHOWN)):
        t.add_column(f"{name}\ntrain", justify="right")
        t.add_column(f"{name}\ntest", justify="right")
    for row in r.oos:
        cells = [str(row.rank), str(row.trial), *(_fig(row.params.get(k)) for k in keys)]
        for name in dict.fromkeys((objective, *TABLE_SHOWN)):
            cells += [_fig(row.train.get(name)), _fig(row.test.get(name))]
        t.add_row(*cells)
    return t


def _fig(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _as_json(r: SweepResult) -> dict[str, Any]:
    return {
        "run_dir": str(r.run_dir),
        "study": r.study,
        "storage": r.storage,
        "direction": r.direction,
        "finished": r.finished,
        "retried": r.retried,
        "best_trial": r.best_trial,
        "best_value": r.best_value,
        "best": r.best,
        "files": {k: str(v) for k, v in r.files.items()},
        "oos": [
            {
                "rank": o.rank,
                "trial": o.trial,
                "params": o.params,
                "train": o.train,
                "test": o.test,
                "note": o.note,
            }
            for o in r.oos
        ],
        "warnings": r.warnings,
    }
