"""A disk that refuses a write stops trading with one line, and the next start, on a disk
that works again, is consistent with the exchange.

The failures are the operating system's own: the session runs in a subprocess whose file
size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so a write fails with EFBIG instead of
killing the process) makes SQLite's commit fail with a real I/O error; and the audit
mirror is pointed at /dev/full, where every write fails with ENOSPC."""

from __future__ import annotations

import json
import resource
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from fsmtrader.config import load_settings
from fsmtrader.smoke.verify import verify_session
from fsmtrader_testing.paper import clean_env, fsmtrader_argv, paper_args, session_toml
from fsmtrader_testing.paper import run_fsmtrader as cli

pytestmark = pytest.mark.timeout(180)
LIMIT = 3_000_000  # bytes per file: a few seconds of trading at 1800x


def file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not death by signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def stopped_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("paper:")]
    assert len(errors) == 1 and errors[0].startswith("error:"), errors
    assert "trading stopped" in errors[0]
    return errors[0]


def consistent_restart(state: Path, cfg: Path) -> None:
    """Start again normally: it resolves and reconciles, trades on, and afterwards the
    books equal the exchange and audit.jsonl equals the audit table."""
    again = cli(*paper_args(state, cfg, "--for", "1"), cwd=state.parent)
    assert again.returncode == 0, again.stderr
    assert "restored session" in again.stderr and "reconcile ok" in again.stderr, again.stderr
    verdict = verify_session(state, load_settings(cfg, env={}))
    assert verdict[:3] == (0, 0, 0), verdict  # duplicates, orphans, drift
    with closing(sqlite3.connect(state / "fsmtrader.db")) as c:
        table = [
            (i, json.loads(r)) for i, r in c.execute("SELECT id, record FROM audit ORDER BY id")
        ]
    mirror = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    assert [(m.pop("audit_id"), m) for m in mirror] == table


def test_a_commit_failing_for_lack_of_space_stops_trading_then_restart_is_consistent(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(session_toml(seed=6))
    state = tmp_path / "state"
    started = time.monotonic()
    proc = subprocess.run(
        fsmtrader_argv(*paper_args(state, cfg, "--for", "90")),
        preexec_fn=file_size_limit(LIMIT),
        capture_output=True,
        text=True,
        env=clean_env(COLUMNS="200"),
        timeout=120,
    )
    line = stopped_line(proc)
    assert f"{state / 'fsmtrader.db'}: " in line and "disk I/O error" in line, line
    assert time.monotonic() - started < 60  # it stopped itself, long before --for 90
    assert "reconcile ok" in proc.stderr  # it had started and traded before the disk gave out
    consistent_restart(state, cfg)


def test_an_audit_mirror_that_cannot_be_written_stops_trading(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(session_toml(seed=6))
    state = tmp_path / "state"
    state.mkdir()
    mirror = state / "audit.jsonl"
    mirror.symlink_to("/dev/full")  # every write: ENOSPC, "No space left on device"
    line = stopped_line(cli(*paper_args(state, cfg, "--for", "30"), cwd=tmp_path))
    assert f"{mirror}: writing the audit failed" in line and "No space left" in line, line
    mirror.unlink()
    consistent_restart(state, cfg)
