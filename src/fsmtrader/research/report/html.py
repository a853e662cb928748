"""report.html and the comparison page: plotly figures (as plotly.js figure specs) in one
self-contained file with plotly.js inlined, so it opens offline and asks the network for
nothing. Rendered from report.json's content alone."""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, TextIO

from fsmtrader.errors import DataError
from fsmtrader.research.report.metrics import METRIC_KEYS

Fig = dict[str, Any]
UP, DOWN, LINE = "#2ca02c", "#d62728", "#1f77b4"
_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 2em 1em 0;display:inline-table;vertical-align:top}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.fig{width:100%;height:460px}
.note{color:#666;font-size:.9em}"""


@cache
def plotly_js_path() -> Path:
    """The plotly.js bundled with the installed plotly package (found without importing
    plotly's Python side, which a report does not need). Only its path is kept: the
    ~5 MB text is copied into each page as it is written, never held."""
    spec = find_spec("plotly")
    where = list(spec.submodule_search_locations or []) if spec else []
    for folder in where:
        path = Path(folder) / "package_data" / "plotly.min.js"
        if path.exists():
            return path
    raise DataError("plotly is not installed: pip install plotly (report.html inlines plotly.js)")


def report_page(report: Mapping[str, Any], out: TextIO) -> None:
    """The report of one run, written to ``out``: its tables, then equity/drawdown, each
    pair's price with entries and exits, and the monthly returns."""
    run = report["run"]
    figs = {"equity": equity_fig([(run["name"], report)])}
    for i, p in enumerate(report["plots"]["prices"]):
        figs[f"price-{i}"] = price_fig(p)
    figs["monthly"] = monthly_fig(report["monthly"])
    body = [
        f"<h1>Backtest report — {html.escape(run['name'])}</h1>",
        f"<p class='note'>{html.escape(', '.join(run['symbols']))}; starting balance "
        f"{run['starting_balance']}; realised PnL {html.escape(str(run['realized_pnl']))}</p>",
        table(["figure", "value"], [[k, report["metrics"].get(k)] for k in METRIC_KEYS]),
        _rows_table("per pair", report["pairs"]),
        _rows_table("per exit reason", report["exit_reasons"]),
        table(["guard", "entries blocked"], _counts(report["guard_blocks"])),
        table(["ghost reason", "orders"], _counts(report["ghosts_by_reason"])),
    ]
    page(f"report {run['name']}", body, figs, out)


def compare_page(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    out: TextIO,
    names: tuple[str, str] | None = None,
) -> None:
    """Two runs side by side, written to ``out``: both equity curves (as return % so
    balances may differ), both drawdowns, and each figure of both with the difference
    (second − first). ``names`` label them (default: the names their reports carry)."""
    na, nb = names or (a["run"]["name"], b["run"]["name"])
    rows = []
    for k in METRIC_KEYS:
        va, vb = a["metrics"].get(k), b["metrics"].get(k)
        diff = vb - va if isinstance(va, int | float) and isinstance(vb, int | float) else None
        rows.append([k, va, vb, diff])
    body = [
        f"<h1>Comparison — {html.escape(na)} vs {html.escape(nb)}</h1>",
        table(["figure", na, nb, f"{nb} − {na}"], rows),
    ]
    figs = {"equity": equity_fig([(na, a), (nb, b)], as_return=True)}
    page(f"compare {na} vs {nb}", body, figs, out)


def equity_fig(runs: Sequence[tuple[str, Mapping[str, Any]]], *, as_return: bool = False) -> Fig:
    """Equity (or return % from the start) above, drawdown % below, on one time axis."""
    data: list[dict[str, Any]] = []
    for name, rep in runs:
        eq = rep["plots"]["equity"]
        start = rep["run"]["starting_balance"] or 1
        y = [100 * (v / start - 1) for v in eq["equity"]] if as_return else eq["equity"]
        label = f"{name}: " if len(runs) > 1 else ""
        data.append(_line(eq["t"], y, f"{label}{'return %' if as_return else 'equity'}"))
        dd = _line(eq["dd_t"], eq["drawdown_pct"], f"{label}drawdown %", yaxis="y2")
        data.append({**dd, "fill": "tozeroy"})
    layout = {
        "title": {"text": "Equity and drawdown"},
        "xaxis": {"type": "date", "anchor": "y2"},
        "yaxis": {"domain": [0.34, 1], "title": {"text": "return %" if as_return else "equity"}},
        "yaxis2": {"domain": [0, 0.28], "anchor": "x", "title": {"text": "drawdown %"}},
        "legend": {"orientation": "h"},
        "margin": {"t": 50, "r": 20},
    }
    return {"data": data, "layout": layout}


def price_fig(p: Mapping[str, Any]) -> Fig:
    """A pair's close with its entries (up) and exits (down, with reason and PnL)."""
    ex = p["exits"]
    hover = [f"{r}: {pnl:+.4f}" for r, pnl in zip(ex["reason"], ex["pnl"], strict=True)]
    data = [
        _line(p["t"], p["close"], "close"),
        _markers(p["entries"]["t"], p["entries"]["price"], "entry", "triangle-up", UP),
        {**_markers(ex["t"], ex["price"], "exit", "triangle-down", DOWN), "text": hover},
    ]
    note = f" (markers for {p['markers_shown']} of {p['trades']} trades)"
    title = f"{p['symbol']}: {p['trades']} trades" + (
        note if p["markers_shown"] < p["trades"] else ""
    )
    layout = {"title": {"text": title}, "xaxis": {"type": "date"}, "margin": {"t": 50, "r": 20}}
    return {"data": data, "layout": layout}


def monthly_fig(monthly: Sequence[Mapping[str, Any]]) -> Fig:
    months = [m["month"] for m in monthly]
    values = [m["return_pct"] for m in monthly]
    bar = {
        "type": "bar",
        "x": months,
        "y": values,
        "name": "monthly return %",
        "marker": {"color": [UP if (v or 0) >= 0 else DOWN for v in values]},
    }
    layout = {"title": {"text": "Monthly returns %"}, "xaxis": {"type": "category"}}
    return {"data": [bar], "layout": layout}


def _line(x: Sequence[Any], y: Sequence[Any], name: str, yaxis: str = "y") -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines",
        "x": list(x),
        "y": list(y),
        "name": name,
        "yaxis": yaxis,
    }


