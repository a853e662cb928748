"""BookReader on the state database of a real ``fsmtrader paper`` session: it reads while
the bot commits (WAL), every read is one committed state, it agrees with the engine's own
summary, and it never changes a byte or creates a file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.control.clocks import session_clock
from fsmtrader.control.reads import BookReader, saved_marks
from fsmtrader.control.status import build_status, order_view
from fsmtrader.engine.modes import MODES_META, decode_modes
from fsmtrader.errors import StoreError
from fsmtrader.store.schema import readonly_uri
from fsmtrader.store.sqlite import open_store
from fsmtrader_testing.paper import clean_env, fsmtrader_argv, paper_args, session_toml

pytestmark = pytest.mark.timeout(120)
SPEED = 3000


def files(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: its SHA-256 and its modification time."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def start_paper(tmp: Path, state: Path, secs: float) -> subprocess.Popen[str]:
    cfg = tmp / "c.toml"
    if not cfg.exists():
        cfg.write_text(session_toml(5))
    args = paper_args(state, cfg, "--for", f"{secs:g}", hours=12, speed=SPEED)
    return subprocess.Popen(
        fsmtrader_argv(*args),
        cwd=tmp,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, errs = proc.communicate(timeout=60)
    assert proc.returncode == 0, errs
    summary: dict[str, Any] = json.loads(out)
    return summary


def every_read(r: BookReader, now: int) -> dict[str, Any]:
    return {
        "status": r.status(now),
        "orders": r.orders(),
        "trades": r.trades(None, None, 50),
        "balance": r.balance(),
        "profit": r.profit(),
        "daily": r.daily(3),
        "ghosts": r.ghosts(),
        "alerts": r.alerts(20),
        "audit": r.audit(0, 100),
        "reconcile": r.reconcile_report(),
    }


def test_reads_during_and_after_a_paper_session(tmp_path: Path) -> None:
    state = tmp_path / "state"
    db = state / "fsmtrader.db"
    finish(start_paper(tmp_path, state, 2.5))  # a first run: then nobody writes
    assert not (state / "fsmtrader.db-wal").exists()
    reader = BookReader(db, state)  # opened with no writer: immutable, no side file
    first_id = reader.last_audit_id()
    assert first_id > 0
    assert not (state / "fsmtrader.db-wal").exists()

    proc = start_paper(tmp_path, state, 5)  # the session resumes and writes again
    seen: list[int] = []
    marks_seen = False
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        now = reader.session_now_ms()
        data = every_read(reader, now)
        p = data["profit"]
        assert p["realized_pnl"] == p["trades_pnl"]  # portfolio row and trades table: one state
        bal = data["balance"]
        assert Decimal(bal["reserved"]) == sum(
            (Decimal(x["amount"]) for x in bal["reservations"]), Decimal(0)
        )
        seen.append(reader.last_audit_id())
        marks_seen |= data["status"]["marks_from"] == "saved" and all(
            row["last_price"] is not None for row in data["status"]["symbols"]
        )
        time.sleep(0.05)
    summary = finish(proc)
    assert len(seen) >= 10, seen
    assert seen == sorted(seen) and seen[-1] > first_id, "the reader followed the writer"
    assert marks_seen, "the running session's saved marks were read"

    # What the reader says is what the engine said when it stopped.
    before = files(state)
    with BookReader(db, state) as r:
        meta = r.meta()
        data = every_read(r, session_clock(meta)())
    assert files(state) == before, "reading changed or created a file"
    profit, balance, st = data["profit"], data["balance"], data["status"]
    assert profit["trades"] == summary["trades"] and profit["wins"] == summary["wins"]
    assert profit["win_rate"] == summary["win_rate"]
    assert profit["realized_pnl"] == summary["realized_pnl"]
    assert balance["cash"] == summary["cash"]
    assert balance["fees_paid"] == summary["fees"]
    assert {p["symbol"]: p["qty"] for p in balance["positions"]} == summary["open_positions"]
    assert balance["dust"] == summary["dust"]
    assert st["totals"]["by_phase"] == summary["phases"]
    assert st["halted"] == summary["halted"]
    assert data["ghosts"]["count"] == summary["ghosts"]
    assert data["ghosts"]["by_reason"] == summary["ghosts_by_reason"]
    assert data["reconcile"] is not None and data["reconcile"]["ok"] is True
    # the SIGNAL count is the audit trail's, and one signal per entry decision at most
    with contextlib.closing(sqlite3.connect(readonly_uri(db), uri=True)) as c:
        signals = c.execute(
            'SELECT COUNT(*) FROM audit WHERE record LIKE \'%"event":"SIGNAL"%\''
        ).fetchone()[0]
        decisions = c.execute("SELECT COUNT(DISTINCT decision_id) FROM orders").fetchone()[0]
    assert data["ghosts"]["signals"] == signals >= decisions > 0
    assert data["audit"][0]["audit_id"] == 1
    assert [a["audit_id"] for a in data["audit"]] == list(range(1, len(data["audit"]) + 1))
    assert sum(d["trades"] for d in data["daily"]) == summary["trades"]
    assert [t["id"] for t in data["trades"]] == sorted(
        (t["id"] for t in data["trades"]), reverse=True
    )
    assert files(state) == before

    # The reader's rows are the store's own: a copy (with what its WAL holds: the open
    # reader kept the bot from folding it in) loaded as a start loads it.
    reader.close()
    copy = tmp_path / "copy" / "fsmtrader.db"
    copy.parent.mkdir()
    with (
        contextlib.closing(sqlite3.connect(readonly_uri(db), uri=True)) as src,
        contextlib.closing(sqlite3.connect(copy)) as dst,
    ):
        src.backup(dst)
    store = open_store(copy)
    try:
        snap = store.load()
    finally:
        store.close()
    assert data["orders"] == [order_view(r) for r in snap.orders if not r.done]
    assert snap.portfolio is not None
    now = st["now_ms"]
    marks = saved_marks(snap.meta)
    assert marks and set(marks) == set(snap.symbols)
    assert st == {
        **build_status(
            [snap.symbols[s] for s in sorted(snap.symbols)],
            snap.orders,
            snap.portfolio,
            marks=marks,
            now_ms=now,
            halted=snap.meta.get("halted", ""),
            entries_stopped=snap.meta.get("entries_stopped", ""),
            modes=decode_modes(snap.meta.get(MODES_META)),
        ),
        "marks_from": "saved",
    }


def test_the_reader_refuses_to_write_and_what_is_not_a_state_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no state database"):
        BookReader(tmp_path / "missing.db", tmp_path)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        c.execute("INSERT INTO meta VALUES ('app', 'someone-else')")
    with pytest.raises(StoreError, match="not an fsmtrader"):
        BookReader(other, tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is no database at all" * 100)
    with pytest.raises(StoreError):
        BookReader(junk, tmp_path)
    state = tmp_path / "state"
    finish(start_paper(tmp_path, state, 1.0))
    reader = BookReader(state / "fsmtrader.db", state)
    conn = reader._connection()
    for sql in ("DELETE FROM audit", "UPDATE meta SET value = 'x'", "CREATE TABLE t (x)"):
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute(sql)
    assert reader.last_audit_id() > 0
    reader.close()
