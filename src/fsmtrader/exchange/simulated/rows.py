"""The rows of a simulated exchange file: its schema, the shapes a commit writes and a
load reads, and the statements between the two.

This module knows rows and JSON, not the exchange's internals: :mod:`.persistence`
converts the exchange's orders, wallets and books to these shapes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, NamedTuple, cast

from fsmtrader.exchange.types import OrderStatus, OrderType, TimeInForce, TradeInfo
from fsmtrader.markets import MarketFilters, Side

# (ts_ms, price, high, low, volume): the last bar the driver fed for a symbol.
Bar = tuple[int, float, float, float, float]

SCHEMA: Final = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE wallets (
    asset TEXT PRIMARY KEY,
    free TEXT NOT NULL,
    used TEXT NOT NULL
);
CREATE TABLE orders (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    client_order_id TEXT NOT NULL,  -- reused once its earlier order is over (Binance)
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
    fee_currency TEXT NOT NULL,
    stop_price TEXT,  -- a stop-limit's (STOP_LOSS_LIMIT), NULL for a plain order
    triggered INTEGER NOT NULL CHECK (triggered IN (0, 1))
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


class OrderRow(NamedTuple):
    """An order's columns: everything the exchange's order record holds except its
    trades (those are rows of ``trades``, linked by ``order_id``)."""

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
    stop_price: Decimal | None
    triggered: bool


_ORDER_COLUMNS: Final = ", ".join(OrderRow._fields)
_TRADE_COLUMNS: Final = (
    "id, order_id, client_order_id, symbol, side, price, amount, fee, fee_currency,"
    " timestamp, maker"
)

_UPSERT_WALLET: Final = (
    "INSERT INTO wallets (asset, free, used) VALUES (?, ?, ?) "
    "ON CONFLICT (asset) DO UPDATE SET free = excluded.free, used = excluded.used"
)
_UPSERT_ORDER: Final = (
    f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES ({', '.join('?' * len(OrderRow._fields))}) "
    "ON CONFLICT (seq) DO UPDATE SET lock_remaining = excluded.lock_remaining,"
    " status = excluded.status, filled = excluded.filled, cost = excluded.cost,"
    " fee = excluded.fee, triggered = excluded.triggered"
)
_INSERT_TRADE: Final = (
    f"INSERT INTO trades (seq, {_TRADE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_MARKET: Final = (
    "INSERT INTO market_state (symbol, bar, book) VALUES (?, ?, ?) "
    "ON CONFLICT (symbol) DO UPDATE SET bar = excluded.bar, book = excluded.book"
)
_UPSERT_STATE: Final = (
    "INSERT INTO state (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)

# What the file records of a market; the fees are exchange parameters, recorded there.
_MARKET_FIELDS: Final = ("symbol", "base", "quote")
_FILTER_FIELDS: Final = ("tick_size", "step_size", "min_qty", "min_notional")


@dataclass(slots=True)
class Changes:
    """What one exchange call changed; written in one transaction by the store.

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


# ---------------------------------------------------------------------- writing


def write(conn: sqlite3.Connection, c: Changes) -> None:
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
    return tuple(
        str(v) if isinstance(v, Decimal) else int(v) if v is True or v is False else v for v in o
    )


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


# ---------------------------------------------------------------------- reading


def read_state(conn: sqlite3.Connection) -> StoredState:
    """The whole file; the caller holds one read snapshot around it."""
    blobs = {str(k): json.loads(v) for k, v in conn.execute("SELECT key, value FROM state")}
    version, internal, gauss = blobs["rng"]
    return StoredState(
        wallets={
            str(a): (Decimal(f), Decimal(u))
            for a, f, u in conn.execute("SELECT asset, free, used FROM wallets ORDER BY rowid")
        },
        orders=[
            _order_from(r)
            for r in conn.execute(f"SELECT {_ORDER_COLUMNS} FROM orders ORDER BY seq")
        ],
        trades=[
            _trade_from(r)
            for r in conn.execute(f"SELECT {_TRADE_COLUMNS} FROM trades ORDER BY seq")
        ],
        markets=_read_markets(conn),
        core=blobs["core"],
        rng=(version, tuple(internal), gauss),
    )


def _order_from(r: tuple[Any, ...]) -> OrderRow:
    D = Decimal
    return OrderRow(
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
        stop_price=None if r[17] is None else D(r[17]),
        triggered=bool(r[18]),
    )


def _trade_from(r: tuple[Any, ...]) -> TradeInfo:
    return TradeInfo(
        id=str(r[0]),
        order_id=str(r[1]),
        client_order_id=str(r[2]),
        symbol=str(r[3]),
        side=cast(Side, r[4]),
        price=Decimal(r[5]),
        amount=Decimal(r[6]),
        fee=Decimal(r[7]),
        fee_currency=str(r[8]),
        timestamp=int(r[9]),
        maker=bool(r[10]),
    )


def _read_markets(conn: sqlite3.Connection) -> dict[str, tuple[Bar, dict[str, Any] | None]]:
    markets: dict[str, tuple[Bar, dict[str, Any] | None]] = {}
    for sym, bar_json, book_json in conn.execute(
        "SELECT symbol, bar, book FROM market_state ORDER BY rowid"
    ):
        ts, price, high, low, volume = json.loads(bar_json)
        bar: Bar = (int(ts), float(price), float(high), float(low), float(volume))
        markets[str(sym)] = (bar, None if book_json is None else json.loads(book_json))
    return markets


# ---------------------------------------------------------------------- markets in meta


def encode_markets(markets: Mapping[str, MarketFilters]) -> dict[str, dict[str, str]]:
    return {
        sym: {name: str(getattr(m, name)) for name in (*_MARKET_FIELDS, *_FILTER_FIELDS)}
        for sym, m in markets.items()
    }


def decode_markets(raw: Mapping[str, Mapping[str, str]]) -> dict[str, MarketFilters]:
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


def same_market(stored: MarketFilters, given: MarketFilters) -> bool:
    """Whether ``given`` equals the file's market in everything the file records."""
    return all(
        getattr(stored, name) == getattr(given, name) for name in (*_MARKET_FIELDS, *_FILTER_FIELDS)
    )
