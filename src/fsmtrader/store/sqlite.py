"""The SQLite store: everything the engine must remember, saved in one transaction per
commit point, and loaded back on start.

Tables are plain rows (Decimals as exact text), one per symbol, intent, fill, position,
trade and audit record, so the file can be read with the sqlite3 shell and jq.
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.audit import dumps
from fsmtrader.errors import ConfigError, StoreError
from fsmtrader.fsm.phases import Phase
from fsmtrader.orders.intent import Intent
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import ClosedTrade, Ghost, Portfolio, Position
from fsmtrader.state.delta import Snapshot, StateDelta
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import FillRecord, Record
from fsmtrader.state.symbol import HISTORY_LEN, ExitState, SymbolState
from fsmtrader.store.schema import connect

D = Decimal
Committed = Callable[[list[tuple[int, Record]]], None]


def _d(v: str | None) -> Decimal | None:
    return None if v is None else Decimal(v)


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


class SqliteStore:
    def __init__(self, path: Path, *, synchronous: str = "NORMAL", create: bool = True) -> None:
        self.path = path
        self.conn = connect(path, create=create, synchronous=synchronous)
        self._trades_saved = self._count("trades")
        self._ghosts_saved = self._count("ghosts")
        self.on_committed: list[Committed] = []
        self._history: dict[str, tuple[int, str]] = {}  # symbol -> (seq, encoded history)
        self.commits = 0

    def _count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    # --- writing ------------------------------------------------------------------------
    def save(self, delta: StateDelta) -> None:
        """Write one commit's changes in ONE transaction (nothing when nothing changed)."""
        if delta.empty():
            return
        c = self.conn
        records = delta.audit
        c.execute("BEGIN IMMEDIATE")
        try:
            for st in delta.symbols:
                c.execute(_UPSERT_SYMBOL, _symbol_row(st, self._history))
            for rec in delta.orders:
                c.execute(_UPSERT_ORDER, _order_row(rec))
            if delta.portfolio is not None:
                self._save_portfolio(delta.portfolio)
            if delta.fills:
                c.executemany(_INSERT_FILL, [_fill_row(f) for f in delta.fills])
            ids = []
            for r in records:
                cur = c.execute(
                    "INSERT INTO audit(ts, kind, symbol, record) VALUES (?, ?, ?, ?)",
                    (r["ts"], r["kind"], r.get("symbol"), dumps(r)),
                )
                ids.append(int(cur.lastrowid or 0))
            if delta.meta:
                c.executemany(
                    "INSERT OR REPLACE INTO engine_meta(key, value) VALUES (?, ?)",
                    list(delta.meta.items()),
                )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        self.commits += 1
        if delta.portfolio is not None:
            # only now: a rolled-back transaction must write these trades and ghosts again
            self._trades_saved = len(delta.portfolio.trades)
            self._ghosts_saved = len(delta.portfolio.ghosts)
        if self.on_committed and records:
            batch = list(zip(ids, records, strict=True))
            for fn in self.on_committed:
                fn(batch)

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
        c.executemany(_INSERT_POSITION, [_position_row(p) for p in pf.positions.values()])
        c.execute("DELETE FROM dust")
        c.executemany(
            "INSERT INTO dust(symbol, qty) VALUES (?, ?)", [(k, str(v)) for k, v in pf.dust.items()]
        )
        for t in pf.trades[self._trades_saved :]:
            c.execute(_INSERT_TRADE, _trade_row(t))
        for g in pf.ghosts[self._ghosts_saved :]:
            c.execute(
                "INSERT INTO ghosts(ts, symbol, side, intent_id, decision_id, reason)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (g.ts, g.symbol, g.side, g.intent_id, g.decision_id, g.reason),
            )

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO engine_meta(key, value) VALUES (?, ?)", (key, value)
        )

    # --- reading ------------------------------------------------------------------------
    def load(self) -> Snapshot:
        c = self.conn
        snap = Snapshot()
        snap.meta = dict(c.execute("SELECT key, value FROM engine_meta").fetchall())
        for row in c.execute("SELECT * FROM symbol_state"):
            st = _symbol_from(row)
            snap.symbols[st.symbol] = st
        snap.orders = [_order_from(r) for r in c.execute("SELECT * FROM orders ORDER BY rowid")]
        prow = c.execute("SELECT quote, cash, fees_paid, realized_pnl FROM portfolio").fetchone()
        if prow is not None:
            pf = Portfolio(
                quote=prow[0], cash=D(prow[1]), fees_paid=D(prow[2]), realized_pnl=D(prow[3])
            )
            pf.reserved = {k: D(v) for k, v in c.execute("SELECT * FROM reservations")}
            pf.positions = {r[0]: _position_from(r) for r in c.execute("SELECT * FROM positions")}
            pf.dust = {k: D(v) for k, v in c.execute("SELECT * FROM dust")}
            pf.trades = [_trade_from(r) for r in c.execute("SELECT * FROM trades ORDER BY id")]
            pf.ghosts = [Ghost(*r[1:]) for r in c.execute("SELECT * FROM ghosts ORDER BY id")]
            pf.dirty = False
            snap.portfolio = pf
        snap.audit_rows = self._count("audit")
        return snap

    def audit_since(self, after_id: int) -> list[tuple[int, str]]:
        return list(
            self.conn.execute("SELECT id, record FROM audit WHERE id > ? ORDER BY id", (after_id,))
        )

    def fills(self) -> list[dict[str, Any]]:
        cols = [
            "intent_id",
            "trade_id",
            "symbol",
            "side",
            "price",
            "amount",
            "fee",
            "fee_currency",
            "ts",
            "decision_id",
        ]
        return [dict(zip(cols, r, strict=True)) for r in self.conn.execute("SELECT * FROM fills")]


