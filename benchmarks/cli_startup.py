"""What a command pays before it does anything: ``import fsmtrader.cli.app``, ``fsmtrader
--help`` and a tiny ``fsmtrader backtest --json`` (2 pairs x 2 days, so the start-up and
the run folder's files dominate), each as a real process; the best of ``--repeat`` runs
(wall, CPU, peak RSS) and how many modules the backtest imported.

    .venv/bin/python benchmarks/cli_startup.py [--repeat 5] [--bytecode]

``--bytecode``: with compiled modules cached (PYTHONDONTWRITEBYTECODE unset, the cache
in a temporary PYTHONPYCACHEPREFIX, warmed by a first run), as an installed package
runs; without it, as this environment runs (fsmtrader's own modules compiled each time
when PYTHONDONTWRITEBYTECODE is set).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from bench_process import Proc, run_process

from fsmtrader.research.synthetic_year import write_year

PY = sys.executable
# sys.modules after a whole backtest, printed by the process itself
MODULES = (
    "import sys, runpy; sys.argv = ['fsmtrader', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('fsmtrader', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "print(len(sys.modules), file=sys.stderr)"
)


def best(argv: list[str], cwd: Path, repeat: int) -> Proc:
    runs = []
    for _ in range(repeat):
        p = run_process(argv, cwd)
        if p.code != 0:
            sys.exit(f"{argv} failed ({p.code}):\n{p.err[-2000:]}")
        runs.append(p)
    return min(runs, key=lambda p: p.cpu_s)


def show(name: str, p: Proc) -> None:
    print(f"{name:28s} {p.wall_s:6.3f} s wall {p.cpu_s:6.3f} s CPU  peak RSS {p.rss_mb:5.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each (best CPU is shown)")
    ap.add_argument("--bytecode", action="store_true", help="with compiled modules cached")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.bytecode:  # the children inherit it
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
            os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        print(f"compiled modules {'cached' if args.bytecode else 'as this environment has them'}")
        data = work / "data"
        write_year(data, pairs=2, days=2, seed=1)
        show(
            "import fsmtrader.cli.app",
            best([PY, "-c", "import fsmtrader.cli.app"], work, args.repeat),
        )
        show("fsmtrader --help", best([PY, "-m", "fsmtrader", "--help"], work, args.repeat))
        bt = ["backtest", "--data", str(data), "--json"]
        if args.bytecode:
            run_process([PY, "-m", "fsmtrader", *bt], work)  # fills the cache
        p = best([PY, "-m", "fsmtrader", *bt], work, args.repeat)
        show("fsmtrader backtest (2x2 days)", p)
        candles = json.loads(p.out)["candles"]
        counted = run_process([PY, "-c", MODULES, *bt], work)
        print(
            f"backtest: {candles:,} candles, {counted.err.strip().splitlines()[-1]} modules loaded"
        )


if __name__ == "__main__":
    main()
