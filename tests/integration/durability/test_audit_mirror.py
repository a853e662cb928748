"""audit.jsonl never runs ahead of the database. Audit ids are the audit table's rowids,
assigned inside each commit; the JSONL line is written after the commit, unsynced. Under
``synchronous=NORMAL`` a commit lives in the WAL until a checkpoint, so a power cut can
take the database's last commits while the file keeps their lines: the next commits would
reuse those ids. A start cuts the file back to the database (the cut lines are kept aside).

The lost WAL tail is real: the database file is copied without its -wal while a session
runs (what is left on disk when the WAL's unsynced frames vanish), next to the JSONL the
session had written by then."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from fsmtrader.config import Settings, load_settings
from fsmtrader.session import PaperSession
from fsmtrader_testing.paper import session_toml

pytestmark = pytest.mark.timeout(120)


def ids_in(path: Path) -> list[int]:
    return [int(json.loads(line)["audit_id"]) for line in path.read_text().splitlines()]


def db_audit(db: Path) -> list[tuple[int, dict[str, object]]]:
    with closing(sqlite3.connect(db)) as c:
        return [
            (i, json.loads(r)) for i, r in c.execute("SELECT id, record FROM audit ORDER BY id")
        ]


def session(s: Settings, state: Path) -> PaperSession:
    return PaperSession(s, state, hours=48, speed=1800)


def test_a_lost_wal_tail_cuts_the_audit_mirror_back_and_no_id_is_reused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(session_toml(seed=4))
    s = load_settings(cfg, env={})
    state, cut = tmp_path / "state", tmp_path / "after-power-cut"

    first = session(s, state)
    first.start()
    first.run(stop_after_s=0.4)
    first.close()  # checkpointed: the database file holds all of it
    second = session(s, state)
    second.start()
    for _ in range(50):  # until the WAL holds commits the database file has not got
        second.run(stop_after_s=0.2)
        # the power cut: the database file without its WAL, the JSONL as the OS wrote it
        shutil.copytree(state, cut, ignore=shutil.ignore_patterns("*-wal", "*-shm", "*.lock"))
        db_last = max((i for i, _ in db_audit(cut / "fsmtrader.db")), default=0)
        if ids_in(cut / "audit.jsonl")[-1] > db_last:
            break  # the file ran ahead of what the database kept
        shutil.rmtree(cut)
    second.close()
    ahead = [
        line
        for line in (cut / "audit.jsonl").read_text().splitlines(keepends=True)
        if json.loads(line)["audit_id"] > db_last
    ]
    assert ahead

    third = session(s, cut)
    assert ids_in(cut / "audit.jsonl")[-1] == db_last  # cut back before any new commit
    assert (cut / "audit.jsonl.beyond-db").read_text() == "".join(ahead)
    third.start()
    third.run(stop_after_s=0.4)
    third.close()

    ids = ids_in(cut / "audit.jsonl")
    assert ids == sorted(set(ids)) and ids[-1] > db_last  # unique, and it traded on
    mirror = [
        (int(rec.pop("audit_id")), rec)
        for rec in map(json.loads, (cut / "audit.jsonl").read_text().splitlines())
    ]
    assert mirror == db_audit(cut / "fsmtrader.db")  # line for line the database's


def test_a_torn_last_line_is_cut_and_the_rest_rewritten_from_the_database(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(session_toml(seed=4))
    s = load_settings(cfg, env={})
    state = tmp_path / "state"
    first = session(s, state)
    first.start()
    first.run(stop_after_s=0.3)
    first.close()
    path = state / "audit.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) > 3
    path.write_text("".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2])  # a crash mid-line
    again = session(s, state)
    again.close()
    assert path.read_text() == "".join(lines)
