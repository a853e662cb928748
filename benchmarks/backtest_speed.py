"""Backtest speed: one year of synthetic 1-minute candles (525,600) for one symbol, with the
full order lifecycle, on one core. Prints candles per second; --profile shows where time goes.

    .venv/bin/python benchmarks/backtest_speed.py [--minutes N] [--seed S] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from fsmtrader.config import load_settings
from fsmtrader.feeds import synthetic_candles
from fsmtrader.runner import Backtest, filters_from_price


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=int, default=525_600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--symbol", default="BTC/USDT")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    s = load_settings(None, env={}, overrides={"market": {"symbols": [args.symbol]}})
    t0 = time.perf_counter()
    candles = synthetic_candles(args.symbol, minutes=args.minutes, seed=args.seed)
    gen_s = time.perf_counter() - t0
    filters = {args.symbol: filters_from_price(args.symbol, candles.close[0])}
    with tempfile.TemporaryDirectory() as tmp:
        prof = cProfile.Profile() if args.profile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        result = Backtest(s, [candles], filters, Path(tmp) / "bench").run()
        if prof:
            prof.disable()
        run_s = time.perf_counter() - t0
    sm = result.summary
    print(f"candles          {sm['candles']:,}")
    print(f"generate         {gen_s:.2f} s (synthetic feed, not counted below)")
    print(f"backtest         {run_s:.2f} s  (engine + simulated exchange + audit file)")
    print(f"candles/s        {sm['candles'] / run_s:,.0f}")
    print(
        f"trades           {sm['trades']}  orders {sm['orders']}  "
        f"transitions {sm['transitions']}  audit lines {sm['audit_lines']}"
    )
    print(f"orders by state  {sm['orders_by_final_state']}")
    print(f"realised PnL     {sm['realized_pnl']}  fees {sm['fees']}")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
