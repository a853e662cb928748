"""``fsmtrader report`` and ``--compare`` as a user runs them: real subprocesses on real run
folders, and one clear error line (exit 2) for a folder it cannot read."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fsmtrader_testing.paper import run_fsmtrader as cli
from report_support import backtest_runs

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two backtests of the same market with different drop triggers."""
    drops = {
        "tight": {"entry": {"drop_trigger_pct": 1.0}},
        "loose": {"entry": {"drop_trigger_pct": 3.0}},
    }
    a, b = backtest_runs(tmp_path_factory.mktemp("report-cli"), SYMBOLS, 2, 9, drops)
    return a.run_dir, b.run_dir


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


def test_report_renders_the_page_again(runs: tuple[Path, Path]) -> None:
    run = runs[0]
    page = run / "report.html"
    page.unlink()
    proc = cli("report", str(run), cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {page}" in proc.stdout and "return:" in proc.stdout
    assert "Plotly.newPlot" in page.read_text()


def test_compare_writes_both_runs_side_by_side(runs: tuple[Path, Path]) -> None:
    a, b = runs
    proc = cli("report", str(a), "--compare", str(b), cwd=a.parent)
    assert proc.returncode == 0, proc.stderr
    page = a / "compare-loose.html"
    assert f"wrote {page}" in proc.stdout
    text = page.read_text()
    ma = json.loads((a / "report.json").read_text())["metrics"]
    mb = json.loads((b / "report.json").read_text())["metrics"]
    assert ma["trades"] != mb["trades"]  # two different runs: the table shows both
    assert "tight: return %" in text and "loose: return %" in text
    assert f"<td>trades</td><td>{ma['trades']}</td><td>{mb['trades']}</td>" in text


def test_errors_are_one_line(runs: tuple[Path, Path], tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert str(missing) in one_error_line(cli("report", str(missing), cwd=tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "report.json: missing" in one_error_line(cli("report", str(empty), cwd=tmp_path))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "report.json").write_text('{"schema": "fsmtrader.report/0"}')
    line = one_error_line(cli("report", str(runs[0]), "--compare", str(foreign), cwd=tmp_path))
    assert "schema 'fsmtrader.report/0'" in line and "fsmtrader.report/1" in line
    (foreign / "report.json").write_text("{not json")
    assert "not a readable report" in one_error_line(cli("report", str(foreign), cwd=tmp_path))
    assert not (foreign / "report.html").exists()


def test_compare_labels_runs_by_their_folders(runs: tuple[Path, Path], tmp_path: Path) -> None:
    """A copy of a run (its report.json still names the original) is labelled by its own
    folder, and every difference is zero."""
    copy = tmp_path / "tight-again"
    shutil.copytree(runs[0], copy)
    proc = cli("report", str(runs[0]), "--compare", str(copy), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (runs[0] / "compare-tight-again.html").read_text()
    assert "tight-again: return %" in text and "<th>tight − tight-again</th>" not in text
    assert "<th>tight-again − tight</th>" in text
    trades = json.loads((copy / "report.json").read_text())["metrics"]["trades"]
    assert f"<td>trades</td><td>{trades}</td><td>{trades}</td><td>0</td>" in text
