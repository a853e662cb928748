"""The command line used as a user would, through real subprocesses: bad options and
environment named in one line, secrets never echoed, reconcile checking the venue a live
session traded on, and a paper session stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fsmtrader_testing.paper import run_fsmtrader as cli

from conftest import shared_file
from simserver_support import KEY, SECRET, running_server

HEADER = "timestamp_ms,open,high,low,close,volume"


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "internal error" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "━" not in ln]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error:")
    return lines[0]


# --- reconcile after a live session ------------------------------------------------------
def test_reconcile_after_live_trade_checks_the_venue_not_a_fresh_simulator(
    tmp_path: Path,
) -> None:
    env = {"FSMTRADER_EXCHANGE__API_KEY": KEY, "FSMTRADER_EXCHANGE__API_SECRET": SECRET}
    with running_server("binance", speed=600) as sim:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[market]\nsymbols = ["BTC/USDT", "ETH/USDT"]\n'
            f'[exchange]\nbase_url = "{sim.base_url}"\npoll_s = 0.1\n'
        )
        state = tmp_path / "state"
        live = cli(
            "trade",
            "--live",
            "--confirm-live",
            "--config",
            str(cfg),
            "--state-dir",
            str(state),
            "--for",
            "4",
            "--quiet",
            cwd=tmp_path,
            env=env,
        )
        assert live.returncode == 0, live.stderr
        assert "reconcile ok" in live.stderr
        rec = cli(
            "reconcile", "--config", str(cfg), "--state-dir", str(state), cwd=tmp_path, env=env
        )
    assert not (state / "sim-exchange.db").exists()  # no simulator inside a live state dir
    assert rec.returncode == 0, rec.stdout + rec.stderr  # the books match the venue


# --- output that is not a terminal -------------------------------------------------------
def test_config_defaults_redirected_to_a_file_is_valid_toml(tmp_path: Path) -> None:
    proc = cli("config", "--defaults", cwd=tmp_path, columns=None)
    assert proc.returncode == 0
    cfg = tmp_path / "my.toml"
    cfg.write_text(proc.stdout)
    check = cli("config", "--config", str(cfg), cwd=tmp_path, columns=None)
    assert check.returncode == 0, check.stderr


def test_error_is_one_line_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    markets = shared_file("ccxt_binance_spot_markets.json")
    csv = tmp_path / "ok.csv"
    csv.write_text(f"{HEADER}\n1,2,3,1,2,5\n")
    proc = cli(
        "backtest",
        "--data",
        str(csv),
        "--symbol",
        "NOPE/USDT",
        "--markets",
        str(markets),
        cwd=tmp_path,
        columns=None,
    )
    line = one_error_line(proc)
    assert "NOPE/USDT" in line and "BTC/USDT" in line


# --- paper: numbers that are accepted but should not be ----------------------------------
@pytest.mark.parametrize("speed", ["0", "-5"])
def test_paper_refuses_a_speed_that_never_advances(tmp_path: Path, speed: str) -> None:
    proc = cli(
        "paper",
        "--state-dir",
        str(tmp_path / "st"),
        "--speed",
        speed,
        "--for",
        "1",
        "--quiet",
        cwd=tmp_path,
    )
    assert "--speed" in one_error_line(proc)


@pytest.mark.parametrize("hours", ["nan", "-1"])
def test_paper_bad_hours_is_one_line_naming_hours(tmp_path: Path, hours: str) -> None:
    proc = cli(
        "paper",
        "--state-dir",
        str(tmp_path / "st"),
        "--hours",
        hours,
        "--for",
        "1",
        "--quiet",
        cwd=tmp_path,
    )
    assert "hours" in one_error_line(proc)


@pytest.mark.parametrize("speed", ["-5", "nan"])
def test_demo_refuses_a_negative_or_nan_speed(tmp_path: Path, speed: str) -> None:
    proc = cli("demo", "--quiet", "--hours", "1", "--speed", speed, cwd=tmp_path)
    assert "--speed" in one_error_line(proc)


# --- sim-server ---------------------------------------------------------------------------
def test_sim_server_port_out_of_range_is_one_line(tmp_path: Path) -> None:
    proc = cli("sim-server", "--port", "70000", cwd=tmp_path, timeout=30)
    assert "port" in one_error_line(proc).lower()


# --- secrets -------------------------------------------------------------------------------
def test_malformed_exchange_env_json_does_not_echo_the_secret(tmp_path: Path) -> None:
    env = {"FSMTRADER_EXCHANGE": '{"api_secret": "' + SECRET + '"'}  # missing }
    proc = cli("config", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert SECRET not in proc.stderr + proc.stdout


# --- environment typos -----------------------------------------------------------------------
def test_misspelled_environment_variable_is_reported(tmp_path: Path) -> None:
    proc = cli("config", cwd=tmp_path, env={"FSMTRADER_RISK_POSITION_SIZE": "30"})
    assert "FSMTRADER_RISK_POSITION_SIZE" in one_error_line(proc)


# --- download-data ---------------------------------------------------------------------------
def test_download_days_nan_names_the_option(tmp_path: Path) -> None:
    with running_server("binance") as sim:
        proc = cli(
            "download-data",
            "--base-url",
            sim.base_url,
            "--days",
            "nan",
            "--out-dir",
            str(tmp_path / "data"),
            cwd=tmp_path,
        )
    assert "--days" in one_error_line(proc)


def test_download_remote_base_url_names_the_option(tmp_path: Path) -> None:
    proc = cli("download-data", "--base-url", "http://10.1.1.1:9", cwd=tmp_path)
    assert "--base-url" in one_error_line(proc)


def test_paper_stops_cleanly_on_sigterm_and_for_zero_means_now(tmp_path: Path) -> None:
    """SIGTERM ends a paper session like Ctrl-C: state committed, lock released, exit 0;
    and --for 0 runs no time at all (it used to mean forever)."""
    import signal
    import time

    state = tmp_path / "st"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMTRADER_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fsmtrader",
            "paper",
            "--state-dir",
            str(state),
            "--quiet",
            "--speed",
            "600",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (state / "reconcile.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert '"trades"' in out
    quick = cli("paper", "--state-dir", str(state), "--quiet", "--for", "0", cwd=tmp_path)
    assert quick.returncode == 0 and "restored session" in quick.stderr
