"""Real backtest run folders for the report's tests: synthetic pairs through
runner.Backtest, so every folder holds what a user's run holds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsmtrader.feeds import synthetic_market
from fsmtrader.runner import Backtest, RunResult, filters_for
from fsmtrader_testing.harness import settings


def backtest_runs(
    folder: Path, symbols: Sequence[str], days: int, seed: int, runs: dict[str, dict[str, Any]]
) -> list[RunResult]:
    """One backtest per ``runs`` entry (run name -> settings overrides) over the same
    synthetic market of ``symbols`` and ``days``, each into ``folder/<name>``."""
    series = synthetic_market(symbols, minutes=days * 24 * 60, seed=seed)
    out = []
    for name, overrides in runs.items():
        s = settings(
            seed=seed, market={"symbols": list(symbols)}, runs_dir=str(folder), **overrides
        )
        out.append(Backtest(s, series, filters_for(series), folder / name).run())
    return out
