"""Schema v2 (the router's): an order's ``unknown_since`` column becomes ``sent_ms``, the
start of its visibility window, which must survive a restart. A version-1 file written
before the change is migrated in place and its value kept (it is at or after the send,
so the router only waits longer)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from fsmtrader.store.schema import MIGRATIONS, SCHEMA_VERSION
from fsmtrader.store.sqlite import SqliteStore


def _version_1_file(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for ddl in MIGRATIONS[1]:
        conn.execute(ddl)
    conn.execute("INSERT INTO meta VALUES ('app', 'fsmtrader'), ('schema_version', '1')")
    intent = {
        "intent_id": "i-1", "decision_id": "BTCUSDT-1-entry", "symbol": "BTC/USDT",
        "side": "buy", "amount": "0.002", "limit_price": "50000", "ref_price": "50000",
        "max_slippage_bps": "15", "time_in_force": "IOC", "leg": 0, "created_ms": 1000,
        "reason": "", "budget": None,
    }  # fmt: skip
    conn.execute(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("i-1", "fsmi-1", "BTC/USDT", "buy", "BTCUSDT-1-entry", json.dumps(intent),
         "UNKNOWN", "", "50000", "0.002", "0", "0", "0", "100.1", 1, 1400, 1234, "lost",
         "[]", 0),
    )  # fmt: skip
    conn.close()


def test_a_version_1_file_is_migrated_and_keeps_the_time_as_sent_ms(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _version_1_file(path)
    store = SqliteStore(path)
    try:
        (rec,) = store.load().orders
    finally:
        store.close()
    assert rec.sent_ms == 1234
    assert SCHEMA_VERSION == 2
    conn = sqlite3.connect(path)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        columns = {r[1] for r in conn.execute("PRAGMA table_info(orders)")}
    finally:
        conn.close()
    assert meta == {"app": "fsmtrader", "schema_version": "2"}
    assert "sent_ms" in columns and "unknown_since" not in columns
