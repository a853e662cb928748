"""A real portfolio backtest (several synthetic symbols, one slot) writes report.json and
report.html into its run folder, and the report's figures agree with summary.json."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from fsmtrader.feeds import synthetic_market
from fsmtrader.research.report import SCHEMA, read_report, render_html, run_metrics
from fsmtrader.research.report.build import guard_blocks
from fsmtrader.research.report.headline import print_headline
from fsmtrader.runner import Backtest, RunResult, filters_for
from fsmtrader_testing.harness import settings
from report_support import backtest_runs

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
DAYS = 4


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    # one slot for three pairs: the slots guard blocks
    one_slot = {"run": {"risk": {"max_open_positions": 1}}}
    (result,) = backtest_runs(tmp_path_factory.mktemp("report-run"), SYMBOLS, DAYS, 5, one_slot)
    return result


def load(run: RunResult) -> tuple[dict[str, Any], dict[str, Any]]:
    summary = json.loads((run.run_dir / "summary.json").read_text())
    return summary, json.loads((run.run_dir / "report.json").read_text())


def test_the_run_folder_holds_both_files_and_nothing_half_written(run: RunResult) -> None:
    names = sorted(p.name for p in run.run_dir.iterdir())
    assert {"report.json", "report.html", "summary.json", "trades.jsonl"} <= set(names)
    assert not [n for n in names if n.startswith(".")]  # no temp file left
    assert not run.run_dir.with_name(run.run_dir.name + ".partial").exists()
    assert read_report(run.run_dir)["schema"] == SCHEMA
    assert "<script>" in (run.run_dir / "report.html").read_text()


def test_the_figures_agree_with_the_summary(run: RunResult) -> None:
    summary, report = load(run)
    m = report["metrics"]
    assert summary["trades"] > 5  # the run traded: the comparisons below mean something
    assert (
        m["trades"]
        == summary["trades"]
        == len((run.run_dir / "trades.jsonl").read_text().splitlines())
    )
    assert Decimal(report["run"]["realized_pnl"]) == Decimal(summary["realized_pnl"])
    assert m["realized_pnl"] == pytest.approx(float(summary["realized_pnl"]), abs=1e-8)
    assert m["fees"] == pytest.approx(float(summary["fees"]), abs=1e-8)
    assert round(m["win_rate"], 4) == summary["win_rate"]
    assert (
        m["ghosts"] == summary["ghosts"]
        and report["ghosts_by_reason"] == summary["ghosts_by_reason"]
    )
    assert sum(p["trades"] for p in report["pairs"]) == summary["trades"]
    assert sum(r["trades"] for r in report["exit_reasons"]) == summary["trades"]
    assert sum(p["pnl"] for p in report["pairs"]) == pytest.approx(m["realized_pnl"])
    assert [p["symbol"] for p in report["pairs"]] == sorted(SYMBOLS)


def test_final_equity_is_cash_plus_open_positions_at_their_last_close(run: RunResult) -> None:
    summary, report = load(run)
    last = {
        c.symbol: c.close[-1] for c in synthetic_market(SYMBOLS, minutes=DAYS * 24 * 60, seed=5)
    }
    held = sum(float(q) * last[s] for s, q in summary["open_positions"].items())
    assert report["metrics"]["final_equity"] == pytest.approx(
        float(summary["cash"]) + held, abs=1e-6
    )
    assert report["metrics"]["return_pct"] == pytest.approx(
        100 * ((float(summary["cash"]) + held) / 1000 - 1), abs=1e-6
    )


def test_guard_blocks_by_name_match_the_count(run: RunResult) -> None:
    summary, report = load(run)
    blocks = report["guard_blocks"]
    assert summary["guards_blocked"] > 0 and blocks.get("slots", 0) > 0
    # each blocked entry names at least one guard
    assert max(blocks.values()) <= summary["guards_blocked"] <= sum(blocks.values())


def test_the_plots_are_downsampled_and_carry_every_trade(run: RunResult) -> None:
    _, report = load(run)
    plots = report["plots"]
    assert 0 < len(plots["equity"]["t"]) <= 2_000 and len(plots["equity"]["dd_t"]) <= 2_000
    assert min(plots["equity"]["drawdown_pct"]) == pytest.approx(
        -report["metrics"]["max_drawdown_pct"]
    )
    for p in plots["prices"]:
        assert len(p["t"]) <= 2_000 and p["markers_shown"] == p["trades"]
    assert sum(p["trades"] for p in plots["prices"]) == report["metrics"]["trades"]


def test_render_again_gives_the_same_page(run: RunResult) -> None:
    html = run.run_dir / "report.html"
    before = html.read_bytes()
    html.unlink()
    assert render_html(run.run_dir) == html and html.read_bytes() == before


def test_the_headline_names_the_figures_and_the_report(run: RunResult) -> None:
    _, report = load(run)
    buf = io.StringIO()
    print_headline(run.run_dir, Console(file=buf, width=400))
    text = buf.getvalue()
    assert f"return: {report['metrics']['return_pct']:+.2f} %" in text
    assert f"max drawdown: {report['metrics']['max_drawdown_pct']:.2f} %" in text
    assert f"report: {run.run_dir / 'report.html'}" in text


def test_run_metrics_are_the_reports_figures(run: RunResult) -> None:
    """What a sweep ranks by, computed without files, equals report.json's figures."""
    summary, report = load(run)
    pf = run.engine.portfolio
    market = synthetic_market(SYMBOLS, minutes=DAYS * 24 * 60, seed=5)
    got = run_metrics(market, summary, pf.trades, 1000, open_positions=pf.positions.values())
    assert got == pytest.approx(report["metrics"], nan_ok=False)


def test_guard_blocks_read_only_blocked_transitions(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    lines = [
        {"kind": "phase", "event": "GUARDS_BLOCKED", "reason": "spread,slots"},
        {"kind": "phase", "event": "GUARDS_PASSED", "reason": "GUARDS_BLOCKED before"},
        {"kind": "phase", "event": "GUARDS_BLOCKED", "reason": "slots"},
    ]
    audit.write_text(
        "".join(json.dumps(r) + "\n" for r in lines) + '{"event": "GUARDS_BLOCKED", "re'
    )
    assert guard_blocks(audit) == {"spread": 1, "slots": 2}  # the torn last line is skipped
    assert guard_blocks(tmp_path / "none.jsonl") == {}


def test_a_run_without_the_page_writes_the_same_report_json(run: RunResult, tmp_path: Path) -> None:
    """A sweep's trial skips report.html; report.json is what the full run wrote (but
    the run's name, which is the folder's), so `fsmtrader report` can render the page later."""
    series = synthetic_market(SYMBOLS, minutes=DAYS * 24 * 60, seed=5)
    s = settings(
        seed=5, market={"symbols": SYMBOLS}, runs_dir=str(tmp_path), risk={"max_open_positions": 1}
    )
    bare = Backtest(s, series, filters_for(series), tmp_path / "run").run(report_html=False)
    assert not (bare.run_dir / "report.html").exists()
    full, again = load(run)[1], json.loads((bare.run_dir / "report.json").read_text())
    full["run"].pop("name"), again["run"].pop("name")
    assert again == full
    render_html(bare.run_dir)
    assert (bare.run_dir / "report.html").read_text() != ""
