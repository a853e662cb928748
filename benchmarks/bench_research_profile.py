"""Where the time of a research backtest goes: the CLI's import time (``python -X
importtime``: the slowest modules, and whether ccxt, fastapi or plotly are imported at
all) and a cProfile of the step and the fast loop in this process."""

from __future__ import annotations

import cProfile
import io
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fsmtrader.config import load_settings
from fsmtrader.research.inputs import load_inputs
from fsmtrader.runner import Backtest, filters_for

HEAVY = ("ccxt", "fastapi", "plotly", "pandas", "uvicorn", "aiohttp", "optuna", "dask")


def profile_imports() -> None:
    """``import fsmtrader.cli.app`` (what every command pays) under -X importtime."""
    argv = [sys.executable, "-X", "importtime", "-c", "import fsmtrader.cli.app"]
    t0 = time.perf_counter()
    err = subprocess.run(argv, capture_output=True, text=True, check=True).stderr
    wall = time.perf_counter() - t0
    rows = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0].startswith("import time:") and parts[1].strip().isdigit():
            rows.append((int(parts[0].split(":")[1]), int(parts[1]), parts[2].rstrip()))
    top = max(rows, key=lambda r: r[1])
    print(f"\nimport fsmtrader.cli.app: {top[1] / 1e6:.2f} s (process {wall:.2f} s wall)")
    names = {r[2].strip() for r in rows}
    found = [h for h in HEAVY if h in names]
    print(f"  heavy packages imported: {', '.join(found) or 'none of ' + ', '.join(HEAVY)}")
    print("  slowest by their own time (self us, cumulative us, module):")
    for self_us, cum_us, name in sorted(rows, reverse=True)[:12]:
        print(f"  {self_us:>8} {cum_us:>9} {name.strip()}")
    print("  slowest top-level packages (cumulative us):")
    tops = [r for r in rows if not r[2].startswith("  ")]  # (one space: imported first-hand)
    for _self_us, cum_us, name in sorted(tops, key=lambda r: -r[1])[:10]:
        print(f"  {cum_us:>9} {name.strip()}")


def profile_loops(data: Path) -> None:
    """The step and the fast loop on ``data`` under cProfile: top 15 by own time."""
    inputs = load_inputs([data], None, None, "USDT")
    symbols = [c.symbol for c in inputs.series]
    for fast in (False, True):
        s = load_settings(
            None, env={}, overrides={"market": {"symbols": symbols}, "backtest": {"fast": fast}}
        )
        with tempfile.TemporaryDirectory() as tmp:
            bt = Backtest(s, inputs.series, filters_for(inputs.series), Path(tmp) / "r")
            prof = cProfile.Profile()
            prof.enable()
            summary = bt.run().summary
            prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime").print_stats(15)
        body = out.getvalue()
        trades = summary["trades"]
        print(
            f"\n{'fast' if fast else 'step'} loop under cProfile: {summary['loop_s']:.2f} s, "
            f"{trades} trades"
        )
        print(body[body.find("   ncalls") :].rstrip())
