"""The report's headline figures as short text lines, for a command's human output."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from fsmtrader.research.report.build import REPORT_HTML, read_report

# (label, metric key, format): the figures a person reads first.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("return", "return_pct", "{:+.2f} %"),
    ("buy and hold", "buy_and_hold_return_pct", "{:+.2f} %"),
    ("CAGR", "cagr_pct", "{:+.2f} %"),
    ("max drawdown", "max_drawdown_pct", "{:.2f} %"),
    ("longest drawdown", "max_drawdown_duration_days", "{:.2f} days"),
    ("Sharpe", "sharpe", "{:.2f}"),
    ("Sortino", "sortino", "{:.2f}"),
    ("Calmar", "calmar", "{:.2f}"),
    ("profit factor", "profit_factor", "{:.2f}"),
    ("expectancy", "expectancy", "{:+.4f} per trade"),
    ("win rate", "win_rate", "{:.1%}"),
    ("exposure", "exposure_pct", "{:.1f} % of the time"),
)


def headline_lines(report: Mapping[str, Any]) -> list[str]:
    """``label: value`` for each headline figure ('-' when it has none)."""
    m = report["metrics"]
    lines = []
    for label, key, fmt in HEADLINE:
        v = m.get(key)
        lines.append(f"{label}: {fmt.format(v) if v is not None else '-'}")
    return lines


def print_headline(run_dir: Path, console: Console) -> None:
    """The headline of the run in ``run_dir`` and where its report is, on ``console``."""
    report = read_report(run_dir)
    console.print("  ".join(headline_lines(report)), highlight=False)
    console.print(f"report: {run_dir / REPORT_HTML}", highlight=False)
