"""Loading and iterating a portfolio's candles: N symbols x M one-minute candles written as
CSV, Feather and Parquet, each loaded through research.inputs.load_inputs and iterated
through feeds.bars in a fresh process. Prints load time, iteration rate and peak RSS
(the child's ru_maxrss: interpreter, imports, data and the bar stream).

    .venv/bin/python benchmarks/data_loading.py [--symbols 5] [--minutes 525600]
        [--formats csv,feather,parquet,csv-rows]

``csv-rows`` is the CSV with one unusable row added, which sends it through the row by
row parser (what every CSV went through before pyarrow): the figure to compare against.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
NAMES = ["BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "LTC", "TRX", "DOT", "LINK"]


def _columns(n: int, seed: int) -> dict[str, np.ndarray]:
    """A random walk rounded like quotes, OHLC consistent."""
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.001, n))), 4)
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.round(np.maximum(open_, close) * (1 + rng.random(n) * 0.001), 4)
    low = np.round(np.minimum(open_, close) * (1 - rng.random(n) * 0.001), 4)
    return {
        "ts": T0 + np.arange(n, dtype=np.int64) * 60_000,
        "open": open_,
        "high": np.maximum(high, np.maximum(open_, close)),
        "low": np.minimum(low, np.minimum(open_, close)),
        "close": close,
        "volume": np.round(rng.random(n) * 100, 3),
    }


def _write(folder: Path, fmt: str, symbols: int, minutes: int) -> None:
    folder.mkdir(parents=True)
    for k in range(symbols):
        cols = _columns(minutes, k)
        stem = folder / f"{NAMES[k % len(NAMES)]}{k // len(NAMES) or ''}_USDT-1m"
        if fmt.startswith("csv"):
            table = np.column_stack([cols[c] for c in cols])
            with open(f"{stem}.csv", "w", encoding="utf-8") as fh:
                fh.write("timestamp_ms,open,high,low,close,volume\n")
                np.savetxt(
                    fh, table, fmt=["%d", "%.4f", "%.4f", "%.4f", "%.4f", "%.3f"], delimiter=","
                )
                if fmt == "csv-rows":
                    fh.write(f"{int(cols['ts'][-1]) + 60_000},0,0,0,0,1\n")
            continue
        date = pa.array(cols.pop("ts"), type=pa.timestamp("ms", tz="UTC"))
        arrow = pa.table({"date": date, **cols})
        if fmt == "feather":
            feather.write_feather(arrow, f"{stem}.feather")
        else:
            pq.write_table(arrow, f"{stem}.parquet")


def child(folder: Path) -> None:
    """Load and iterate ``folder`` here; print one JSON line of figures."""
    t0 = time.perf_counter()
    from fsmtrader.feeds import bars
    from fsmtrader.research.inputs import load_inputs

    t1 = time.perf_counter()
    inputs = load_inputs([folder], None, None, "USDT")
    t2 = time.perf_counter()
    n = 0
    for _ in bars(inputs.series):
        n += 1
    t3 = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "import_s": t1 - t0,
                "load_s": t2 - t1,
                "iterate_s": t3 - t2,
                "bars": n,
                "rows": sum(len(c) for c in inputs.series),
                "peak_mb": peak_mb,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--symbols", type=int, default=5)
    ap.add_argument("--minutes", type=int, default=525_600)
    ap.add_argument("--formats", default="csv,feather,parquet,csv-rows")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child)
        return
    print(f"{args.symbols} symbols x {args.minutes:,} one-minute candles")
    print(
        f"{'format':10} {'load s':>8} {'s/sym':>7} {'iterate s':>10} {'bars/s':>12} {'peak MB':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            folder = Path(tmp) / fmt
            _write(folder, fmt, args.symbols, args.minutes)
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(folder)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"{fmt:10} {r['load_s']:8.2f} {r['load_s'] / args.symbols:7.2f} "
                f"{r['iterate_s']:10.2f} {r['bars'] / r['iterate_s']:12,.0f} {r['peak_mb']:8.0f}"
            )


if __name__ == "__main__":
    main()
