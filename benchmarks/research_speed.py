"""Research speed: the 5-pair synthetic year (5 x 525,600 one-minute candles, one engine,
shared slots, with the audit trail) through ``fsmtrader backtest --data DIR`` as a real
process, stepping every candle and with ``--fast``. Prints, for each, the whole process
(wall time, CPU, candles/s, peak RSS), the engine loop (``loop_s`` from summary.json),
trades and realised PnL, and whether fast and step wrote the same trades and audit trail.

    .venv/bin/python benchmarks/research_speed.py [--data DIR] [--pairs 5] [--days 365]
        [--seed 1] [--repeat 1] [--profile] [--freqtrade /tmp/ft-venv]

``--data`` is generated (``fsmtrader synthetic-data``) when it holds no candle files.
``--profile``: where the time goes (cProfile of each loop in this process, and the import
time of the CLI). ``--freqtrade VENV``: the same candles and strategy through freqtrade's
backtesting in that venv (never this project's), side by side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_process import Proc, run_process

from fsmtrader.research.synthetic_year import write_year

FSMTRADER = [sys.executable, "-m", "fsmtrader"]


def ensure_data(folder: Path, pairs: int, days: int, seed: int) -> None:
    if sorted(folder.glob("*-1m.feather")):
        print(f"data             {folder} (reused)")
        return
    t0 = time.perf_counter()
    write_year(folder, pairs=pairs, days=days, seed=seed)
    print(f"data             {folder} (generated in {time.perf_counter() - t0:.1f} s)")


def backtest(data: Path, fast: bool, work: Path) -> tuple[Proc, dict[str, Any], Path]:
    """``fsmtrader backtest --data DIR --json [--fast]`` in its own folder."""
    cwd = work / ("fast" if fast else "step")
    cwd.mkdir(parents=True)
    argv = [*FSMTRADER, "backtest", "--data", str(data), "--json", *(["--fast"] if fast else [])]
    proc = run_process(argv, cwd)
    if proc.code != 0:
        sys.exit(f"backtest failed ({proc.code}):\n{proc.err[-2000:]}")
    summary = json.loads(proc.out)
    (run_dir,) = (cwd / "runs").iterdir()
    return proc, summary, run_dir


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report(name: str, proc: Proc, summary: dict[str, Any]) -> None:
    candles = summary["candles"]
    loop = summary["loop_s"]
    print(
        f"{name:5s} process {proc.wall_s:6.2f} s wall ({candles / proc.wall_s:>10,.0f} "
        f"candles/s), {proc.cpu_s:5.2f} s CPU ({candles / proc.cpu_s:>10,.0f} candles/CPU-s), "
        f"peak RSS {proc.rss_mb:5.0f} MB"
    )
    cpu = summary["loop_cpu_s"]
    print(
        f"{'':5s} loop    {loop:6.3f} s wall ({candles / loop:>10,.0f} candles/s), {cpu:5.3f} s "
        f"CPU ({candles / cpu:>10,.0f} candles/CPU-s); {summary['stepped']:,} candles stepped"
    )
    print(
        f"{'':5s} trades {summary['trades']}, realised PnL {summary['realized_pnl']}, "
        f"audit lines {summary['audit_lines']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each mode (best is shown)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--freqtrade", type=Path, default=None, help="a venv with freqtrade")
    args = ap.parse_args()
    base = Path(tempfile.gettempdir()) / "fsmtrader-bench"
    data = args.data or base / f"synthetic-{args.pairs}x{args.days}d-seed{args.seed}"
    ensure_data(data, args.pairs, args.days, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, tuple[Proc, dict[str, Any], Path]] = {}
        for i in range(args.repeat):
            for fast in (False, True):
                name = "fast" if fast else "step"
                got = backtest(data, fast, Path(tmp) / f"run{i}")
                if name not in results or got[0].wall_s < results[name][0].wall_s:
                    results[name] = got
        first = results["step"][1]
        print(f"candles          {first['candles']:,} ({len(first['symbols'])} pairs)")
        for name in ("step", "fast"):
            report(name, *results[name][:2])
        step_dir, fast_dir = results["step"][2], results["fast"][2]
        same = {f: sha(step_dir / f) == sha(fast_dir / f) for f in ("trades.jsonl", "audit.jsonl")}
        print(
            "fast == step     trades.jsonl "
            + ("identical" if same["trades.jsonl"] else "DIFFERENT")
            + ", audit.jsonl "
            + ("identical" if same["audit.jsonl"] else "DIFFERENT")
            + f" (audit sha256 {sha(fast_dir / 'audit.jsonl')[:16]}...)"
        )
    if args.profile:
        from bench_research_profile import profile_imports, profile_loops

        profile_imports()
        profile_loops(data)
    if args.freqtrade is not None:
        from bench_freqtrade import run_freqtrade

        run_freqtrade(args.freqtrade, data, results["step"][1])


if __name__ == "__main__":
    main()