SYMBOL_COLUMNS = [
    "symbol",
    "phase",
    "entered_ms",
    "seq",
    "decision_id",
    "step",
    "exit_reason",
    "error_count",
    "last_error",
    "entry_block_until",
    "exit_block_until",
    "active_intent",
    "entry_ref",
    "exit_ref",
    "buy_leg",
    "sell_leg",
    "exit_peak",
    "exit_trail_active",
    "history",
]
ORDER_COLUMNS = [
    "intent_id",
    "client_order_id",
    "symbol",
    "side",
    "decision_id",
    "intent",
    "state",
    "order_id",
    "price",
    "amount",
    "filled",
    "cost",
    "fee_quote",
    "reserved",
    "attempts",
    "due_ms",
    "unknown_since",
    "reason",
    "seen_trades",
    "cancel_requested",
]


def _upsert(table: str, columns: list[str]) -> str:
    """An in-place upsert: ``INSERT OR REPLACE`` would delete and re-insert the row (and
    touch its indexes), which costs a third of a commit."""
    sets = ", ".join(f"{c}=excluded.{c}" for c in columns[1:])
    marks = ", ".join("?" * len(columns))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT({columns[0]}) DO UPDATE SET {sets}"
    )


_UPSERT_SYMBOL = _upsert("symbol_state", SYMBOL_COLUMNS)
_UPSERT_ORDER = _upsert("orders", ORDER_COLUMNS)
_INSERT_FILL = "INSERT OR IGNORE INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_POSITION = "INSERT INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_TRADE = """INSERT INTO trades(symbol, decision_id, entry_ms, exit_ms, bought_qty,
    sold_qty, avg_entry, avg_exit, buy_fees, sell_fees, sell_legs, dust_qty, realized_pnl,
    exit_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


def _symbol_row(st: SymbolState, cache: dict[str, tuple[int, str]]) -> tuple[Any, ...]:
    ex = st.exit
    return (
        st.symbol,
        st.phase.value,
        st.entered_ms,
        st.seq,
        st.decision_id,
        st.step,
        st.exit_reason,
        st.error_count,
        st.last_error,
        st.entry_block_until,
        st.exit_block_until,
        st.active_intent,
        _s(st.entry_ref),
        _s(st.exit_ref),
        st.buy_leg,
        st.sell_leg,
        ex.peak if ex is not None else None,
        int(ex.trail_active) if ex is not None else 0,
        _history_cached(st, cache),
    )


def _history_cached(st: SymbolState, cache: dict[str, tuple[int, str]]) -> str:
    """The encoded history, extended by one entry when exactly one transition happened
    since the last save (the common case) instead of re-encoding all of it."""
    seen = cache.get(st.symbol)
    history = st.history
    if seen is not None and seen[0] == st.seq - 1 and history:
        text = seen[1]
        ts, a, e, b = history[-1]
        entry = f"{ts},{a},{e},{b}"
        if text.count(";") + 1 >= HISTORY_LEN:
            text = text.split(";", 1)[1]
        text = f"{text};{entry}" if text else entry
    else:
        text = _history_text(history)
    cache[st.symbol] = (st.seq, text)
    return text


def _history_text(history: deque[tuple[int, str, str, str]]) -> str:
    """Compact and cheap (this runs on every commit): 'ts,from,event,to;...'."""
    return ";".join(f"{ts},{a},{e},{b}" for ts, a, e, b in history)


def _history_from(text: str) -> deque[tuple[int, str, str, str]]:
    out: deque[tuple[int, str, str, str]] = deque(maxlen=HISTORY_LEN)
    for item in filter(None, text.split(";")):
        ts, a, e, b = item.split(",")
        out.append((int(ts), a, e, b))
    return out


def _symbol_from(r: tuple[Any, ...]) -> SymbolState:
    return SymbolState(
        symbol=r[0],
        phase=Phase(r[1]),
        entered_ms=r[2],
        seq=r[3],
        decision_id=r[4],
        step=r[5],
        exit_reason=r[6],
        error_count=r[7],
        last_error=r[8],
        entry_block_until=r[9],
        exit_block_until=r[10],
        active_intent=r[11],
        entry_ref=_d(r[12]),
        exit_ref=_d(r[13]),
        buy_leg=r[14],
        sell_leg=r[15],
        exit=None if r[16] is None else ExitState(r[16], bool(r[17])),
        history=_history_from(r[18]),
    )


def _order_row(rec: OrderRecord) -> tuple[Any, ...]:
    it = rec.intent
    return (
        it.intent_id,
        rec.client_order_id,
        it.symbol,
        it.side,
        it.decision_id,
        json.dumps(it.to_record(), sort_keys=True),
        rec.state.value,
        rec.order_id,
        _s(rec.price),
        str(rec.amount),
        str(rec.filled),
        str(rec.cost),
        str(rec.fee_quote),
        str(rec.reserved),
        rec.attempts,
        rec.due_ms,
        rec.unknown_since,
        rec.reason,
        json.dumps(sorted(rec.seen_trades)),
        int(rec.cancel_requested),
    )


def _order_from(r: tuple[Any, ...]) -> OrderRecord:
    raw = json.loads(r[5])
    intent = Intent(
        intent_id=raw["intent_id"],
        decision_id=raw["decision_id"],
        symbol=raw["symbol"],
        side=raw["side"],
        amount=D(raw["amount"]),
        limit_price=_d(raw["limit_price"]),
        ref_price=D(raw["ref_price"]),
        max_slippage_bps=D(raw["max_slippage_bps"]),
        time_in_force=raw["time_in_force"],
        leg=raw["leg"],
        created_ms=raw["created_ms"],
        reason=raw["reason"],
        budget=_d(raw["budget"]),
    )
    return OrderRecord(
        intent=intent,
        client_order_id=r[1],
        state=OrderState(r[6]),
        order_id=r[7],
        price=_d(r[8]),
        amount=D(r[9]),
        filled=D(r[10]),
        cost=D(r[11]),
        fee_quote=D(r[12]),
        reserved=D(r[13]),
        attempts=r[14],
        due_ms=r[15],
        unknown_since=r[16],
        reason=r[17],
        seen_trades=set(json.loads(r[18])),
        cancel_requested=bool(r[19]),
    )


def _fill_row(r: FillRecord) -> tuple[Any, ...]:
    return (
        r["intent_id"],
        r["trade_id"],
        r["symbol"],
        r["side"],
        r["price"],
        r["amount"],
        r["fee"],
        r["fee_currency"],
        r["ts"],
        r["decision_id"],
    )


_POSITION_FIELDS = [f.name for f in fields(Position)]  # the table's column order


def _position_row(p: Position) -> tuple[Any, ...]:
    return tuple(
        str(v) if isinstance(v, Decimal) else v for v in (getattr(p, n) for n in _POSITION_FIELDS)
    )


def _position_from(r: tuple[Any, ...]) -> Position:
    kinds = {f.name: f.type for f in fields(Position)}
    values: dict[str, Any] = {
        n: Decimal(v) if kinds[n] in ("Decimal", Decimal) else v
        for n, v in zip(_POSITION_FIELDS, r, strict=True)
    }
    return Position(**values)


def _trade_row(t: ClosedTrade) -> tuple[Any, ...]:
    return (
        t.symbol,
        t.decision_id,
        t.entry_ms,
        t.exit_ms,
        str(t.bought_qty),
        str(t.sold_qty),
        str(t.avg_entry),
        str(t.avg_exit),
        str(t.buy_fees),
        str(t.sell_fees),
        t.sell_legs,
        str(t.dust_qty),
        str(t.realized_pnl),
        t.exit_reason,
    )


def _trade_from(r: tuple[Any, ...]) -> ClosedTrade:
    return ClosedTrade(
        symbol=r[1],
        decision_id=r[2],
        entry_ms=r[3],
        exit_ms=r[4],
        bought_qty=D(r[5]),
        sold_qty=D(r[6]),
        avg_entry=D(r[7]),
        avg_exit=D(r[8]),
        buy_fees=D(r[9]),
        sell_fees=D(r[10]),
        sell_legs=r[11],
        dust_qty=D(r[12]),
        realized_pnl=D(r[13]),
        exit_reason=r[14],
    )


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
