"""Build a run's report (pure), and write it into the run folder as report.json and the
report.html rendered from that JSON alone (so ``fsmtrader report RUN_DIR`` re-renders it)."""

from __future__ import annotations

import json
import math
import mmap
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from fsmtrader.errors import DataError
from fsmtrader.feeds import Candles
from fsmtrader.portfolio import ClosedTrade, Position
from fsmtrader.research.report.downsample import minmax_indices
from fsmtrader.research.report.equity import Curve, OpenLot, equity_curve, open_lots
from fsmtrader.research.report.metrics import (
    drawdown,
    group_table,
    metrics,
    monthly_returns,
    pair_table,
)
from fsmtrader.research.report.trades import TradeRow, rows_of

#: report.json's format; ``fsmtrader report`` refuses any other.
SCHEMA = "fsmtrader.report/1"
REPORT_JSON, REPORT_HTML = "report.json", "report.html"
MAX_MARKERS = 2_000  # entry (and exit) markers drawn per pair; the rest are counted
_GUARDS_MARK = b"GUARDS_BLOCKED"


def write_report(
    run_dir: Path,
    series: Sequence[Candles],
    summary: Mapping[str, Any],
    trades: Iterable[ClosedTrade | Mapping[str, Any]],
    starting_balance: Decimal | float,
    *,
    open_positions: Iterable[Position] = (),
) -> dict[str, Any]:
    """Write ``report.json`` and ``report.html`` into ``run_dir`` (each through a temp name
    and a rename) and return the report. The guard blocks by name come from the folder's
    audit.jsonl (the GUARDS_BLOCKED transitions); ``open_positions`` are valued at their
    last close."""
    trade_list = list(trades)
    report = build_report(
        series,
        summary,
        rows_of(trade_list),
        float(starting_balance),
        lots=open_lots(open_positions),
        guard_blocks=guard_blocks(run_dir / "audit.jsonl"),
        name=run_dir.name.removesuffix(".partial"),
        exact_pnl=str(sum((_pnl_of(t) for t in trade_list), Decimal(0))),
    )
    text = json.dumps(report, separators=(",", ":"), allow_nan=False)
    _write_atomic(run_dir / REPORT_JSON, text + "\n")
    render_html(run_dir)
    return report


def render_html(run_dir: Path) -> Path:
    """(Re-)render report.html from the folder's report.json alone."""
    from fsmtrader.research.report.html import report_page  # plotly.js: only for html

    path = run_dir / REPORT_HTML
    _write_atomic(path, report_page(read_report(run_dir)))
    return path


def read_report(run_dir: Path) -> dict[str, Any]:
    """The folder's report.json; a DataError (one line) when the folder or the file is
    missing, unreadable, or of another schema version."""
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    path = run_dir / REPORT_JSON
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing (the run was made before reports, or failed)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable report ({exc})") from None
    schema = report.get("schema") if isinstance(report, dict) else None
    if schema != SCHEMA:
        raise DataError(f"{path}: schema {schema!r}, this fsmtrader reads {SCHEMA!r} only")
    return dict(report)


def build_report(
    series: Sequence[Candles],
    summary: Mapping[str, Any],
    rows: Sequence[TradeRow],
    starting_balance: float,
    *,
    lots: Sequence[OpenLot] = (),
    guard_blocks: Mapping[str, int] | None = None,
    name: str = "",
    exact_pnl: str | None = None,
) -> dict[str, Any]:
    """Every figure and the (downsampled) plot data, as plain JSON values."""
    curve = equity_curve(series, rows, starting_balance, lots)
    report = {
        "schema": SCHEMA,
        "run": {
            "name": name,
            "symbols": [c.symbol for c in series],
            "start_ms": int(curve.t[0]),
            "end_ms": int(curve.t[-1]),
            "starting_balance": starting_balance,
            "realized_pnl": exact_pnl,
            "open_positions": len(lots),
        },
        "metrics": metrics(rows, curve, summary),
        "pairs": pair_table(rows, curve),
        "exit_reasons": group_table(rows, lambda r: r.reason, "reason"),
        "guard_blocks": dict(sorted((guard_blocks or {}).items())),
        "ghosts_by_reason": dict(summary.get("ghosts_by_reason", {})),
        "monthly": monthly_returns(curve.t, curve.equity),
        "plots": {"equity": equity_plot(curve), "prices": [price_plot(c, rows) for c in series]},
    }
    cleaned: dict[str, Any] = _finite(report)
    return cleaned


def equity_plot(curve: Curve) -> dict[str, list[Any]]:
    """Equity and drawdown (computed at full resolution), each cut to its extremes."""
    dd = drawdown(curve.equity)
    e, d = minmax_indices(curve.equity), minmax_indices(dd)
    return {
        "t": curve.t[e].tolist(),
        "equity": np.round(curve.equity[e], 8).tolist(),
        "dd_t": curve.t[d].tolist(),
        "drawdown_pct": np.round(dd[d], 6).tolist(),
    }


def price_plot(c: Candles, rows: Sequence[TradeRow]) -> dict[str, Any]:
    """One pair's closes (cut to their extremes) with its entries and exits."""
    ts, close = np.asarray(c.ts, np.int64), np.asarray(c.close, np.float64)
    keep = minmax_indices(close)
    mine = [r for r in rows if r.symbol == c.symbol]
    shown = mine[:: -(-len(mine) // MAX_MARKERS)] if len(mine) > MAX_MARKERS else mine
    return {
        "symbol": c.symbol,
        "t": ts[keep].tolist(),
        "close": close[keep].tolist(),
        "entries": {"t": [r.entry_ms for r in shown], "price": [r.avg_entry for r in shown]},
        "exits": {
            "t": [r.exit_ms for r in shown],
            "price": [r.avg_exit for r in shown],
            "reason": [r.reason for r in shown],
            "pnl": [round(r.pnl, 8) for r in shown],
        },
        "trades": len(mine),
        "markers_shown": len(shown),
    }


def guard_blocks(audit: Path) -> dict[str, int]:
    """How often each guard blocked an entry, from the GUARDS_BLOCKED transitions of an
    audit trail (their reason is the blocking guards, comma-separated). Only the lines
    holding the marker are parsed, so a long trail costs one scan."""
    counts: Counter[str] = Counter()
    try:
        fh = audit.open("rb")
    except FileNotFoundError:
        return {}
    with fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return {}
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = mm.find(_GUARDS_MARK)
            while pos != -1:
                start = mm.rfind(b"\n", 0, pos) + 1
                end = mm.find(b"\n", pos)
                end = len(mm) if end == -1 else end
                rec = json.loads(mm[start:end])
                if isinstance(rec, dict) and rec.get("event") == "GUARDS_BLOCKED":
                    counts.update(g for g in str(rec.get("reason", "")).split(",") if g)
                pos = mm.find(_GUARDS_MARK, end)
    return dict(counts)


def _pnl_of(t: ClosedTrade | Mapping[str, Any]) -> Decimal:
    return t.realized_pnl if isinstance(t, ClosedTrade) else Decimal(str(t["realized_pnl"]))


def _finite(value: Any) -> Any:
    """The report with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temp name beside ``path``, then rename: never half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
