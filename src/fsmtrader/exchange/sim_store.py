"""The simulated exchange's own durable record: one SQLite file per exchange.

Why: the crash-safety harness SIGKILLs a paper-trading bot at random moments and restarts
it; the exchange it reconnects to must be exactly as it was after its last completed call
(and the harness compares the bot's database with this file). So :class:`SimExchange`
writes through to a :class:`SimStore`: every state-changing call commits only what it
changed, in ONE transaction, before it returns. A kill at any instant leaves the file at
the state after the last committed call or before it, never half of one.

Durability: WAL with ``synchronous=NORMAL``. A commit is atomic always and survives the
death of the process (the WAL frames are in the OS cache); only a power cut can roll back
the last few commits, and still never tears one.

The store knows rows and JSON, not the exchange's internals: :mod:`simulated` converts
its orders and books to the shapes here, so this module has no import cycle with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, NamedTuple, cast

from fsmtrader.exchange.types import OrderStatus, OrderType, Side, TimeInForce, TradeInfo
from fsmtrader.markets import MarketFilters

KIND: Final = "fsmtrader-sim-exchange"
SCHEMA_VERSION: Final = 1
_MAGIC: Final = b"SQLite format 3\x00"

# (ts_ms, price, high, low, volume): the last bar the driver fed for a symbol.
Bar = tuple[int, float, float, float, float]

_SCHEMA: Final = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE wallets (
    asset TEXT PRIMARY KEY,
    free TEXT NOT NULL,
    used TEXT NOT NULL
);
CREATE TABLE orders (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type TEXT NOT NULL CHECK (order_type IN ('limit', 'market')),
    price TEXT NOT NULL,
    amount TEXT NOT NULL,
    time_in_force TEXT NOT NULL CHECK (time_in_force IN ('IOC', 'GTC')),
    timestamp INTEGER NOT NULL,
    lock_asset TEXT NOT NULL,
    lock_remaining TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'canceled', 'rejected')),
    filled TEXT NOT NULL,
    cost TEXT NOT NULL,
    fee TEXT NOT NULL,
    fee_currency TEXT NOT NULL
);
CREATE TABLE trades (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL REFERENCES orders (id),
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    price TEXT NOT NULL,
    amount TEXT NOT NULL,
    fee TEXT NOT NULL,
    fee_currency TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    maker INTEGER NOT NULL
);
CREATE INDEX trades_by_order ON trades (order_id);
-- Last bar per symbol, and that bar's synthetic book when its depth was drawn.
CREATE TABLE market_state (symbol TEXT PRIMARY KEY, bar TEXT NOT NULL, book TEXT);
-- JSON blobs: 'core' (id counters, run counters, pending cancel races), 'rng'.
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_UPSERT_WALLET: Final = (
    "INSERT INTO wallets (asset, free, used) VALUES (?, ?, ?) "
    "ON CONFLICT (asset) DO UPDATE SET free = excluded.free, used = excluded.used"
)
_UPSERT_ORDER: Final = (
    "INSERT INTO orders (seq, id, client_order_id, symbol, side, order_type, price, amount,"
    " time_in_force, timestamp, lock_asset, lock_remaining, status, filled, cost, fee,"
    " fee_currency) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (seq) DO UPDATE SET lock_remaining = excluded.lock_remaining,"
    " status = excluded.status, filled = excluded.filled, cost = excluded.cost,"
    " fee = excluded.fee"
)
_INSERT_TRADE: Final = (
    "INSERT INTO trades (seq, id, order_id, client_order_id, symbol, side, price, amount,"
    " fee, fee_currency, timestamp, maker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_MARKET: Final = (
    "INSERT INTO market_state (symbol, bar, book) VALUES (?, ?, ?) "
    "ON CONFLICT (symbol) DO UPDATE SET bar = excluded.bar, book = excluded.book"
)
_UPSERT_STATE: Final = (
    "INSERT INTO state (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)

_FILTER_FIELDS: Final = ("tick_size", "step_size", "min_qty", "min_notional")


class OrderRow(NamedTuple):
    """An order's columns: everything the exchange's ``_Order`` holds except its trades
    (those are rows of ``trades``, linked by ``order_id``)."""

    seq: int
    id: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    price: Decimal
    amount: Decimal
    time_in_force: TimeInForce
    timestamp: int
    lock_asset: str
    lock_remaining: Decimal
    status: OrderStatus
    filled: Decimal
    cost: Decimal
    fee: Decimal
    fee_currency: str


@dataclass(slots=True)
class Changes:
    """What one exchange call changed; written in one transaction by :meth:`SimStore.commit`.

    ``trades`` are (seq, trade) with seq the trade's 1-based position in the exchange's
    trade list; ``markets`` are (symbol, bar, book JSON or None); ``rng`` is
    ``random.getstate()`` when the generator advanced, else None."""

    core: dict[str, Any]
    wallets: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    trades: list[tuple[int, TradeInfo]] = field(default_factory=list)
    markets: list[tuple[str, Bar, dict[str, Any] | None]] = field(default_factory=list)
    rng: tuple[Any, ...] | None = None


@dataclass(slots=True)
class StoredState:
    """The complete state read back from a file, in creation order everywhere."""

    wallets: dict[str, tuple[Decimal, Decimal]]
    orders: list[OrderRow]
    trades: list[TradeInfo]
    markets: dict[str, tuple[Bar, dict[str, Any] | None]]
    core: dict[str, Any]
    rng: tuple[Any, ...]


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
        seed: int,
        balances: Mapping[str, Decimal],
        initial: Changes,
    ) -> tuple[SimStore, StoredState | None]:
        """Open ``path``, creating it with ``initial`` when it does not exist.

        Returns the store and, for an existing file, its complete state (None for a file
        just created: the caller's fresh state *is* the file's). An existing file must be
        ours (else ValueError, file untouched) and hold the same markets and parameters.
        """
        if not path.exists():
            created = _create(path, markets, params, seed, balances, initial)
            if created:
                return cls(path, _connect_rw(path)), None
            # Lost a creation race: someone else's file is now at path; load it.
        _check_ours(path, markets, params)
        store = cls(path, _connect_rw(path))
        try:
            state = store._load()
        except BaseException:
            store.close()
            raise
        return store, state

    def _load(self) -> StoredState:
        conn = self._live()
        try:
            conn.execute("BEGIN")  # one snapshot, even if another process writes
            try:
                return _read_state(conn)
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
            _write(conn, changes)
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
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            meta = {
                "kind": KIND,
                "schema_version": str(SCHEMA_VERSION),
                "markets": json.dumps(_encode_markets(markets)),
                "params": json.dumps({k: str(v) for k, v in params.items()}),
                "seed": str(seed),
                "initial_balances": json.dumps({a: str(v) for a, v in balances.items()}),
            }
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            _write(conn, initial)
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
    path: Path, markets: Mapping[str, MarketFilters], params: Mapping[str, Decimal]
) -> None:
    """Refuse, without writing a byte of it, a file that is not an exchange file of ours
    or that belongs to other markets or other exchange parameters."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_MAGIC))
    except OSError as e:
        raise ValueError(f"{path}: cannot read sim exchange file: {e}") from e
    if head != _MAGIC:
        raise ValueError(f"{path} is not an fsmtrader sim exchange file (not SQLite)")
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
    if meta.get("kind") != KIND:
        raise ValueError(f"{path} is an SQLite file but not an fsmtrader sim exchange file")
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        raise ValueError(
            f"{path}: sim exchange schema version {meta.get('schema_version')!r}, "
            f"this code reads {SCHEMA_VERSION}"
        )
    try:
        stored_markets = _decode_markets(json.loads(meta["markets"]))
        stored_params = {k: Decimal(v) for k, v in json.loads(meta["params"]).items()}
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as e:
        raise ValueError(f"{path}: corrupt sim exchange metadata: {e!r}") from e
    if set(stored_markets) != set(markets):
        raise ValueError(
            f"{path} belongs to markets {sorted(stored_markets)}, "
            f"not {sorted(markets)}: refusing to reuse it"
        )
    for symbol, m in markets.items():
        if stored_markets[symbol] != m:
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


