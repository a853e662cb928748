"""Build a run's report (pure), and write it into the run folder as report.json and the
report.html rendered from that JSON alone (so ``fsmtrader report RUN_DIR`` re-renders it)."""

from __future__ import annotations

import json
import math
import mmap
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from fsmtrader.errors import DataError, read_json
from fsmtrader.feeds import Candles
from fsmtrader.portfolio import ClosedTrade, Position
from fsmtrader.research.report.downsample import minmax_indices
from fsmtrader.research.report.equity import (
    Column,
    Curve,
    OpenLot,
    columns,
    curve_of,
    equity_curve,
    open_lots,
)
from fsmtrader.research.report.metrics import (
    Figure,
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
    html: bool = True,
) -> dict[str, Any]:
    """Write ``report.json`` and ``report.html`` into ``run_dir`` (each through a temp name
    and a rename) and return the report; ``html=False`` writes only report.json (a
    sweep's trial: `fsmtrader report` renders the page later from it). The guard blocks
    by name come from the folder's audit.jsonl (the GUARDS_BLOCKED transitions);
    ``open_positions`` are valued at their last close."""
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
    _write_atomic(run_dir / REPORT_JSON, lambda out: out.write(text + "\n"))
    if html:
        _write_html(run_dir, report)  # what report.json holds: render_html would read it back
    return report


def run_metrics(
    series: Sequence[Candles],
    summary: Mapping[str, Any],
    trades: Iterable[ClosedTrade | Mapping[str, Any]],
    starting_balance: Decimal | float,
    *,
    open_positions: Iterable[Position] = (),
) -> dict[str, Figure]:
    """Only the flat figures of a run (what a sweep ranks trials by), no files: the same
    numbers as report.json's ``metrics``."""
    rows = rows_of(trades)
    curve = equity_curve(series, rows, float(starting_balance), open_lots(open_positions))
    return metrics(rows, curve, summary)


def render_html(run_dir: Path) -> Path:
    """(Re-)render report.html from the folder's report.json alone."""
    return _write_html(run_dir, read_report(run_dir))


def _write_html(run_dir: Path, report: Mapping[str, Any]) -> Path:
    from fsmtrader.research.report.html import report_page  # plotly.js: only for html

    path = run_dir / REPORT_HTML
    _write_atomic(path, lambda out: report_page(report, out))
    return path


def read_report(run_dir: Path) -> dict[str, Any]:
    """The folder's report.json; a DataError (one line) when the folder or the file is
    missing, unreadable, or of another schema version."""
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    path = run_dir / REPORT_JSON
    missing = f"{path}: missing (the run was made before reports, or failed)"
    report = read_json(path, missing=missing, bad=f"{path}: not a readable report")
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
    """Every figure and the (downsampled) plot data, as plain JSON values (a figure that
    is not finite is None)."""
    cols = columns(series)
    curve = curve_of(cols, rows, starting_balance, lots)
    report = {
        "schema": SCHEMA,
        "run": {
            "name": name,
            "symbols": [c.symbol for c in cols],
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
    }
    cleaned: dict[str, Any] = _finite(report)  # the plots are made finite as they are cut
    cleaned["plots"] = {"equity": equity_plot(curve), "prices": [price_plot(c, rows) for c in cols]}
    return cleaned


def equity_plot(curve: Curve) -> dict[str, list[Any]]:
    """Equity and drawdown (computed at full resolution), each cut to its extremes."""
    dd = drawdown(curve.equity)
    e, d = minmax_indices(curve.equity), minmax_indices(dd)
    return {
        "t": curve.t[e].tolist(),
        "equity": _values(np.round(curve.equity[e], 8)),
        "dd_t": curve.t[d].tolist(),
        "drawdown_pct": _values(np.round(dd[d], 6)),
    }


def price_plot(col: Column, rows: Sequence[TradeRow]) -> dict[str, Any]:
    """One pair's closes (cut to their extremes) with its entries and exits (at most
    MAX_MARKERS of each, evenly spread, and how many there were)."""
    keep = minmax_indices(col.close)
    mine = [r for r in rows if r.symbol == col.symbol]
    shown = mine[:: -(-len(mine) // MAX_MARKERS)] if len(mine) > MAX_MARKERS else mine
    exits = {
        "t": [r.exit_ms for r in shown],
        "price": _values(np.array([r.avg_exit for r in shown], np.float64)),
        "reason": [r.reason for r in shown],
        "pnl": _values(np.round(np.array([r.pnl for r in shown], np.float64), 8)),
    }
    entries = {
        "t": [r.entry_ms for r in shown],
        "price": _values(np.array([r.avg_entry for r in shown], np.float64)),
    }
    return {
        "symbol": col.symbol,
        "t": col.ts[keep].tolist(),
        "close": _values(col.close[keep]),
        "entries": entries,
        "exits": exits,
        "trades": len(mine),
        "markers_shown": len(shown),
    }


def _values(values: npt.ArrayLike) -> list[float | None]:
    """An array as a JSON list: NaN and infinities as None (one check when there are none)."""
    a = np.asarray(values, np.float64)
    if bool(np.all(np.isfinite(a))):
        return list(a.tolist())
    return [v if math.isfinite(v) else None for v in a.tolist()]


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
                try:
                    rec = json.loads(mm[start:end])
                except ValueError:  # not a JSON line (a torn tail): nothing to count
                    rec = None
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


def _write_atomic(path: Path, write: Callable[[TextIO], object]) -> None:
    """``write`` the text (UTF-8) to a temp name beside ``path``, then rename: never half
    a file, and a page is written in pieces rather than built whole first."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            write(out)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_compare(run_dir: Path, other: Path) -> Path:
    """``run_dir/compare-<other's name>.html``: both runs side by side (from their
    report.json files alone), labelled by their folder names."""
    from fsmtrader.research.report.html import compare_page  # plotly.js: only for html

    a, b = read_report(run_dir), read_report(other)
    na, nb = run_dir.resolve().name, other.resolve().name
    names = (na, nb) if na != nb else (str(run_dir), str(other))  # labels that differ
    path = run_dir / f"compare-{nb}.html"
    _write_atomic(path, lambda out: compare_page(a, b, out, names))
    return path
