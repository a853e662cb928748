"""A state directory belongs to one session kind, one venue and one account: every other
command on it is refused in one line that says what it holds and what was asked, before a
byte of it changes (real subprocesses of the CLI, the local Binance server as the venue).
Directories of older versions, which recorded no owner, are adopted from what they hold."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from fsmtrader.store.owner import account_fingerprint
from fsmtrader_testing.paper import paper_args, session_toml
from fsmtrader_testing.paper import run_fsmtrader as cli

from simserver_support import KEY, SECRET, Sim, running_server

pytestmark = pytest.mark.timeout(240)
ENV = {"FSMTRADER_EXCHANGE__API_KEY": KEY, "FSMTRADER_EXCHANGE__API_SECRET": SECRET}
OTHER_KEY = "fsmOtherAccountKey00000000000000000"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and its modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    return lines[0]


def config(tmp: Path, sim: Sim) -> Path:
    path = tmp / "c.toml"
    path.write_text(
        session_toml(
            3,
            market={"symbols": ["BTC/USDT", "ETH/USDT"]},
            exchange={"base_url": sim.base_url, "poll_s": 0.1},
        )
    )
    return path


def run_trade(
    tmp: Path, cfg: Path, state: Path, *flags: str, secs: str = "0.8", key: str = KEY
) -> subprocess.CompletedProcess[str]:
    """``fsmtrader trade *flags`` on ``state`` for ``secs`` wall seconds with ``key``."""
    env = {**ENV, "FSMTRADER_EXCHANGE__API_KEY": key}
    args = ["--config", str(cfg), "--state-dir", str(state), "--quiet", "--for", secs]
    return cli("trade", *flags, *args, cwd=tmp, env=env)


def owner_of(state: Path) -> dict[str, str]:
    with closing(sqlite3.connect(state / "fsmtrader.db")) as c:
        row = c.execute("SELECT value FROM engine_meta WHERE key = 'owner'").fetchone()
    return dict(json.loads(row[0])) if row else {}


LIVE = ("--live", "--confirm-live")


def test_a_live_directory_refuses_paper_paper_live_another_account_and_venue(
    tmp_path: Path,
) -> None:
    with running_server("binance") as sim:
        cfg = config(tmp_path, sim)
        state = tmp_path / "live"
        first = run_trade(tmp_path, cfg, state, *LIVE)
        assert first.returncode == 0, first.stderr
        fingerprint = account_fingerprint(KEY)
        assert owner_of(state) == {"kind": "live", "venue": "binance", "account": fingerprint}
        held = f"holds a LIVE session on binance (account {fingerprint})"
        before = snapshot(state)
        orders = sim.order_count()

        line = one_error_line(cli(*paper_args(state, cfg, "--for", "1"), cwd=tmp_path))
        assert held in line and "asks for a paper session on the synthetic market" in line
        line = one_error_line(run_trade(tmp_path, cfg, state))
        assert held in line and "asks for a paper session on binance live prices" in line
        line = one_error_line(run_trade(tmp_path, cfg, state, *LIVE, key=OTHER_KEY))
        other = account_fingerprint(OTHER_KEY)
        assert held in line and f"asks for a LIVE session on binance (account {other})" in line
        mexc = {**ENV, "FSMTRADER_EXCHANGE__NAME": "mexc"}
        line = one_error_line(
            cli(
                "reconcile", "--config", str(cfg), "--state-dir", str(state), cwd=tmp_path, env=mexc
            )
        )
        assert held in line and "LIVE session on mexc" in line

        assert snapshot(state) == before  # not a byte, not a name changed
        assert sim.order_count() == orders
        again = run_trade(tmp_path, cfg, state, *LIVE, secs="0")
        assert again.returncode == 0, again.stderr  # its own owner carries on


def test_the_account_is_a_fingerprint_never_the_key(tmp_path: Path) -> None:
    with running_server("binance") as sim:
        cfg = config(tmp_path, sim)
        state = tmp_path / "live"
        assert run_trade(tmp_path, cfg, state, *LIVE).returncode == 0
    account = owner_of(state)["account"]
    assert len(account) == 16 and account not in KEY
    for path in state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert KEY.encode() not in data and SECRET.encode() not in data, path
            assert KEY[:12].encode() not in data, path


def test_a_paper_directory_refuses_live_and_paper_on_live_prices(tmp_path: Path) -> None:
    with running_server("binance") as sim:
        cfg = config(tmp_path, sim)
        state = tmp_path / "paper"
        first = cli(*paper_args(state, cfg, "--for", "0.5"), cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert owner_of(state) == {"kind": "paper", "venue": "synthetic", "account": ""}
        before = snapshot(state)
        orders = sim.order_count()
        held = "holds a paper session on the synthetic market"
        line = one_error_line(run_trade(tmp_path, cfg, state, *LIVE))
        assert held in line and "asks for a LIVE session on binance" in line
        line = one_error_line(run_trade(tmp_path, cfg, state))
        assert held in line and "asks for a paper session on binance live prices" in line
        # demo keeps its books in memory: a state directory in its settings is not touched
        demo = cli(
            "demo",
            "--hours",
            "0.1",
            "--speed",
            "0",
            "--quiet",
            "--config",
            str(cfg),
            cwd=tmp_path,
            env={"FSMTRADER_STATE_DIR": str(state)},
        )
        assert demo.returncode == 0, demo.stderr
        assert snapshot(state) == before
        assert sim.order_count() == orders


def forget_owner(state: Path) -> None:
    """Make ``state`` look written by a version that recorded no owner."""
    with closing(sqlite3.connect(state / "fsmtrader.db")) as c, c:
        c.execute("DELETE FROM engine_meta WHERE key = 'owner'")
    assert owner_of(state) == {}


def test_directories_of_older_versions_are_adopted_from_what_they_hold(tmp_path: Path) -> None:
    with running_server("binance") as sim:
        cfg = config(tmp_path, sim)
        paper, live = tmp_path / "paper", tmp_path / "live"
        assert cli(*paper_args(paper, cfg, "--for", "0.5"), cwd=tmp_path).returncode == 0
        assert run_trade(tmp_path, cfg, live, *LIVE).returncode == 0
        forget_owner(paper)
        with closing(sqlite3.connect(live / "fsmtrader.db")) as c, c:  # old: its venue only
            c.execute(
                "INSERT OR REPLACE INTO engine_meta VALUES"
                ' (\'venue\', \'{"paper": false, "exchange": "binance"}\')'
            )
        forget_owner(live)

        # a paper directory is still a paper one: refused to live, continued by paper
        line = one_error_line(run_trade(tmp_path, cfg, paper, *LIVE))
        assert "holds a paper session on the synthetic market" in line
        again = cli(*paper_args(paper, cfg, "--for", "0.2"), cwd=tmp_path)
        assert again.returncode == 0 and "restored session" in again.stderr, again.stderr
        assert owner_of(paper) == {"kind": "paper", "venue": "synthetic", "account": ""}

        # a live one recorded no account: refused to paper, adopted by the account that opens it
        line = one_error_line(cli(*paper_args(live, cfg, "--for", "0.2"), cwd=tmp_path))
        assert "holds a LIVE session on binance (an unrecorded account)" in line
        assert run_trade(tmp_path, cfg, live, *LIVE, secs="0").returncode == 0
        assert owner_of(live)["account"] == account_fingerprint(KEY)
        line = one_error_line(run_trade(tmp_path, cfg, live, *LIVE, key=OTHER_KEY))
        assert f"account {account_fingerprint(KEY)}" in line
