"""The SQLite store: each commit's changes saved in one transaction, and everything
loaded back on start.

It takes values (a ``StateDelta``) and gives values (a ``Snapshot``): it knows the state
model, never the engine or the router. Tables are plain rows (Decimals as exact text), one
per symbol, intent, fill, position, trade and audit record, so the file can be read with
the sqlite3 shell and jq.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import NoReturn

from fsmtrader.audit import dumps
from fsmtrader.errors import CommitFailed, ConfigError, StoreError
from fsmtrader.portfolio import ClosedTrade, Portfolio
from fsmtrader.state.delta import Snapshot, StateDelta
from fsmtrader.state.fill import FILL_COLUMNS, BookedFill
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import Record
from fsmtrader.state.symbol import SymbolState
from fsmtrader.store.codec import (
    GHOST,
    ORDER,
    POSITION,
    SYMBOL,
    SYMBOL_COLUMNS,
    TRADE,
    HistoryText,
    fill_row,
    history_from,
)
from fsmtrader.store.schema import connect, readonly_uri

# Errors of the statement itself, not of the file: they propagate as they are.
_NOT_THE_DISK = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)
Committed = Callable[[list[tuple[int, Record]]], None]


def _upsert(table: str, columns: Sequence[str], key: str) -> str:
    """An in-place upsert: ``INSERT OR REPLACE`` would delete and re-insert the row (and
    touch its indexes), which costs a third of a commit."""
    sets = ", ".join(f"{c}=excluded.{c}" for c in columns if c != key)
    marks = ", ".join("?" * len(columns))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT({key}) DO UPDATE SET {sets}"
    )


def _insert(table: str, columns: Sequence[str], verb: str = "INSERT") -> str:
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _select(table: str, columns: Sequence[str], order: str = "") -> str:
    return f"SELECT {', '.join(columns)} FROM {table}" + (f" ORDER BY {order}" if order else "")


_UPSERT_SYMBOL = _upsert("symbol_state", SYMBOL_COLUMNS, "symbol")
_UPSERT_ORDER = _upsert("orders", ORDER.columns, "intent_id")
_INSERT_FILL = _insert("fills", FILL_COLUMNS, "INSERT OR IGNORE")
_INSERT_POSITION = _insert("positions", POSITION.columns)
_INSERT_TRADE = _insert("trades", TRADE.columns)
_INSERT_GHOST = _insert("ghosts", GHOST.columns)
_INSERT_AUDIT = "INSERT INTO audit(ts, kind, symbol, record) VALUES (?, ?, ?, ?)"
_SET_META = "INSERT OR REPLACE INTO engine_meta(key, value) VALUES (?, ?)"


class SqliteStore:
    def __init__(self, path: Path, *, synchronous: str = "NORMAL", create: bool = True) -> None:
        self.path = path
        self.conn = connect(path, create=create, synchronous=synchronous)
        self.on_committed: list[Committed] = []
        self._history = HistoryText()
        self.commits = 0
        self.broken = ""  # why a write failed: the store then refuses every other one

    @staticmethod
    def read_meta(path: Path) -> dict[str, str] | None:
        """The engine's saved meta (session kind, venue, halt, counters), read without
        locking or changing anything; None when there is no database at ``path``."""
        if not path.exists():
            return None
        try:
            conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=2.0)
            try:
                return dict(conn.execute("SELECT key, value FROM engine_meta").fetchall())
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot read the state database ({exc})") from None

    def close(self) -> None:
        self.conn.close()

    # --- writing ------------------------------------------------------------------------
    def save(self, delta: StateDelta) -> None:
        """Write one commit's changes in ONE transaction (nothing when nothing changed).
        A failed write (disk full, I/O error) raises CommitFailed, and so does every
        later one: the caller's memory is ahead of the file, which a restart puts right."""
        if delta.empty():
            return
        self._writable()
        records = delta.audit
        try:
            ids = self._write(delta)
        except _NOT_THE_DISK:
            raise  # our own rows broke a constraint: a bug, and nothing was written
        except sqlite3.DatabaseError as exc:
            self._fail(f"{self.path}: commit failed ({exc})")
        self.commits += 1
        if self.on_committed and records:
            batch = [(int(i or 0), r) for i, r in zip(ids, records, strict=True)]
            try:
                for fn in self.on_committed:
                    fn(batch)
            except BaseException as exc:  # committed, but the caller will not mark it
                self.broken = str(exc) or type(exc).__name__
                raise

    def _write(self, delta: StateDelta) -> list[int | None]:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            history = self._history.encode
            for st in delta.symbols:
                row = SYMBOL.encode(st)
                row.append(history(st))
                c.execute(_UPSERT_SYMBOL, row)
            for rec in delta.orders:
                c.execute(_UPSERT_ORDER, ORDER.encode(rec))
            if delta.portfolio is not None:
                self._save_portfolio(delta.portfolio)
            if delta.trades:
                c.executemany(_INSERT_TRADE, [TRADE.encode(t) for t in delta.trades])
            if delta.ghosts:
                c.executemany(_INSERT_GHOST, [GHOST.encode(g) for g in delta.ghosts])
            if delta.fills:
                c.executemany(_INSERT_FILL, [fill_row(f) for f in delta.fills])
            ids = [
                c.execute(_INSERT_AUDIT, (r["ts"], r["kind"], r.get("symbol"), dumps(r))).lastrowid
                for r in delta.audit
            ]
            if delta.meta:
                c.executemany(_SET_META, list(delta.meta.items()))
            c.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # a failed COMMIT may have ended it
                c.execute("ROLLBACK")
            raise
        return ids

    def _writable(self) -> None:
        if self.broken:
            raise CommitFailed(self.broken)

    def _fail(self, why: str) -> NoReturn:
        self.broken = why
        raise CommitFailed(why) from None

    def _save_portfolio(self, pf: Portfolio) -> None:
        c = self.conn
        c.execute(
            "INSERT OR REPLACE INTO portfolio(id, quote, cash, fees_paid, realized_pnl)"
            " VALUES (1, ?, ?, ?, ?)",
            (pf.quote, str(pf.cash), str(pf.fees_paid), str(pf.realized_pnl)),
        )
        c.execute("DELETE FROM reservations")
        c.executemany(
            "INSERT INTO reservations(intent_id, amount) VALUES (?, ?)",
            [(k, str(v)) for k, v in pf.reserved.items()],
        )
        c.execute("DELETE FROM positions")
        c.executemany(_INSERT_POSITION, [POSITION.encode(p) for p in pf.positions.values()])
        c.execute("DELETE FROM dust")
        c.executemany(
            "INSERT INTO dust(symbol, qty) VALUES (?, ?)", [(k, str(v)) for k, v in pf.dust.items()]
        )

    def set_meta(self, key: str, value: str) -> None:
        self._writable()
        try:
            self.conn.execute(_SET_META, (key, value))
        except _NOT_THE_DISK:
            raise
        except sqlite3.DatabaseError as exc:
            self._fail(f"{self.path}: writing {key} failed ({exc})")

    # --- reading ------------------------------------------------------------------------
    def load(self) -> Snapshot:
        return load_snapshot(self.conn)

    def last_audit_id(self) -> int:
        row = self.conn.execute("SELECT MAX(id) FROM audit").fetchone()
        return int(row[0] or 0)

    def audit_since(self, after_id: int) -> list[tuple[int, str]]:
        return list(
            self.conn.execute("SELECT id, record FROM audit WHERE id > ? ORDER BY id", (after_id,))
        )

    def fills(self) -> list[BookedFill]:
        return [BookedFill(*r) for r in self.conn.execute(_select("fills", FILL_COLUMNS))]


