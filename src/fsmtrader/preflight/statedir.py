"""The paper session preflight measures, looked at without changing it: its kind read
from its meta, its two databases copied with SQLite's backup API (consistent even while a
bot writes them), and everything else done on the copy."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fsmtrader.config import Settings
from fsmtrader.errors import FsmTraderError, StoreError
from fsmtrader.exchange.simulated.rows import decode_markets
from fsmtrader.markets import MarketFilters
from fsmtrader.runner import sim_params
from fsmtrader.store.owner import held_owner
from fsmtrader.store.price_path import PRICE_PATH_FILE
from fsmtrader.store.schema import readonly_uri
from fsmtrader.store.sqlite import SqliteStore, store_path
from fsmtrader.store.statedir import SIM_FILE

__all__ = ["StateCopy", "copy_pair", "copy_state_dir"]

DB_FILE = "fsmtrader.db"


@dataclass
class StateCopy:
    """A paper session's state, copied into ``work`` (``fsmtrader.db`` and the simulated
    exchange); ``settings`` point there (the copy is always ``work/fsmtrader.db``)."""

    source: Path
    source_db: Path  # the session's own database (``database_url`` may put it elsewhere)
    work: Path
    kind: str
    meta: dict[str, str]
    filters: dict[str, MarketFilters]
    settings: Settings

    @property
    def price_path(self) -> Path:
        return self.source / PRICE_PATH_FILE

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def copy_state_dir(state_dir: Path, s: Settings) -> StateCopy:
    """The copy, or FsmTraderError in one line for a directory that is missing, is not a
    session's, or holds live books (preflight measures paper and observe sessions)."""
    if not state_dir.is_dir():
        raise FsmTraderError(f"--state-dir {state_dir}: no such directory")
    db = store_path(state_dir, s.database_url)
    if not db.is_file():
        raise FsmTraderError(f"--state-dir {state_dir}: no session here (no {db.name})")
    try:
        meta = SqliteStore.read_meta(db) or {}
    except StoreError as exc:
        raise FsmTraderError(f"--state-dir {state_dir}: {exc}") from None
    owner = held_owner(meta)
    if owner is None:
        raise FsmTraderError(f"--state-dir {state_dir}: no session has written this database")
    if owner.kind == "live":
        raise FsmTraderError(
            f"--state-dir {state_dir}: holds {owner.describe()}; preflight measures a paper "
            "or observe session (run `fsmtrader paper` or `fsmtrader trade` without --live)"
        )
    sim = state_dir / SIM_FILE
    if not sim.is_file():
        raise FsmTraderError(f"--state-dir {state_dir}: no simulated exchange ({SIM_FILE})")
    work = Path(tempfile.mkdtemp(prefix="fsmtrader-preflight-"))
    try:
        copy_pair(db, sim, work / DB_FILE, work / SIM_FILE)
        filters = sim_params(s).with_fees(_sim_markets(work / SIM_FILE))
        meta = SqliteStore.read_meta(work / DB_FILE) or meta  # the copy's, from one moment
    except (sqlite3.Error, OSError, ValueError, KeyError, StoreError) as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise FsmTraderError(
            f"--state-dir {state_dir}: cannot copy its databases ({exc})"
        ) from None
    if set(filters) != set(s.market.symbols):
        shutil.rmtree(work, ignore_errors=True)
        raise FsmTraderError(
            f"--state-dir {state_dir}: its session traded {', '.join(sorted(filters))}; "
            f"--config has market.symbols {', '.join(s.market.symbols)}: measure the session "
            "of this config"
        )
    settings = s.model_copy(update={"database_url": "", "state_dir": work})
    return StateCopy(state_dir, db, work, owner.kind, meta, filters, settings)


def copy_pair(db: Path, sim: Path, db_to: Path, sim_to: Path, *, tries: int = 100) -> None:
    """Copies of the books and the exchange from one moment: each with SQLite's backup API
    (read-only: no byte of either or of their side files changes), retried until neither
    file saw a commit while both were copied (a running bot writes both)."""
    conns = [sqlite3.connect(readonly_uri(p), uri=True, timeout=5.0) for p in (db, sim)]
    try:
        for _ in range(tries):
            before = [_version(c) for c in conns]
            for conn, to in zip(conns, (db_to, sim_to), strict=True):
                target = sqlite3.connect(to)
                try:
                    conn.backup(target)
                finally:
                    target.close()
            if [_version(c) for c in conns] == before:
                return
            time.sleep(0.02)
    finally:
        for c in conns:
            c.close()
    raise FsmTraderError(
        f"--state-dir {db.parent}: the bot commits faster than its books and exchange can be "
        "copied together; try again, or stop it first"
    )


def _version(conn: sqlite3.Connection) -> int:
    """Changes when another connection commits to the file."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _sim_markets(path: Path) -> dict[str, MarketFilters]:
    """The markets the simulated exchange was opened with (the session's filters)."""
    conn = sqlite3.connect(readonly_uri(path), uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'markets'").fetchone()
    finally:
        conn.close()
    if row is None:
        raise ValueError(f"{path.name} holds no markets")
    return decode_markets(json.loads(row[0]))
