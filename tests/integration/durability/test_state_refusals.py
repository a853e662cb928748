"""Bad state is refused, never re-initialised or repaired behind the user's back: an empty
or incomplete database, a state path that is a file, a directory this user cannot write, a
damaged or foreign ``sim-exchange.db``. Each is one line naming the file, exit code 2, and
the directory exactly as it was (every name, every byte, every mtime), through real
subprocesses of the CLI."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from fsmtrader_testing.paper import clean_env, fsmtrader_argv, paper_args, session_toml
from fsmtrader_testing.paper import run_fsmtrader as cli

pytestmark = pytest.mark.timeout(180)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every name under ``folder`` with its bytes (None for a directory) and mtime."""
    return {
        str(p.relative_to(folder)): (
            p.read_bytes() if p.is_file() else b"<dir>",
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
    }


def refused(proc: subprocess.CompletedProcess[str], *expect: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    for text in expect:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(session_toml(seed=2))
    return path


@pytest.fixture(scope="module")
def a_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real paper session's state directory, stopped cleanly (copied by the tests)."""
    base = tmp_path_factory.mktemp("session")
    cfg = base / "c.toml"
    cfg.write_text(session_toml(seed=2))
    proc = cli(*paper_args(base / "state", cfg, "--for", "0.5"), cwd=base)
    assert proc.returncode == 0, proc.stderr
    return base / "state"


def paper(state: Path, cfg: Path) -> subprocess.CompletedProcess[str]:
    return cli(*paper_args(state, cfg, "--for", "0.2"), cwd=cfg.parent)


def test_an_empty_database_is_refused_not_initialised(tmp_path: Path, cfg: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "fsmtrader.db").touch()
    before = snapshot(state)
    refused(paper(state, cfg), f"{state / 'fsmtrader.db'}: is empty (0 bytes)")
    refused(
        cli(
            "recover", "--clear-halt", "--config", str(cfg), "--state-dir", str(state), cwd=tmp_path
        ),
        "is empty (0 bytes)",
    )
    assert snapshot(state) == before


def test_an_sqlite_file_without_tables_is_refused(tmp_path: Path, cfg: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with closing(sqlite3.connect(state / "fsmtrader.db")) as c:
        c.execute("PRAGMA user_version = 7")  # a valid SQLite file, and nothing in it
    before = snapshot(state)
    refused(paper(state, cfg), "fsmtrader.db: an SQLite file with no tables")
    assert snapshot(state) == before


@pytest.mark.parametrize(
    ("damage", "expect"),
    [
        ("DROP TABLE fills", "missing fills"),
        ("ALTER TABLE orders DROP COLUMN cancel_requested", "missing orders.cancel_requested"),
    ],
)
def test_a_database_missing_tables_or_columns_is_refused(
    tmp_path: Path, cfg: Path, a_session: Path, damage: str, expect: str
) -> None:
    state = tmp_path / "state"
    shutil.copytree(a_session, state)
    with closing(sqlite3.connect(state / "fsmtrader.db")) as c:
        c.execute(damage)
    before = snapshot(state)
    refused(paper(state, cfg), "fsmtrader.db: an fsmtrader database", expect)
    refused(
        cli("reconcile", "--config", str(cfg), "--state-dir", str(state), cwd=tmp_path),
        expect,
    )
    assert snapshot(state) == before


def test_a_state_path_that_is_a_file_or_under_one(tmp_path: Path, cfg: Path) -> None:
    state = tmp_path / "state"
    state.write_text("my notes\n")
    before = snapshot(tmp_path)
    refused(paper(state, cfg), f"{state}: is a file, not a directory")
    refused(paper(state / "inner", cfg), f"{state / 'inner'}: cannot be created, {state} is a file")
    assert snapshot(tmp_path) == before


def _sim_file(kind: str, path: Path) -> None:
    if kind == "garbage":
        path.write_bytes(b"\x00\x01not an exchange" * 64)
    elif kind == "empty":
        path.touch()
    else:  # a foreign SQLite file
        with closing(sqlite3.connect(path)) as c:
            c.execute("CREATE TABLE meta (key TEXT, value TEXT)")
            c.execute("INSERT INTO meta VALUES ('kind', 'someone-elses')")
            c.commit()


SIM_CASES = [
    ("garbage", "not an SQLite file"),
    ("empty", "is empty (0 bytes)"),
    ("foreign", "an SQLite file but not a simulated exchange"),
]


@pytest.mark.parametrize(("kind", "expect"), SIM_CASES)
def test_a_bad_sim_exchange_file_in_a_new_directory(
    tmp_path: Path, cfg: Path, kind: str, expect: str
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    _sim_file(kind, state / "sim-exchange.db")
    before = snapshot(state)
    refused(paper(state, cfg), f"{state / 'sim-exchange.db'}: {expect}")
    assert snapshot(state) == before  # no database, no lock file was created


@pytest.mark.parametrize(("kind", "expect"), SIM_CASES)
def test_a_bad_sim_exchange_file_in_a_session(
    tmp_path: Path, cfg: Path, a_session: Path, kind: str, expect: str
) -> None:
    state = tmp_path / "state"
    shutil.copytree(a_session, state)
    (state / "sim-exchange.db").unlink()
    _sim_file(kind, state / "sim-exchange.db")
    before = snapshot(state)
    refused(paper(state, cfg), f"{state / 'sim-exchange.db'}: {expect}")
    refused(
        cli("reconcile", "--config", str(cfg), "--state-dir", str(state), cwd=tmp_path),
        expect,
    )
    assert snapshot(state) == before


def unprivileged_prefix() -> list[str]:
    """What makes the permission bits apply to the CLI: nothing for a normal user; for
    root (who may write anywhere) ``setpriv`` without the capabilities that override them."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root (uid 0) without setpriv: unwritable cannot be tested")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


def test_a_directory_this_user_cannot_write(tmp_path: Path, cfg: Path, a_session: Path) -> None:
    prefix = unprivileged_prefix()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = clean_env(COLUMNS="200", PYTHONDONTWRITEBYTECODE="1")
        return subprocess.run(
            [*prefix, *fsmtrader_argv(*args)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    new = tmp_path / "new"
    new.mkdir()
    old = tmp_path / "old"
    shutil.copytree(a_session, old)
    for p in (new, old):
        p.chmod(0o555)
    try:
        before = snapshot(tmp_path)
        refused(run(*paper_args(new, cfg, "--for", "0.2")), f"{new}: directory not writable")
        refused(run(*paper_args(new / "x", cfg, "--for", "0.2")), f"{new}: directory not writable")
        refused(run(*paper_args(old, cfg, "--for", "0.2")), f"{old}: directory not writable")
        refused(run("reconcile", "--config", str(cfg), "--state-dir", str(old)), "not writable")
        assert snapshot(tmp_path) == before
    finally:
        for p in (new, old):
            p.chmod(0o755)


def test_live_refuses_a_directory_holding_a_simulated_exchange(
    tmp_path: Path, cfg: Path, a_session: Path
) -> None:
    """A paper directory whose database was removed is still a paper directory."""
    state = tmp_path / "state"
    shutil.copytree(a_session, state)
    (state / "fsmtrader.db").unlink()
    live = tmp_path / "live.toml"
    live.write_text(session_toml(seed=2, exchange={"base_url": "http://127.0.0.1:9"}))
    before = snapshot(state)
    proc = cli(
        "trade",
        "--live",
        "--confirm-live",
        "--config",
        str(live),
        "--state-dir",
        str(state),
        "--for",
        "0",
        "--quiet",
        cwd=tmp_path,
        env={"FSMTRADER_EXCHANGE__API_KEY": "k" * 32, "FSMTRADER_EXCHANGE__API_SECRET": "s" * 32},
    )
    refused(proc, f"{state}: holds a simulated exchange (sim-exchange.db)", "LIVE session")
    assert snapshot(state) == before