def _markers(x: Sequence[Any], y: Sequence[Any], name: str, symbol: str, color: str) -> Fig:
    return {
        "type": "scatter",
        "mode": "markers",
        "x": list(x),
        "y": list(y),
        "name": name,
        "marker": {"symbol": symbol, "color": color, "size": 9},
    }


def _rows_table(title: str, rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return f"<p class='note'>{html.escape(title)}: no trades</p>"
    heads = list(dict.fromkeys(k for r in rows for k in r))
    return f"<h3>{html.escape(title)}</h3>" + table(
        heads, [[r.get(h) for h in heads] for r in rows]
    )


def _counts(counts: Mapping[str, int]) -> list[list[Any]]:
    return [[k, v] for k, v in counts.items()] or [["none", 0]]


def table(heads: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in heads)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def cell(v: Any) -> str:
    """A figure as a table shows it: None as '-', floats to 4 decimals (or 6 significant)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.6g}"
    return str(v)


def page(title: str, body: Sequence[str], figs: Mapping[str, Fig], out: TextIO) -> None:
    """One HTML file, written to ``out`` in pieces (plotly.js copied from its file, never
    read whole): plotly.js inline, the body, one div per figure, and the figures as JSON
    drawn on load (``</`` escaped so no string can close the script)."""
    divs = "".join(f"<div id='fig-{k}' class='fig'></div>" for k in figs)
    spec = json.dumps({f"fig-{k}": f for k, f in figs.items()}, allow_nan=False)
    draw = (
        "const FIGS=" + spec.replace("</", "<\\/") + ";"
        "for(const[id,f]of Object.entries(FIGS)){Plotly.newPlot(id,f.data,f.layout,"
        "{displaylogo:false,responsive:true});}"
    )
    del spec
    out.write(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style><script>"
    )
    with plotly_js_path().open(encoding="utf-8") as js:  # text: newlines as read_text
        shutil.copyfileobj(js, out, 1 << 20)
    out.write("</script></head><body>")
    for part in body:
        out.write(part)
    out.write(divs)
    out.write(f"<script>{draw}</script></body></html>\n")
