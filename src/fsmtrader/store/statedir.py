"""A state directory looked at before it is used: a path that is a file, a directory this
user cannot write, a damaged or foreign database or exchange file, or another session's
books are refused here, read-only, before the lock or any file is created, so a refusal
leaves every byte and every name in the directory as it was."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from fsmtrader.errors import StoreError
from fsmtrader.exchange.simulated.store import KIND as SIM_KIND
from fsmtrader.store.owner import Owner, claim
from fsmtrader.store.schema import inspect_readonly, readonly_uri
from fsmtrader.store.sqlite import SqliteStore

SIM_FILE = "sim-exchange.db"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def inspect_state_dir(state_dir: Path, db: Path, wanted: Owner) -> None:
    """Refuse (StoreError, one line) a state directory ``wanted`` may not use."""
    writable_dir(state_dir)
    if db.parent != state_dir:
        writable_dir(db.parent)
    if db.exists() or db.is_symlink():
        if not db.is_file():
            raise StoreError(f"{db}: not a regular file; the state database must be one")
        if not os.access(db, os.R_OK | os.W_OK):
            raise StoreError(f"{db}: not readable and writable by this user; fix its mode")
        inspect_readonly(db)
        claim(SqliteStore.read_meta(db) or {}, wanted, state_dir)
    sim = state_dir / SIM_FILE
    if wanted.kind != "live":
        sim_file_is_ours(sim)
    elif sim.exists():  # its books may be gone, the simulated exchange says whose it was
        raise StoreError(
            f"{state_dir}: holds a simulated exchange ({SIM_FILE}), so it is a paper "
            f"directory; this command asks for {wanted.describe()} — use another --state-dir"
        )


def writable_dir(path: Path) -> None:
    """``path`` is a directory this user can write, or one that can be created."""
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path}: is a file, not a directory; a state directory is needed")
    there = path
    while not there.exists():
        if there.parent == there:
            break
        there = there.parent
    if there != path and not there.is_dir():
        raise StoreError(f"{path}: cannot be created, {there} is a file")
    if not os.access(there, os.W_OK | os.X_OK):
        what = "" if there == path else f" (so {path} cannot be created)"
        raise StoreError(f"{there}: directory not writable by this user{what}")


def sim_file_is_ours(path: Path) -> None:
    """An existing simulated exchange file must be one (its markets are checked when it
    is opened); read without writing a byte, even of a foreign SQLite file."""
    if not path.exists():
        return
    if not path.is_file():
        raise StoreError(f"{path}: not a regular file; move it away")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the exchange file ({exc.strerror})") from None
    if not head:
        raise StoreError(f"{path}: is empty (0 bytes), not a simulated exchange; move it away")
    if head != _SQLITE_MAGIC:
        raise StoreError(f"{path}: not an SQLite file, not a simulated exchange; move it away")
    try:
        conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=2.0)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'kind'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        row = None
    if row is None or row[0] != SIM_KIND:
        raise StoreError(f"{path}: an SQLite file but not a simulated exchange; move it away")
