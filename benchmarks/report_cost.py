"""What the report adds to a backtest: ``write_report`` on a year of minute candles.

Builds ``--pairs`` synthetic random-walk series of ``--candles`` one-minute candles each
(numpy columns, and again as Python lists, the two forms Candles comes in) and
``--trades`` closed trades spread over them, then times ``write_report`` into a scratch
folder (report.json + report.html) and prints the best wall time, the peak RSS it added
and the peak of Python/numpy allocations (tracemalloc, in a separate untimed call).
Re-rendering the html from report.json (``fsmtrader report``) is timed apart. Prints
figures; asserts nothing. Run from the repository root:

    .venv/bin/python benchmarks/report_cost.py [--pairs 5] [--candles 525600]
        [--trades 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

import numpy as np

from fsmtrader.feeds import Candles
from fsmtrader.research.report import render_html, write_report

START_MS = 1_767_225_600_000


def series(pairs: int, n: int, as_lists: bool) -> list[Candles]:
    rng = np.random.default_rng(1)
    ts = START_MS + 60_000 * np.arange(n, dtype=np.int64)
    out = []
    for i in range(pairs):
        close = 100.0 * (i + 1) * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
        cols = [ts, close, close * 1.001, close * 0.999, close, np.ones(n)]
        if as_lists:
            cols = [c.tolist() for c in cols]
        out.append(Candles(f"P{i}/USDT", *cols))  # type: ignore[arg-type]
    return out


def trades(s: list[Candles], count: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(2)
    rows: list[dict[str, object]] = []
    for k in range(count):
        c = s[k % len(s)]
        i = int(rng.integers(0, len(c) - 200))
        j = i + int(rng.integers(1, 180))
        entry, exit_ = float(c.close[i]), float(c.close[j])
        qty = 25 / entry
        pnl = qty * (exit_ - entry) - 0.05
        rows.append(
            {
                "symbol": c.symbol,
                "entry_ms": int(c.ts[i]) + 60_000,
                "exit_ms": int(c.ts[j]) + 60_000,
                "bought_qty": str(qty),
                "sold_qty": str(qty),
                "avg_entry": str(entry),
                "avg_exit": str(exit_),
                "buy_fees": "0.025",
                "sell_fees": "0.025",
                "sell_legs": 1,
                "dust_qty": "0",
                "realized_pnl": f"{pnl:.8f}",
                "exit_reason": "take_profit" if pnl > 0 else "stop_loss",
            }
        )
    return rows


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(label: str, s: list[Candles], t: list[dict[str, object]], rounds: int) -> None:
    """Best wall time of ``rounds`` calls, the peak RSS the first call added, then one
    call under tracemalloc for the allocation peak (tracemalloc slows it: not timed)."""
    summary = {"trades": len(t), "guards_blocked": 0, "ghosts": 0, "ghosts_by_reason": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rss0 = rss_mb()
        best = best_html = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            write_report(folder, s, summary, t, Decimal(1000))
            t1 = time.perf_counter()
            render_html(folder)
            best, best_html = min(best, t1 - t0), min(best_html, time.perf_counter() - t1)
        rss1 = rss_mb()
        tracemalloc.start()
        write_report(folder, s, summary, t, Decimal(1000))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    print(
        f"{label}: write_report {best:.3f} s best of {rounds} (re-rendering the html alone: "
        f"{best_html:.3f} s), peak RSS +{rss1 - rss0:.0f} MB, allocation peak "
        f"{peak / 2**20:.0f} MB, report.json {sizes['report.json'] / 1024:.0f} KiB, "
        f"report.html {sizes['report.html'] / 2**20:.1f} MiB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--candles", type=int, default=525_600)
    ap.add_argument("--trades", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    for as_lists in (False, True):
        s = series(a.pairs, a.candles, as_lists)
        t = trades(s, a.trades)
        label = f"{a.pairs} pairs x {a.candles:,} candles, {a.trades:,} trades, " + (
            "list columns" if as_lists else "numpy columns"
        )
        measure(label, s, t, a.rounds)
    print(f"plotly imported: {'plotly' in sys.modules}")


if __name__ == "__main__":
    main()
