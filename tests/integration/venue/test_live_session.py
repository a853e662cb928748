"""The whole engine trading through the ccxt adapter against the local Binance and MEXC
servers (real ccxt, real HTTP, real signing), live mode's safety rules, and secrets."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.config import credentials, load_settings
from fsmtrader.live import LiveSession
from fsmtrader_testing.harness import settings
from fsmtrader_testing.paper import run_fsmtrader as fsm

from simserver_support import ENV, KEY, SECRET, Sim, live_settings, running_server

pytestmark = pytest.mark.timeout(180)


def steer(sim: Sim, start: Decimal, stop: threading.Event) -> None:
    """Prices the strategy must act on: a 2 % drop (buy), then +2 % (take-profit)."""
    for factor, wait in (("1", 0.5), ("0.98", 4.0), ("1.0", 4.0), ("1.02", 6.0)):
        if stop.is_set():
            return
        sim.price("BTC/USDT", start * Decimal(factor), hold=True)
        stop.wait(wait)


def run_round_trip(sim: Sim, state: Path, *, paper: bool, seconds: float) -> dict[str, Any]:
    s = live_settings(sim)
    start = Decimal(str(sim.state().get("prices", {}).get("BTC/USDT", "0") or "0"))
    if start <= 0:
        start = Decimal("90000")
    sim.price("BTC/USDT", start, hold=True)
    session = LiveSession(s, state, paper=paper)
    stop = threading.Event()
    driver = threading.Thread(target=steer, args=(sim, start, stop), daemon=True)
    try:
        report = session.start()
        assert report.ok, report.to_dict()
        driver.start()
        summary = session.run(stop_after_s=seconds)
    finally:
        stop.set()
        session.close()
        driver.join(5)
    return summary


@pytest.fixture
def bsim() -> Iterator[Sim]:
    with running_server("binance") as sim:
        yield sim


def test_engine_trades_live_through_ccxt_on_local_binance(bsim: Sim, tmp_path: Path) -> None:
    before = bsim.state()
    summary = run_round_trip(bsim, tmp_path / "st", paper=False, seconds=16)
    assert summary["trades"] >= 1, summary
    assert summary["orders_by_final_state"].get("FILLED", 0) >= 2
    after = bsim.state()
    ours = [c for c in after["orders"] if c.startswith("fsm")]
    assert len(ours) >= 2 and len(after["orders"]) > len(before["orders"])
    # a restart finds the books and the venue in agreement (live: covering balances)
    again = LiveSession(live_settings(bsim), tmp_path / "st", paper=False)
    try:
        report = again.start()
        assert report.ok and again.restored
        assert len(again.engine.portfolio.trades) == summary["trades"]
    finally:
        again.close()


def test_paper_with_live_prices_never_touches_the_venue_account(bsim: Sim, tmp_path: Path) -> None:
    before = bsim.state()
    summary = run_round_trip(bsim, tmp_path / "pp", paper=True, seconds=16)
    assert summary["trades"] >= 1, summary
    after = bsim.state()
    assert after["orders"] == before["orders"]  # simulated fills only
    assert (tmp_path / "pp" / "sim-exchange.db").exists()


def test_engine_trades_on_local_mexc_with_its_quirks(tmp_path: Path) -> None:
    quirks = {"order_not_found_after_create", "ioc_returns_open"}
    with running_server("mexc", quirks=quirks) as sim:
        summary = run_round_trip(sim, tmp_path / "mx", paper=False, seconds=30)
        assert (
            summary["orders_by_final_state"].get("FILLED", 0)
            + summary["orders_by_final_state"].get("CANCELED", 0)
            >= 1
        ), summary
        state = sim.state()
        # every order our engine sent is closed: IOCs the venue left open were cancelled
        ours = {c: o for c, o in state["orders"].items() if c.startswith("fsm")}
        assert ours
        assert all(o["status"].lower() not in ("new", "open") for o in ours.values()), ours


# --- live mode's rules, through the real command line -----------------------------------
def write_config(path: Path, sim: Sim, extra: str = "") -> Path:
    path.write_text(
        f'[market]\nsymbols = ["BTC/USDT"]\n[exchange]\nbase_url = "{sim.base_url}"\n'
        f"poll_s = 0.1\n{extra}"
    )
    return path


def test_live_needs_confirmation_keys_and_safe_settings(bsim: Sim, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", bsim)
    run = fsm("trade", "--live", "--config", str(cfg), "--for", "1", env=ENV, cwd=tmp_path)
    assert run.returncode == 2 and "--confirm-live" in run.stderr
    run = fsm(
        "trade",
        "--live",
        "--confirm-live",
        "--config",
        str(cfg),
        "--for",
        "1",
        env={},
        cwd=tmp_path,
    )
    assert run.returncode == 2 and "FSMTRADER_EXCHANGE__API_KEY" in run.stderr
    risky = write_config(
        tmp_path / "r.toml",
        bsim,
        '[risk]\nmax_total_exposure = "500"\nposition_size = "60"\n'
        "[exit]\nnever_market_sells = false\n",
    )
    run = fsm(
        "trade",
        "--live",
        "--confirm-live",
        "--config",
        str(risky),
        "--for",
        "1",
        env=ENV,
        cwd=tmp_path,
    )
    assert run.returncode == 2
    for key in ("exit.never_market_sells", "risk.max_total_exposure", "risk.position_size"):
        assert key in run.stderr
    assert "Traceback" not in run.stderr and not bsim.state()["orders"]


def test_keys_in_the_config_file_are_refused_without_echoing_them(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[exchange]\napi_key = "{KEY}"\napi_secret = "{SECRET}"\n')
    run = fsm("config", "--config", str(cfg), env={}, cwd=tmp_path)
    assert run.returncode == 2 and "never read from the config file" in run.stderr
    assert KEY not in run.stderr + run.stdout and SECRET not in run.stderr + run.stdout


def test_key_file_must_be_private(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.toml"
    key_file.write_text(f'api_key = "{KEY}"\napi_secret = "{SECRET}"\n')
    key_file.chmod(0o644)
    s = settings(exchange={"key_file": str(key_file)})
    with pytest.raises(Exception, match="chmod 600") as err:
        credentials(s)
    assert SECRET not in str(err.value)
    key_file.chmod(0o600)
    assert credentials(s) == (KEY, SECRET)


def test_secrets_never_reach_logs_audit_database_or_errors(
    bsim: Sim, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    state = tmp_path / "st"
    run_round_trip(bsim, state, paper=False, seconds=6)
    # and a session whose secret is wrong: the refusal is recorded, the secret is not
    bad = load_settings(
        None,
        env={"FSMTRADER_EXCHANGE__API_KEY": KEY, "FSMTRADER_EXCHANGE__API_SECRET": SECRET[::-1]},
        overrides={"market": {"symbols": ["BTC/USDT"]}, "exchange": {"base_url": bsim.base_url}},
    )
    errors = []
    try:
        session = LiveSession(bad, tmp_path / "bad", paper=False)
        session.close()
    except Exception as exc:  # the refusal: its text must not carry a secret either
        errors.append(f"{exc!r} {exc}")
    assert errors, "a wrong secret must be refused"
    haystacks = [caplog.text, *errors, repr(load_settings(None, env=ENV))]
    for folder in (state, tmp_path / "bad"):
        for path in folder.rglob("*"):
            if path.is_file():
                haystacks.append(path.read_bytes().decode("latin-1"))
    for text in haystacks:
        assert KEY not in text and SECRET not in text and SECRET[::-1] not in text
    assert json.dumps(load_settings(None, env=ENV).redacted_dict()).count("***") == 2


def test_sim_server_command_serves_ccxt(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsmtrader", "sim-server", "--port", "0", "--flavour", "binance"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.strip().rsplit(" ", 1)[-1]
        with urllib.request.urlopen(url + "/api/v3/time", timeout=5) as resp:
            assert "serverTime" in json.loads(resp.read())
    finally:
        proc.terminate()
        proc.wait(10)


def test_download_data_command_writes_what_backtest_reads(bsim: Sim, tmp_path: Path) -> None:
    run = fsm(
        "download-data",
        "--symbols",
        "BTC/USDT",
        "--days",
        "0.5",
        "--out-dir",
        str(tmp_path / "data"),
        "--base-url",
        bsim.base_url,
        env={},
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    csv = tmp_path / "data" / "binance_BTCUSDT_1m.csv"
    rows = csv.read_text().splitlines()
    assert rows[0] == "timestamp_ms,open,high,low,close,volume" and len(rows) - 1 == 720
    bt = fsm("backtest", "--data", str(csv), "--symbol", "BTC/USDT", "--json", env={}, cwd=tmp_path)
    assert bt.returncode == 0 and json.loads(bt.stdout)["candles"] == 720
    again = fsm(
        "download-data",
        "--symbols",
        "BTC/USDT",
        "--days",
        "0.5",
        "--out-dir",
        str(tmp_path / "data"),
        "--base-url",
        bsim.base_url,
        env={},
        cwd=tmp_path,
    )
    assert again.returncode == 0 and "resumed" in again.stderr


def test_a_start_that_cannot_read_the_exchange_halts_entries_until_one_that_can(
    bsim: Sim, tmp_path: Path
) -> None:
    """An unreadable order history proves nothing either way: entries stop (the books are
    unproven) without calling it a mismatch, and the next start that reads everything
    lifts that halt, and only that one."""
    state = tmp_path / "unread"
    first = LiveSession(live_settings(bsim), state, paper=False)
    first.start()
    first.close()
    bsim.fault("GET /api/v3/allOrders", "unavailable", times=50)
    blind = LiveSession(live_settings(bsim), state, paper=False)
    try:
        report = blind.start()
        assert report.incomplete and not report.ok
        assert blind.engine.halted.startswith("reconcile incomplete: ")
    finally:
        blind.close()
    admin_clear(bsim)
    clear = LiveSession(live_settings(bsim), state, paper=False)
    try:
        assert clear.start().ok
        assert clear.engine.halted == ""
        clear.engine.halt("a person stopped entries")
        clear.engine.commit()
    finally:
        clear.close()
    again = LiveSession(live_settings(bsim), state, paper=False)
    try:
        assert again.start().ok
        assert again.engine.halted == "a person stopped entries"  # not ours to lift
    finally:
        again.close()


def admin_clear(sim: Sim) -> None:
    sim._request("DELETE", "/__sim/fault")
