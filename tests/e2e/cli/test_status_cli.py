"""``fsmtrader status`` as a user runs it (real subprocesses): while a paper session runs it
shows the bot as running with its pid and reads its books; after it stops, the same books
and "stopped"; it changes no file; a missing directory or database is one line, exit 2."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fsmtrader_testing.paper import (
    clean_env,
    fsmtrader_argv,
    paper_args,
    run_fsmtrader,
    session_toml,
)

pytestmark = pytest.mark.timeout(120)
TOKEN = "status-cli-test-token-0123456789abcdef"


def status_json(state: Path, cwd: Path) -> dict[str, Any]:
    proc = run_fsmtrader("status", "--state-dir", str(state), "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def tree(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_status_of_a_running_then_stopped_paper_session(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(session_toml(7, api={"enabled": True, "port": 0}))
    state = tmp_path / "state"
    args = paper_args(state, cfg, "--for", "5", hours=12, speed=3000)
    proc = subprocess.Popen(
        fsmtrader_argv(*args),
        cwd=tmp_path,
        env=clean_env(FSMTRADER_API__TOKEN=TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (state / "fsmtrader.db").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # some trading first
        running = status_json(state, tmp_path)
        still = proc.poll() is None
        table = run_fsmtrader("status", "--state-dir", str(state), cwd=tmp_path)
    finally:
        out, errs = proc.communicate(timeout=60)
    assert proc.returncode == 0, errs
    assert still, "the session ended before status ran: lengthen --for"
    assert running["lock"]["state"] == "running"
    assert running["lock"]["pid"] == proc.pid
    assert running["session"] == "paper"
    api = running["api"]
    assert api is not None and api["host"] == "127.0.0.1" and api["port"] > 0
    assert api["pid"] == proc.pid
    assert TOKEN not in json.dumps(running)
    assert {r["symbol"] for r in running["symbols"]} == {
        "BTC/USDT",
        "ETH/USDT",
        "SOL/USDT",
        "DOGE/USDT",
    }
    assert table.returncode == 0, table.stderr
    assert f"paper: running (pid {proc.pid}, API on 127.0.0.1:{api['port']})" in table.stdout
    assert TOKEN not in table.stdout + table.stderr
    assert "symbol" in table.stdout and "uPnL" in table.stdout

    summary = json.loads(out)
    before = tree(state)
    stopped = status_json(state, tmp_path)
    assert tree(state) == before, "status changed or created a file"
    assert stopped["lock"] == {**running["lock"], "state": "stopped"}
    assert stopped["api"] is None
    assert stopped["totals"]["by_phase"] == summary["phases"]
    assert stopped["totals"]["realized_pnl"] == summary["realized_pnl"]
    assert stopped["totals"]["cash"] == summary["cash"]
    held = {r["symbol"]: r["position"] for r in stopped["symbols"] if r["position"] != "0"}
    assert held == summary["open_positions"]
    assert stopped["marks_from"] == "saved"
    assert all(r["last_price"] is not None for r in stopped["symbols"])
    # the paper clock is simulated: the session's end, not the wall
    assert stopped["now_ms"] < time.time() * 1000 - 86_400_000
    again = run_fsmtrader("status", "--state-dir", str(state), cwd=tmp_path)
    assert "paper: stopped (last pid" in again.stdout


@pytest.mark.parametrize("what", ["no-dir", "no-db"])
def test_status_without_a_session_is_one_line_and_exit_2(tmp_path: Path, what: str) -> None:
    state = tmp_path / "state"
    if what == "no-db":
        state.mkdir()
    proc = run_fsmtrader("status", "--state-dir", str(state), "--json", cwd=tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (state / "fsmtrader.lock").exists() and not (state / "fsmtrader.db").exists()
    assert (what == "no-dir") == (not state.exists())
