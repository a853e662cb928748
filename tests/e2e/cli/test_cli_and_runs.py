"""The command line and run folders, through real subprocesses and real files."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import typer

from fsmtrader.cli.errors import guard
from fsmtrader.errors import FsmTraderError, PortfolioError
from fsmtrader.feeds import synthetic_market
from fsmtrader.runner import Backtest, filters_for
from fsmtrader_testing.harness import settings
from fsmtrader_testing.paper import run_fsmtrader as cli

from conftest import shared_file


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:")
    return lines[0]


def run_synthetic(tmp: Path, seed: int, name: str) -> dict[str, object]:
    s = settings(seed=seed, market={"symbols": ["BTC/USDT", "ETH/USDT"]}, runs_dir=str(tmp))
    series = synthetic_market(s.market.symbols, minutes=24 * 60, seed=seed)
    filters = filters_for(series)
    return Backtest(s, series, filters, tmp / name).run().summary


def test_console_script_names_the_cli_main() -> None:
    """``fsmtrader = "fsmtrader.cli:main"`` (pyproject) still resolves now that the CLI is
    a package."""
    from importlib.metadata import entry_points

    from fsmtrader.cli.app import main

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "fsmtrader"]
    assert script.value == "fsmtrader.cli:main"
    assert script.load() is main


def test_same_seed_same_audit_hash_different_seed_differs(tmp_path: Path) -> None:
    a = run_synthetic(tmp_path, 7, "a")
    b = run_synthetic(tmp_path, 7, "b")
    c = run_synthetic(tmp_path, 8, "c")
    assert a["trades"] and a["audit_sha256"] == b["audit_sha256"]
    assert a["audit_sha256"] != c["audit_sha256"]
    # the hash is the hash of the file on disk
    digest = hashlib.sha256((tmp_path / "a" / "audit.jsonl").read_bytes()).hexdigest()
    assert digest == a["audit_sha256"]


def test_audit_trail_rebuilds_every_intent_and_phase_chain(tmp_path: Path) -> None:
    run_synthetic(tmp_path, 3, "run")
    records = [json.loads(ln) for ln in (tmp_path / "run" / "audit.jsonl").read_text().splitlines()]
    orders: dict[str, list[str]] = {}
    for r in records:
        if r["kind"] == "order":
            orders.setdefault(r["intent_id"], []).append(r["state"])
            assert r["decision_id"]
    assert orders
    for chain in orders.values():
        assert chain[0] == "NEW"
        assert chain[-1] in ("RECONCILED", "FAILED_FINAL")
    last: dict[str, str] = {}
    for r in records:
        if r["kind"] == "phase":
            assert last.get(r["symbol"], "WARMUP") == r["from"]  # an unbroken chain
            last[r["symbol"]] = r["to"]


def test_backtest_json_on_real_candles(tmp_path: Path) -> None:
    data = shared_file("binance_usdm_LTCUSDT_1m_2026-02.csv")
    markets = shared_file("ccxt_binance_spot_markets.json")
    proc = cli(
        "backtest",
        "--data",
        str(data),
        "--symbol",
        "LTC/USDT",
        "--markets",
        str(markets),
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in (
        "candles",
        "trades",
        "orders",
        "rejected_orders",
        "realized_pnl",
        "fees",
        "ghosts",
        "audit_sha256",
    ):
        assert key in out
    assert out["candles"] == 40_320
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and not runs[0].name.endswith(".partial")
    assert (runs[0] / "summary.json").exists() and (runs[0] / "audit.jsonl").exists()


def test_backtest_without_markets_states_the_derived_filters(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    rows = ["timestamp_ms,open,high,low,close,volume"]
    rows += [f"{1_700_000_000_000 + i * 60_000},10,10,10,10,5" for i in range(100)]
    csv.write_text("\n".join(rows) + "\n")
    proc = cli("backtest", "--data", str(csv), "--symbol", "FOO/USDT", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "defaults derived from the data" in proc.stderr and "tick 0.001" in proc.stderr


def test_demo_runs_and_writes_a_complete_run_folder(tmp_path: Path) -> None:
    proc = cli("demo", "--quiet", "--hours", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "realised PnL" in proc.stdout and "orders by final state" in proc.stdout
    (run,) = list((tmp_path / "runs").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["candles"] == 4 * 120


def test_missing_csv_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(cli("backtest", "--data", "nope.csv", "--symbol", "X/USDT", cwd=tmp_path))
    assert "nope.csv" in line


def test_malformed_csv_names_file_and_line(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("timestamp_ms,open,high,low,close,volume\n1,2,3,1,2,5\n2,2,x,1,2,5\n")
    line = one_error_line(cli("backtest", "--data", str(csv), "--symbol", "X/USDT", cwd=tmp_path))
    assert "bad.csv:3" in line
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_zero_and_nan_prices_are_skipped_and_reported(tmp_path: Path) -> None:
    csv = tmp_path / "gaps.csv"
    rows = ["timestamp_ms,open,high,low,close,volume"]
    rows += [f"{1_700_000_000_000 + i * 60_000},10,10,10,10,5" for i in range(70)]
    rows[10] = "1700000540000,0,0,0,0,5"
    rows[20] = "1700001140000,nan,10,10,10,5"
    csv.write_text("\n".join(rows) + "\n")
    proc = cli("backtest", "--data", str(csv), "--symbol", "X/USDT", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["skipped_rows"] == 2 and out["candles"] == 68


def test_unknown_symbol_in_markets_file(tmp_path: Path) -> None:
    markets = shared_file("ccxt_binance_spot_markets.json")
    csv = tmp_path / "ok.csv"
    csv.write_text("timestamp_ms,open,high,low,close,volume\n1,2,3,1,2,5\n")
    proc = cli(
        "backtest",
        "--data",
        str(csv),
        "--symbol",
        "NOPE/USDT",
        "--markets",
        str(markets),
        cwd=tmp_path,
    )
    line = one_error_line(proc)
    assert "NOPE/USDT" in line and "BTC/USDT" in line


@pytest.mark.parametrize(
    ("env", "expect"),
    [
        ({"FSMTRADER_RISK__POSITION_SIZE": "-5"}, "risk.position_size"),
        ({"FSMTRADER_EXIT__STOP_LOSS_PCT": "abc"}, "exit.stop_loss_pct"),
        ({"FSMTRADER_MODE": "yolo"}, "mode"),
    ],
)
def test_bad_config_value_names_the_key(tmp_path: Path, env: dict[str, str], expect: str) -> None:
    proc = cli("demo", "--quiet", "--hours", "1", cwd=tmp_path, env=env)
    assert expect in one_error_line(proc)


def test_bad_config_file_names_the_key_and_range(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[entry]\ndrop_trigger_pct = 80\n")
    line = one_error_line(cli("config", "--config", str(cfg), cwd=tmp_path))
    assert "entry.drop_trigger_pct" in line and "50" in line


def test_fsm_command_prints_table_and_mermaid(tmp_path: Path) -> None:
    table = cli("fsm", cwd=tmp_path)
    assert table.returncode == 0 and "WAIT_FILL" in table.stdout and "TIMEOUT" in table.stdout
    mermaid = cli("fsm", "--mermaid", cwd=tmp_path)
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("stateDiagram-v2")


def _raise(exc: Exception) -> None:
    raise exc


def test_a_broken_invariant_exits_as_an_internal_error_not_a_user_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A user error is one line and exit 2; our own books breaking is a bug: exit 1 and a
    saved trace, even though PortfolioError is raised on purpose."""
    with pytest.raises(typer.Exit) as user:
        guard(lambda: _raise(FsmTraderError("state_dir: not a directory")))
    assert user.value.exit_code == 2
    with pytest.raises(typer.Exit) as bug:
        guard(lambda: _raise(PortfolioError("release 5 > reserved 3")))
    assert bug.value.exit_code == 1
    lines = capsys.readouterr().err.splitlines()
    assert "state_dir: not a directory" in lines[0]
    assert "internal error" in lines[-1] and "PortfolioError" in lines[-1]
    crash = Path(lines[-1].rsplit("trace in ", 1)[1].rstrip(")"))
    assert "release 5 > reserved 3" in crash.read_text()
    crash.unlink()


def test_config_warns_about_settings_that_cannot_act_as_written(tmp_path: Path) -> None:
    """The shipped defaults price the last buy step above the router's guard: the check
    says so on stderr; the settings on stdout stay valid JSON; fixing it silences it."""
    proc = cli("config", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["entry"]["buy_escalation_bps"] == [0.0, 10.0, 25.0]
    (warning,) = proc.stderr.strip().splitlines()
    assert warning.startswith("warning: entry.buy_escalation_bps: step 25")
    assert "router.slippage_guard_bps (20)" in warning
    cfg = tmp_path / "c.toml"
    cfg.write_text("[router]\nslippage_guard_bps = 25\n")
    quiet = cli("config", "--config", str(cfg), cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""
