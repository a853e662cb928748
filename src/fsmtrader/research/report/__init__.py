"""A backtest's report: figures (``metrics``), the equity curve, and report.json +
report.html in the run folder (``write_report``); see docs/report.md for each figure."""

from fsmtrader.research.report.build import (
    REPORT_HTML,
    REPORT_JSON,
    SCHEMA,
    build_report,
    read_report,
    render_html,
    run_metrics,
    write_compare,
    write_report,
)
from fsmtrader.research.report.equity import Curve, OpenLot, equity_curve, open_lots
from fsmtrader.research.report.metrics import METRIC_KEYS, OBJECTIVES, metrics
from fsmtrader.research.report.trades import TradeRow, rows_of

__all__ = [
    "METRIC_KEYS",
    "OBJECTIVES",
    "REPORT_HTML",
    "REPORT_JSON",
    "SCHEMA",
    "Curve",
    "OpenLot",
    "TradeRow",
    "build_report",
    "equity_curve",
    "metrics",
    "open_lots",
    "read_report",
    "render_html",
    "rows_of",
    "run_metrics",
    "write_compare",
    "write_report",
]
