"""The simulated exchange's own durable record: one SQLite file per exchange.

Why: the crash-safety harness SIGKILLs a paper-trading bot at random moments and restarts
it; the exchange it reconnects to must be exactly as it was after its last completed call
(and the harness compares the bot's database with this file). So the :class:`SimExchange`
writes through to a :class:`SimStore`: every state-changing call commits only what it
changed, in ONE transaction, before it returns. A kill at any instant leaves the file at
the state after the last committed call or before it, never half of one.

Durability: WAL with ``synchronous=NORMAL``. A commit is atomic always and survives the
death of the process (the WAL frames are in the OS cache); only a power cut can roll back
the last few commits, and still never tears one.

The store knows rows and JSON, not the exchange's internals: :mod:`.persistence` converts
the exchange's orders and books to the shapes of :mod:`.rows`, so the store has no import
of the exchange.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from fsmtrader.exchange.simulated.rows import (
    SCHEMA,
    Changes,
    StoredState,
    decode_markets,
    encode_markets,
    read_state,
    same_market,
    write,
)
from fsmtrader.markets import MarketFilters

KIND: Final = "fsmtrader-sim-exchange"
# 2: client ids may repeat (Binance reuses them once the earlier order is over) and the
# venue profile is recorded. 3: stop-limit orders (stop_price, triggered).
SCHEMA_VERSION: Final = 3
# How a file of an older version becomes the current one (in one transaction, on open):
# a version-2 file holds no stop orders, so its orders gain the columns, empty.
_MIGRATIONS: Final = {
    "2": (
        "ALTER TABLE orders ADD COLUMN stop_price TEXT",
        "ALTER TABLE orders ADD COLUMN triggered INTEGER NOT NULL DEFAULT 0"
        " CHECK (triggered IN (0, 1))",
    ),
}
_MAGIC: Final = b"SQLite format 3\x00"


class SimStore:
    """One open exchange file. Not thread-safe and meant for one writer at a time (the
    exchange that opened it); other processes may read it."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._broken: BaseException | None = None

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        markets: Mapping[str, MarketFilters],
        params: Mapping[str, Decimal],
        venue: Mapping[str, str],
        seed: int,
        balances: Mapping[str, Decimal],
        initial: Changes,
    ) -> tuple[SimStore, StoredState | None]:
        """Open ``path``, creating it with ``initial`` when it does not exist.

        Returns the store and, for an existing file, its complete state (None for a file
        just created: the caller's fresh state *is* the file's). An existing file must be
        ours (else ValueError, file untouched) and hold the same markets, parameters and
        venue profile.
        """
        if not path.exists():
            created = _create(path, markets, params, venue, seed, balances, initial)
            if created:
                return cls(path, _connect_rw(path)), None
            # Lost a creation race: someone else's file is now at path; load it.
        version = _check_ours(path, markets, params, venue)
        store = cls(path, _connect_rw(path))
        if version != str(SCHEMA_VERSION):
            store._migrate(version)
        try:
            state = store._load()
        except BaseException:
            store.close()
            raise
        return store, state

    def _migrate(self, version: str) -> None:
        """Bring a file of an older version (checked ours by ``_check_ours``) up to this
        one, all or nothing: a crash midway leaves the old version, migrated next time."""
        conn = self._live()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.close()
            raise

    def _load(self) -> StoredState:
        conn = self._live()
        try:
            conn.execute("BEGIN")  # one snapshot, even if another process writes
            try:
                return read_state(conn)
            finally:
                conn.execute("COMMIT")
        except (
            sqlite3.DatabaseError,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
            InvalidOperation,  # a Decimal column that is not a number
        ) as e:
            raise ValueError(f"{self.path}: corrupt sim exchange file: {e!r}") from e

    # ------------------------------------------------------------------ writing

    def commit(self, changes: Changes) -> None:
        """Write ``changes`` in one transaction. If that fails the in-memory exchange is
        ahead of its file, so the store refuses every later write: reopen the file."""
        conn = self._live()
        try:
            conn.execute("BEGIN IMMEDIATE")
            write(conn, changes)
            conn.execute("COMMIT")
        except BaseException as e:
            self._broken = e
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def check_writable(self) -> None:
        """Raise RuntimeError if a write can no longer be made durable."""
        self._live()

    @property
    def closed(self) -> bool:
        return self._conn is None

    @property
    def broken(self) -> bool:
        """Whether a commit failed, leaving the file behind the exchange in memory."""
        return self._broken is not None

    def close(self) -> None:
        """Close the connection (the last one checkpoints the WAL). Idempotent."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"sim exchange file {self.path} is closed")
        if self._broken is not None:
            raise RuntimeError(
                f"sim exchange file {self.path}: a commit failed ({self._broken!r}); "
                "the exchange in memory is ahead of its file, reopen it"
            )
        return self._conn


# ---------------------------------------------------------------------- file handling


def _create(
    path: Path,
    markets: Mapping[str, MarketFilters],
    params: Mapping[str, Decimal],
    venue: Mapping[str, str],
    seed: int,
    balances: Mapping[str, Decimal],
    initial: Changes,
) -> bool:
    """Build the complete initial file under a temporary name, then link it into place,
    so ``path`` is either absent or whole. False if someone else created ``path`` first."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".creating", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            # Nobody sees the temporary file until it is complete: no need for the DDL to
            # share the data's transaction.
            conn.executescript(SCHEMA)
            conn.execute("BEGIN")
            meta = {
                "kind": KIND,
                "schema_version": str(SCHEMA_VERSION),
                "markets": json.dumps(encode_markets(markets)),
                "params": json.dumps({k: str(v) for k, v in params.items()}),
                "venue": json.dumps(dict(venue)),
                "seed": str(seed),
                "initial_balances": json.dumps({a: str(v) for a, v in balances.items()}),
            }
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            write(conn, initial)
            conn.execute("COMMIT")  # rollback journal, synchronous=FULL: on disk now
        finally:
            conn.close()
        try:
            os.link(tmp, path)  # atomic, and fails rather than replace a file
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links
            os.replace(tmp, path)
        _fsync_dir(path.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not possible on every platform; best effort
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _connect_rw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OSError(f"{path}: cannot use WAL journal mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _check_ours(
    path: Path,
    markets: Mapping[str, MarketFilters],
    params: Mapping[str, Decimal],
    venue: Mapping[str, str],
) -> str:
    """Refuse, without writing a byte of it, a file that is not an exchange file of ours
    or that belongs to other markets or other exchange parameters; returns its schema
    version (this one, or one ``_MIGRATIONS`` brings up to it)."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_MAGIC))
    except OSError as e:
        raise ValueError(f"{path}: cannot read sim exchange file: {e}") from e
    if head != _MAGIC:
        raise ValueError(f"{path} is not an fsmtrader sim exchange file (not SQLite)")
    meta = _read_meta(path)
    if meta.get("kind") != KIND:
        raise ValueError(f"{path} is an SQLite file but not an fsmtrader sim exchange file")
    version = meta.get("schema_version", "")
    if version != str(SCHEMA_VERSION) and version not in _MIGRATIONS:
        raise ValueError(
            f"{path}: sim exchange schema version {meta.get('schema_version')!r}, "
            f"this code reads {SCHEMA_VERSION}"
        )
    try:
        stored_markets = decode_markets(json.loads(meta["markets"]))
        stored_params = {k: Decimal(v) for k, v in json.loads(meta["params"]).items()}
        stored_venue = {str(k): str(v) for k, v in json.loads(meta["venue"]).items()}
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as e:
        raise ValueError(f"{path}: corrupt sim exchange metadata: {e!r}") from e
    if set(stored_markets) != set(markets):
        raise ValueError(
            f"{path} belongs to markets {sorted(stored_markets)}, "
            f"not {sorted(markets)}: refusing to reuse it"
        )
    for symbol, m in markets.items():
        if not same_market(stored_markets[symbol], m):
            raise ValueError(
                f"{path}: market {symbol} is {stored_markets[symbol]} in the file, "
                f"{m} here: refusing to reuse it"
            )
    differ = sorted(
        k for k in set(stored_params) | set(params) if stored_params.get(k) != params.get(k)
    )
    if differ:
        detail = ", ".join(f"{k}: file {stored_params.get(k)} vs {params.get(k)}" for k in differ)
        raise ValueError(f"{path}: exchange parameters differ ({detail}): refusing to reuse it")
    _check_venue(path, stored_venue, venue)
    return version


def _read_meta(path: Path) -> dict[str, str]:
    """The file's meta table (empty when it has none), read without writing a byte."""
    meta: dict[str, str] = {}
    try:
        # Read-only: never checkpoints, never changes the journal mode of a foreign file.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            if has_meta:
                meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise ValueError(f"{path}: not a readable fsmtrader sim exchange file: {e}") from e
    return meta


def _check_venue(path: Path, stored: Mapping[str, str], given: Mapping[str, str]) -> None:
    """A file made under one venue's rules (client ids, lag, fee asset) holds orders
    and balances those rules produced: refuse to continue it under others."""
    differ = sorted(k for k in set(stored) | set(given) if stored.get(k) != given.get(k))
    if differ:
        detail = ", ".join(f"{k}: file {stored.get(k)} vs {given.get(k)}" for k in differ)
        raise ValueError(f"{path}: venue profile differs ({detail}): refusing to reuse it")
