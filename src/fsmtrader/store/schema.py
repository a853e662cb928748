"""The database's schema, its version, explicit migrations, and the checks made before
any write: a corrupt, foreign, newer or locked file is refused and never modified."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fsmtrader.errors import StoreError

APP = "fsmtrader"
SCHEMA_VERSION = 1


# Each migration takes the database from version i-1 to i. Version 1 is the first schema.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE symbol_state (
            symbol TEXT PRIMARY KEY, phase TEXT NOT NULL, entered_ms INTEGER NOT NULL,
            seq INTEGER NOT NULL, decision_id TEXT NOT NULL, step INTEGER NOT NULL,
            exit_reason TEXT NOT NULL, error_count INTEGER NOT NULL, last_error TEXT NOT NULL,
            entry_block_until INTEGER NOT NULL, exit_block_until INTEGER NOT NULL,
            active_intent TEXT, entry_ref TEXT, exit_ref TEXT,
            buy_leg INTEGER NOT NULL, sell_leg INTEGER NOT NULL,
            exit_peak REAL, exit_trail_active INTEGER NOT NULL, history TEXT NOT NULL)""",
        """CREATE TABLE orders (
            intent_id TEXT PRIMARY KEY, client_order_id TEXT NOT NULL UNIQUE,
            symbol TEXT NOT NULL, side TEXT NOT NULL, decision_id TEXT NOT NULL,
            intent TEXT NOT NULL, state TEXT NOT NULL, order_id TEXT NOT NULL,
            price TEXT, amount TEXT NOT NULL, filled TEXT NOT NULL, cost TEXT NOT NULL,
            fee_quote TEXT NOT NULL, reserved TEXT NOT NULL, attempts INTEGER NOT NULL,
            due_ms INTEGER, unknown_since INTEGER, reason TEXT NOT NULL,
            seen_trades TEXT NOT NULL, cancel_requested INTEGER NOT NULL)""",
        "CREATE INDEX orders_open ON orders(state) WHERE state NOT IN"
        " ('RECONCILED', 'FAILED_FINAL')",
        """CREATE TABLE fills (
            intent_id TEXT NOT NULL, trade_id TEXT NOT NULL, symbol TEXT NOT NULL,
            side TEXT NOT NULL, price TEXT NOT NULL, amount TEXT NOT NULL, fee TEXT NOT NULL,
            fee_currency TEXT NOT NULL, ts INTEGER NOT NULL, decision_id TEXT NOT NULL,
            PRIMARY KEY (intent_id, trade_id))""",
        """CREATE TABLE portfolio (
            id INTEGER PRIMARY KEY CHECK (id = 1), quote TEXT NOT NULL, cash TEXT NOT NULL,
            fees_paid TEXT NOT NULL, realized_pnl TEXT NOT NULL)""",
        "CREATE TABLE reservations (intent_id TEXT PRIMARY KEY, amount TEXT NOT NULL)",
        """CREATE TABLE positions (
            symbol TEXT PRIMARY KEY, decision_id TEXT NOT NULL, entry_ms INTEGER NOT NULL,
            qty TEXT NOT NULL, bought_qty TEXT NOT NULL, buy_cost TEXT NOT NULL,
            buy_fees TEXT NOT NULL, buy_fee_cash TEXT NOT NULL, sold_qty TEXT NOT NULL,
            sell_gross TEXT NOT NULL,
            sell_fees TEXT NOT NULL, sell_locked TEXT NOT NULL, sell_legs INTEGER NOT NULL)""",
        """CREATE TABLE trades (
            id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, decision_id TEXT NOT NULL,
            entry_ms INTEGER NOT NULL, exit_ms INTEGER NOT NULL, bought_qty TEXT NOT NULL,
            sold_qty TEXT NOT NULL, avg_entry TEXT NOT NULL, avg_exit TEXT NOT NULL,
            buy_fees TEXT NOT NULL, sell_fees TEXT NOT NULL, sell_legs INTEGER NOT NULL,
            dust_qty TEXT NOT NULL, realized_pnl TEXT NOT NULL, exit_reason TEXT NOT NULL)""",
        """CREATE TABLE ghosts (
            id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, symbol TEXT NOT NULL,
            side TEXT NOT NULL, intent_id TEXT NOT NULL, decision_id TEXT NOT NULL,
            reason TEXT NOT NULL)""",
        "CREATE TABLE dust (symbol TEXT PRIMARY KEY, qty TEXT NOT NULL)",
        "CREATE TABLE engine_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL,
            symbol TEXT, record TEXT NOT NULL)""",
    ],
}


def connect(path: Path, *, create: bool, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open the state database, refusing anything that is not ours, then migrate."""
    exists = path.exists()
    if not exists and not create:
        raise StoreError(f"{path}: no state database here")
    if exists:
        _inspect_readonly(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=2.0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        _migrate(conn, path)
        conn.execute("BEGIN IMMEDIATE")  # can we write? (another writer holds it: refuse now)
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        conn.close()
        raise StoreError(_explain(path, exc)) from None
    return conn


def _inspect_readonly(path: Path) -> None:
    """Look at an existing file without being able to change it."""
    try:
        ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error as exc:
        raise StoreError(_explain(path, exc)) from None
    try:
        tables = {r[0] for r in ro.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return  # an empty SQLite file: safe to initialise
        if "meta" not in tables:
            raise StoreError(
                f"{path}: not an fsmtrader database (it has tables {sorted(tables)[:5]}); "
                "refusing to touch it — point database_url / state_dir elsewhere"
            )
        meta = dict(ro.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("app") != APP:
            raise StoreError(f"{path}: belongs to {meta.get('app')!r}, not fsmtrader; refusing")
        version = int(meta.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path}: schema version {version} is newer than this fsmtrader supports "
                f"({SCHEMA_VERSION}); upgrade fsmtrader — the file was left untouched"
            )
        check = ro.execute("PRAGMA quick_check").fetchone()
        if not check or check[0] != "ok":
            raise StoreError(
                f"{path}: database is damaged ({check[0] if check else '?'}); "
                "restore a backup — the file was left untouched"
            )
    except sqlite3.DatabaseError as exc:
        raise StoreError(_explain(path, exc)) from None
    finally:
        ro.close()


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    have = conn.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone()
    version = 0
    if have:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 0
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for ddl in MIGRATIONS[target]:
                conn.execute(ddl)
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('app', ?), ('schema_version', ?)",
                (APP, str(target)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _explain(path: Path, exc: Exception) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"{path}: database is locked by another process ({text}); is another bot running?"
    if "not a database" in text or "malformed" in text or "encrypted" in text:
        return f"{path}: not a readable SQLite database ({text}); the file was left untouched"
    return f"{path}: cannot open state database ({text})"
