"""The ``synthetic-data`` command: a deterministic synthetic year of one-minute candles for
several pairs, into the files ``backtest --data DIR`` reads (benchmarks, demos)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fsmtrader.cli.console import err
from fsmtrader.cli.errors import guard


def synthetic_data(
    out: Annotated[Path, typer.Option("--out", help="Folder for the candle files.")],
    pairs: Annotated[int, typer.Option("--pairs", help="How many pairs (BTC/USDT first).")] = 5,
    days: Annotated[int, typer.Option("--days", help="Days of one-minute candles.")] = 365,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files.")] = 1,
    fmt: Annotated[str, typer.Option("--format", help="feather or csv")] = "feather",
) -> None:
    """Write a deterministic synthetic market (volatility clusters, fat tails, wicks):
    one file per pair, freqtrade's names (BTC_USDT-1m.feather)."""

    def run() -> None:
        from fsmtrader.research.synthetic_year import write_year  # numpy only here

        def shown(done: int, total: int) -> None:
            err.print(f"synthetic-data: {done}/{total} pairs written", highlight=False)

        paths = write_year(out, pairs=pairs, days=days, seed=seed, fmt=fmt, progress=shown)
        for path in paths:
            err.print(f"  {path}", highlight=False)

    guard(run)