# ---------------------------------------------------------------------- rows


def _write(conn: sqlite3.Connection, c: Changes) -> None:
    """Every statement of one commit; the caller owns the transaction."""
    if c.wallets:
        conn.executemany(_UPSERT_WALLET, ((a, str(f), str(u)) for a, f, u in c.wallets))
    if c.orders:
        conn.executemany(_UPSERT_ORDER, (_order_params(o) for o in c.orders))
    if c.trades:
        conn.executemany(_INSERT_TRADE, (_trade_params(s, t) for s, t in c.trades))
    if c.markets:
        conn.executemany(
            _UPSERT_MARKET,
            (
                (sym, json.dumps(bar), None if book is None else json.dumps(book))
                for sym, bar, book in c.markets
            ),
        )
    conn.execute(_UPSERT_STATE, ("core", json.dumps(c.core)))
    if c.rng is not None:
        conn.execute(_UPSERT_STATE, ("rng", json.dumps(c.rng)))


def _order_params(o: OrderRow) -> tuple[object, ...]:
    return tuple(str(v) if isinstance(v, Decimal) else v for v in o)


def _trade_params(seq: int, t: TradeInfo) -> tuple[object, ...]:
    return (
        seq,
        t.id,
        t.order_id,
        t.client_order_id,
        t.symbol,
        t.side,
        str(t.price),
        str(t.amount),
        str(t.fee),
        t.fee_currency,
        t.timestamp,
        int(t.maker),
    )


