"""report.html and the comparison page in headless Chromium (Debian's, by its path) from
file://, with every non-file request aborted: each plot renders, all of it offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route

from e2e.dashboard import conftest as dashboard
from fsmtrader.research.report.build import write_compare
from report_support import backtest_runs

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
# Per figure: its plotly SVGs, its traces (data vs drawn), line paths with a shape, and
# the marker and bar points drawn.
FIGURES_JS = """() => [...document.querySelectorAll('.fig')].map(d => ({
  id: d.id,
  svgs: d.querySelectorAll('.main-svg').length,
  data: (d.data || []).length,
  traces: d.querySelectorAll('g.trace').length,
  lines: [...d.querySelectorAll('path.js-line')]
    .filter(p => (p.getAttribute('d') || '').length > 20).length,
  markers: d.querySelectorAll('.scatterlayer path.point').length,
  bars: d.querySelectorAll('.barlayer .point').length,
}))"""
# The dashboard's headless Chromium (Debian's, by its path; skips when it is missing).
browser = dashboard.browser

DRAWN_JS = """() => { const figs = [...document.querySelectorAll('.fig')];
  return figs.length > 0 && figs.every(d => d.querySelector('.main-svg')); }"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> tuple[Path, Path]:
    """Two real backtests of three pairs (different drop triggers) over 40 days, so the
    monthly plot has two bars. Asks for the browser first: no Chromium, no runs."""
    drops = {name: {"entry": {"drop_trigger_pct": d}} for name, d in (("a", 2.0), ("b", 4.0))}
    a, b = backtest_runs(tmp_path_factory.mktemp("report-browser"), SYMBOLS, 40, 21, drops)
    return a.run_dir, b.run_dir


def open_offline(browser: Browser, path: Path) -> tuple[Page, list[dict[str, Any]], list[str]]:
    """``path`` opened from file://, any other request aborted; returns the page's figures
    once drawn, and what went wrong: requests that left the file, page and console errors."""
    page = browser.new_context().new_page()
    problems: list[str] = []

    def route(r: Route) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            problems.append(f"request {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: problems.append(f"page error {e}"))
    page.on(
        "console", lambda m: problems.append(f"console {m.text}") if m.type == "error" else None
    )
    page.goto(path.as_uri())
    page.wait_for_function(DRAWN_JS, timeout=60_000)
    figs: list[dict[str, Any]] = page.evaluate(FIGURES_JS)
    return page, figs, problems


def test_report_page_renders_every_plot_offline(browser: Browser, runs: tuple[Path, Path]) -> None:
    run = runs[0]
    report = json.loads((run / "report.json").read_text())
    page, figs, problems = open_offline(browser, run / "report.html")
    prices = report["plots"]["prices"]
    assert [f["id"] for f in figs] == (
        ["fig-equity"] + [f"fig-price-{i}" for i in range(len(prices))] + ["fig-monthly"]
    )
    for f in figs:
        assert f["svgs"] >= 1 and f["data"] > 0 and f["traces"] == f["data"], f
    by_id = {f["id"]: f for f in figs}
    assert by_id["fig-equity"]["lines"] == 2  # equity and drawdown
    for i, p in enumerate(prices):
        assert p["trades"] > 0  # every pair traded: its markers must show
        assert by_id[f"fig-price-{i}"]["lines"] == 1
        assert by_id[f"fig-price-{i}"]["markers"] == 2 * p["markers_shown"]
    assert len(report["monthly"]) == 2 and by_id["fig-monthly"]["bars"] == 2
    assert "return_pct" in page.inner_text("body")
    assert problems == []


def test_compare_page_renders_both_runs_offline(browser: Browser, runs: tuple[Path, Path]) -> None:
    a, b = runs
    _, figs, problems = open_offline(browser, write_compare(a, b))
    assert [f["id"] for f in figs] == ["fig-equity"]
    equity = figs[0]
    assert equity["data"] == 4 and equity["traces"] == 4 and equity["lines"] == 4  # 2 x 2
    assert problems == []
