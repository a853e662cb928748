"""Sweep scaling: the same trials on an embedded Dask cluster of 1, then 2, worker
processes (single-threaded, 127.0.0.1). Prints trials/s for each, the speed-up, how busy
the workers were (the trials' own backtest seconds over wall seconds x workers), and a
trial's wall and CPU seconds in its worker (the CPU seconds stay put from 1 to 2 workers;
when other jobs hold the cores, the wall seconds grow instead). The candles are loaded on
every worker before the clock starts, so what is timed is the trials' work. Then whole
sweeps of as many trials through optuna (the driver's ask and tell on SQLite included),
with the driver's CPU milliseconds per trial.

    .venv/bin/python benchmarks/sweep_scaling.py [--trials 16] [--days 7] [--workers 1,2]
        [--repeat 3] [--data FILE]

--data defaults to the real Binance LTC/USDT month in ../shared/data (its first --days),
else a synthetic market written to a temporary file.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fsmtrader.config import load_settings
from fsmtrader.feeds import synthetic_market, write_csv
from fsmtrader.research.sweep import parse_space
from fsmtrader.research.sweep.data import DataSpec, cached_inputs
from fsmtrader.research.sweep.driver import cluster, run_many, run_study, slots
from fsmtrader.research.sweep.study import open_study
from fsmtrader.research.sweep.trial import TrialSpec
from fsmtrader.smoke.derive import settings_table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LTC = SHARED / "binance_usdm_LTCUSDT_1m_2026-02.csv"


def params(n: int, seed: int) -> list[dict[str, float]]:
    """``n`` fixed trials, the same for every cluster size."""
    rng = random.Random(seed)
    return [
        {
            "entry.drop_trigger_pct": round(rng.uniform(0.5, 3.0), 2),
            "exit.take_profit_pct": round(rng.uniform(0.3, 3.0), 2),
            "exit.stop_loss_pct": round(rng.uniform(0.5, 4.0), 2),
        }
        for _ in range(n)
    ]


def data_file(args: argparse.Namespace, tmp: Path) -> tuple[Path, str | None]:
    if args.data is not None:
        return args.data, None
    if LTC.exists():
        start = datetime(2026, 2, 1, tzinfo=UTC)
        stop = start + timedelta(days=args.days - 1)
        return LTC, f"{start:%Y%m%d}-{stop:%Y%m%d}"
    (c,) = synthetic_market(["BTC/USDT"], minutes=args.days * 1440, seed=1)
    path = tmp / "BTCUSDT-1m-synthetic.csv"
    write_csv(path, c)
    return path, None


def run(
    spec: TrialSpec, trials: list[dict[str, float]], workers: int, repeat: int
) -> tuple[float, float, float]:
    """(wall seconds, summed trial seconds, summed trial CPU seconds) of ``trials`` on
    ``workers`` processes: the fastest of ``repeat`` rounds on one cluster (the machine
    may be busy with others)."""
    best = (float("inf"), 0.0, 0.0)
    with cluster(None, workers) as client:
        if slots(client) != workers:
            raise RuntimeError(f"asked for {workers} workers, got {slots(client)}")
        client.run(cached_inputs, spec.data)  # setup, not timed: each worker loads once
        for _ in range(repeat):
            started = time.perf_counter()
            outcomes = run_many(client, spec, trials, [f"t{i}" for i in range(len(trials))])
            wall = time.perf_counter() - started
            if any(o.loaded or o.invalid for o in outcomes):
                raise RuntimeError("a timed trial loaded candles or was refused")
            busy, cpu = sum(o.run_s for o in outcomes), sum(o.cpu_s for o in outcomes)
            best = min(best, (wall, busy, cpu))
    return best


SPACE = {
    "entry.drop_trigger_pct": {"low": 0.5, "high": 3.0, "step": 0.25},
    "exit.take_profit_pct": {"low": 0.3, "high": 3.0, "log": True},
    "exit.stop_loss_pct": {"low": 0.5, "high": 4.0, "step": 0.5},
}


def through_study(spec: TrialSpec, n: int, workers: int, folder: Path) -> tuple[float, float]:
    """(wall seconds, the driver's CPU seconds) of a whole sweep of ``n`` trials: optuna's
    ask and tell on an SQLite storage in the driver, the trials on the cluster."""
    space = parse_space(SPACE, "benchmark")
    study = open_study(f"sqlite:///{folder / f'w{workers}.db'}", "b", "maximize", 1, "b")
    with cluster(None, workers) as client:
        client.run(cached_inputs, spec.data)
        started, cpu = time.perf_counter(), time.process_time()
        run_study(client, study, space, spec, n)
        return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--no-study", action="store_true", help="skip the whole-sweep timing")
    args = ap.parse_args()
    base = settings_table(load_settings(None, env={}, overrides={"exit": {"max_hold_min": 240}}))
    with tempfile.TemporaryDirectory() as tmp:
        path, timerange = data_file(args, Path(tmp))
        spec = TrialSpec(base, DataSpec((str(path),), None, timerange, "USDT"), "return_pct")
        loaded, _ = cached_inputs(spec.data)
        candles = sum(len(c) for c in loaded.series)
        print(f"data        {path.name} {timerange or ''}: {candles:,} candles per trial")
        print(f"trials      {args.trials} (the same set for every cluster size)")
        trials = params(args.trials, args.seed)
        first = 0.0
        for workers in (int(w) for w in args.workers.split(",")):
            wall, busy, cpu = run(spec, trials, workers, args.repeat)
            rate = args.trials / wall
            first = first or rate
            print(
                f"workers {workers}   {wall:6.2f} s  {rate:6.2f} trials/s  "
                f"speed-up x{rate / first:.2f}  busy {busy / (wall * workers):.0%}  "
                f"per trial {busy / args.trials:.3f} s in the worker, "
                f"{cpu / args.trials:.3f} CPU-s"
            )
        if args.no_study:
            return
        print("whole sweeps (optuna TPE, SQLite storage; each size its own study):")
        for workers in (int(w) for w in args.workers.split(",")):
            wall, driver = through_study(spec, args.trials, workers, Path(tmp))
            print(
                f"workers {workers}   {wall:6.2f} s  {args.trials / wall:6.2f} trials/s  "
                f"driver {1000 * driver / args.trials:.0f} CPU-ms per trial"
            )


if __name__ == "__main__":  # the local cluster's processes re-import this file
    main()