def _read_state(conn: sqlite3.Connection) -> StoredState:
    D = Decimal
    wallets = {
        str(a): (D(f), D(u))
        for a, f, u in conn.execute("SELECT asset, free, used FROM wallets ORDER BY rowid")
    }
    orders = [
        OrderRow(
            seq=int(r[0]),
            id=str(r[1]),
            client_order_id=str(r[2]),
            symbol=str(r[3]),
            side=cast(Side, r[4]),  # CHECK constraints keep these in their Literal sets
            order_type=cast(OrderType, r[5]),
            price=D(r[6]),
            amount=D(r[7]),
            time_in_force=cast(TimeInForce, r[8]),
            timestamp=int(r[9]),
            lock_asset=str(r[10]),
            lock_remaining=D(r[11]),
            status=cast(OrderStatus, r[12]),
            filled=D(r[13]),
            cost=D(r[14]),
            fee=D(r[15]),
            fee_currency=str(r[16]),
        )
        for r in conn.execute(
            "SELECT seq, id, client_order_id, symbol, side, order_type, price, amount,"
            " time_in_force, timestamp, lock_asset, lock_remaining, status, filled, cost, fee,"
            " fee_currency FROM orders ORDER BY seq"
        )
    ]
    trades = [
        TradeInfo(
            id=str(r[0]),
            order_id=str(r[1]),
            client_order_id=str(r[2]),
            symbol=str(r[3]),
            side=cast(Side, r[4]),
            price=D(r[5]),
            amount=D(r[6]),
            fee=D(r[7]),
            fee_currency=str(r[8]),
            timestamp=int(r[9]),
            maker=bool(r[10]),
        )
        for r in conn.execute(
            "SELECT id, order_id, client_order_id, symbol, side, price, amount, fee,"
            " fee_currency, timestamp, maker FROM trades ORDER BY seq"
        )
    ]
    markets: dict[str, tuple[Bar, dict[str, Any] | None]] = {}
    for sym, bar_json, book_json in conn.execute(
        "SELECT symbol, bar, book FROM market_state ORDER BY rowid"
    ):
        ts, price, high, low, volume = json.loads(bar_json)
        bar: Bar = (int(ts), float(price), float(high), float(low), float(volume))
        markets[str(sym)] = (bar, None if book_json is None else json.loads(book_json))
    blobs = {str(k): json.loads(v) for k, v in conn.execute("SELECT key, value FROM state")}
    version, internal, gauss = blobs["rng"]
    return StoredState(
        wallets=wallets,
        orders=orders,
        trades=trades,
        markets=markets,
        core=blobs["core"],
        rng=(version, tuple(internal), gauss),
    )


def _encode_markets(markets: Mapping[str, MarketFilters]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for sym, m in markets.items():
        row = {name: str(getattr(m, name)) for name in _FILTER_FIELDS}
        out[sym] = {"symbol": m.symbol, "base": m.base, "quote": m.quote, **row}
    return out


def _decode_markets(raw: Mapping[str, Mapping[str, str]]) -> dict[str, MarketFilters]:
    return {
        sym: MarketFilters(
            symbol=r["symbol"],
            tick_size=Decimal(r["tick_size"]),
            step_size=Decimal(r["step_size"]),
            min_qty=Decimal(r["min_qty"]),
            min_notional=Decimal(r["min_notional"]),
            base=r["base"],
            quote=r["quote"],
        )
        for sym, r in raw.items()
    }