# --- reading rows back (module level: a read-only connection uses them too) -----------
_OPEN = "state NOT IN ('RECONCILED', 'FAILED_FINAL')"  # the orders_open index's condition


def load_snapshot(conn: sqlite3.Connection) -> Snapshot:
    """Everything a start restores, decoded by the entities' codecs."""
    snap = Snapshot()
    snap.meta = read_meta_rows(conn)
    snap.symbols = read_symbols(conn)
    snap.orders = read_orders(conn)
    snap.portfolio = read_portfolio(conn)
    return snap


def read_meta_rows(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM engine_meta").fetchall())


def read_symbols(conn: sqlite3.Connection) -> dict[str, SymbolState]:
    out = {}
    for row in conn.execute(_select("symbol_state", SYMBOL_COLUMNS)):
        st = SYMBOL.decode(row[:-1], history=history_from(row[-1]))
        out[st.symbol] = st
    return out


def read_orders(conn: sqlite3.Connection, *, open_only: bool = False) -> list[OrderRecord]:
    """Every order in the order they were made; ``open_only``: the non-terminal ones."""
    sql = _select("orders", ORDER.columns)
    sql += f" WHERE {_OPEN} ORDER BY rowid" if open_only else " ORDER BY rowid"
    return [ORDER.decode(r) for r in conn.execute(sql)]


def read_portfolio(conn: sqlite3.Connection, *, history: bool = True) -> Portfolio | None:
    """The portfolio as saved; ``history=False`` leaves its closed trades and ghosts out
    (a status read needs the money and the positions, not every trade so far)."""
    prow = conn.execute("SELECT quote, cash, fees_paid, realized_pnl FROM portfolio").fetchone()
    if prow is None:
        return None
    D = Decimal
    pf = Portfolio(quote=prow[0], cash=D(prow[1]), fees_paid=D(prow[2]), realized_pnl=D(prow[3]))
    pf.reserved = {k: D(v) for k, v in conn.execute("SELECT intent_id, amount FROM reservations")}
    positions = [POSITION.decode(r) for r in conn.execute(_select("positions", POSITION.columns))]
    pf.positions = {p.symbol: p for p in positions}
    pf.dust = {k: D(v) for k, v in conn.execute("SELECT symbol, qty FROM dust")}
    if history:
        pf.trades = [t for _, t in read_trades(conn)]
        pf.ghosts = [GHOST.decode(r) for r in conn.execute(_select("ghosts", GHOST.columns, "id"))]
    return pf


def read_trades(
    conn: sqlite3.Connection,
    *,
    symbol: str | None = None,
    since_ms: int | None = None,
    last: int | None = None,
) -> list[tuple[int, ClosedTrade]]:
    """(id, trade) in the order they closed; filtered by ``symbol`` and exit time
    ``>= since_ms``; ``last``: only the latest that many."""
    where: list[str] = []
    args: list[str | int] = []
    if symbol is not None:
        where.append("symbol = ?")
        args.append(symbol)
    if since_ms is not None:
        where.append("exit_ms >= ?")
        args.append(since_ms)
    sql = f"SELECT id, {', '.join(TRADE.columns)} FROM trades"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?" if last is not None else " ORDER BY id"
    rows = conn.execute(sql, (*args, last) if last is not None else args).fetchall()
    if last is not None:
        rows.reverse()
    return [(r[0], TRADE.decode(r[1:])) for r in rows]


def store_path(state_dir: Path, database_url: str) -> Path:
    """``sqlite:///path`` or empty (a file in the state directory)."""
    if not database_url:
        return state_dir / "fsmtrader.db"
    if database_url.startswith("sqlite:///"):
        return Path(database_url[len("sqlite:///") :])
    scheme = database_url.split(":", 1)[0]
    raise ConfigError(
        f"database_url: scheme {scheme!r} is not supported by this version "
        "(allowed: empty for state_dir/fsmtrader.db, or sqlite:///PATH)"
    )


def open_store(path: Path, *, synchronous: str = "NORMAL") -> SqliteStore:
    try:
        return SqliteStore(path, synchronous=synchronous)
    except sqlite3.Error as exc:  # anything connect() did not already explain
        raise StoreError(f"{path}: {exc}") from None
