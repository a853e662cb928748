"""A read-only view of a bot's books, straight from its SQLite state database: what the
API, ``fsmtrader status`` and the live table print (one builder, ``control.status``).

It never writes and never creates a file: the connection is opened with the store's
read-only URI (``mode=ro``, or ``immutable`` when no writer has the file open) and an
authorizer that refuses any statement but a read. WAL lets it read while the bot commits:
each call is one read transaction, so what it returns is one committed state, and the
writer is never blocked. Rows are decoded by the store's own codecs.

One reader per thread (its sqlite3 connection is not shared between threads at once);
it is cheap to open. A reader open when the bot closes its store keeps the bot from
folding the WAL back into the file (it is not the last connection): nothing is lost, the
-wal stays until the next writer; so a bot closes its own readers first.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.control.clocks import session_clock
from fsmtrader.control.status import build_status, order_view
from fsmtrader.engine.modes import MODES_META, decode_modes
from fsmtrader.engine.report import by_mode
from fsmtrader.errors import StoreError
from fsmtrader.portfolio import ClosedTrade, Portfolio, Position
from fsmtrader.store.codec import GHOST
from fsmtrader.store.schema import APP, readonly_uri
from fsmtrader.store.sqlite import (
    read_meta_rows,
    read_orders,
    read_portfolio,
    read_symbols,
    read_trades,
)

ZERO = Decimal(0)
DAY_MS = 86_400_000
ALERT_KINDS = ("halt", "resume", "alert", "control", "breaker", "kill_switch")
KEEP_ALERTS = 1000  # recent alert records kept between calls (the scan is incremental)
MAX_LIMIT = 10_000  # rows one call returns at most
RECENT_GHOSTS = 20
_READS = frozenset(
    {
        sqlite3.SQLITE_SELECT,
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_FUNCTION,
        sqlite3.SQLITE_TRANSACTION,
        sqlite3.SQLITE_RECURSIVE,
    }
)


def _only_reads(action: int, *_: object) -> int:
    return sqlite3.SQLITE_OK if action in _READS else sqlite3.SQLITE_DENY


def _limit(n: int) -> int:
    return max(0, min(int(n), MAX_LIMIT))


def saved_marks(meta: Mapping[str, str]) -> dict[str, float]:
    """The last prices the running session saved (meta ``marks``: JSON {symbol: price});
    anything unreadable in it is left out, never guessed."""
    try:
        raw = json.loads(meta.get("marks") or "{}")
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    out = {}
    for sym, price in raw.items():
        with contextlib.suppress(TypeError, ValueError):
            out[str(sym)] = float(price)
    return out


class BookReader:
    """The books of the state database at ``db_path`` (its state directory holds the
    reconcile report), read without changing anything."""

    def __init__(self, db_path: Path, state_dir: Path) -> None:
        if not db_path.is_file():
            raise StoreError(f"{db_path}: no state database here")
        self.db_path = db_path
        self.state_dir = state_dir
        self._conn: sqlite3.Connection | None = None
        self._immutable = False
        # incremental scans of the audit table: (last id seen, what was found up to it)
        self._signals = (0, 0)
        self._alerts_seen = 0
        self._alerts: deque[dict[str, Any]] = deque(maxlen=KEEP_ALERTS)
        with self._read():  # refuse a foreign or unreadable file now, not on first use
            pass

    # --- the connection -----------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        uri = readonly_uri(self.db_path)
        try:
            conn = sqlite3.connect(
                uri, uri=True, timeout=2.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.db_path}: cannot open read-only ({exc})") from None
        conn.set_authorizer(_only_reads)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'app'").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{self.db_path}: not a readable state database ({exc})") from None
        if row is None or row[0] != APP:
            conn.close()
            raise StoreError(f"{self.db_path}: not an fsmtrader state database")
        self._immutable = "immutable=1" in uri
        return conn

    def _connection(self) -> sqlite3.Connection:
        """The open connection; reopened when it was opened immutable (no writer then)
        and a writer has since started (its -wal is there): immutable would not see it."""
        if self._conn is not None and self._immutable and self._writer_side_file():
            self._conn.close()
            self._conn = None
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _writer_side_file(self) -> bool:
        name = self.db_path.name
        return any(self.db_path.with_name(name + s).exists() for s in ("-wal", "-journal"))

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same committed state."""
        conn = self._connection()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.db_path}: read failed ({exc})") from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> BookReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the session --------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """The engine meta: owner, session clock, halt, entries stopped, saved marks."""
        with self._read() as c:
            return read_meta_rows(c)

    def session_now_ms(self) -> int:
        """The session's clock now (a paper session's is simulated; see control.clocks)."""
        return session_clock(self.meta())()

    # --- status and orders ---------------------------------------------------------------
    def status(self, now_ms: int, marks: Mapping[str, float] | None = None) -> dict[str, Any]:
        """Every symbol's row and the totals (``control.status.build_status``); without
        ``marks`` the last prices the session saved are used."""
        with self._read() as c:
            meta = read_meta_rows(c)
            states = read_symbols(c)
            orders = read_orders(c, open_only=True)
            pf = read_portfolio(c, history=False)
        status = build_status(
            [states[s] for s in sorted(states)],
            orders,
            pf,
            marks=saved_marks(meta) if marks is None else marks,
            now_ms=now_ms,
            halted=meta.get("halted", ""),
            entries_stopped=meta.get("entries_stopped", ""),
            modes=decode_modes(meta.get(MODES_META)),
        )
        status["marks_from"] = "saved" if marks is None else "live"
        return status

    def orders(self) -> list[dict[str, Any]]:
        """The open (non-terminal) orders, oldest first."""
        with self._read() as c:
            return [order_view(r) for r in read_orders(c, open_only=True)]

    # --- money --------------------------------------------------------------------------
    def trades(self, symbol: str | None, since_ms: int | None, limit: int) -> list[dict[str, Any]]:
        """Closed trades, newest first: of ``symbol`` (None: all), exited at or after
        ``since_ms`` (None: any time), at most ``limit``."""
        n = _limit(limit)
        if n == 0:
            return []
        with self._read() as c:
            rows = read_trades(c, symbol=symbol, since_ms=since_ms, last=n)
        return [_trade_view(i, t) for i, t in reversed(rows)]

    def balance(self) -> dict[str, Any]:
        """Cash, reservations (each with its order's symbol and side), positions and
        exposure, as the books hold them."""
        with self._read() as c:
            pf = read_portfolio(c, history=False)
            orders = {r.intent.intent_id: r for r in read_orders(c, open_only=True)}
        if pf is None:
            pf = Portfolio(quote="", cash=ZERO)
        reservations = []
        for iid, amount in sorted(pf.reserved.items()):
            rec = orders.get(iid)
            reservations.append(
                {
                    "intent_id": iid,
                    "symbol": rec.intent.symbol if rec else "",
                    "side": rec.intent.side if rec else "",
                    "amount": str(amount),
                }
            )
        return {
            "quote": pf.quote,
            "cash": str(pf.cash),
            "reserved": str(pf.reserved_total),
            "reservations": reservations,
            "positions": [_position_view(p) for _, p in sorted(pf.positions.items())],
            "exposure": str(pf.exposure()),
            "fees_paid": str(pf.fees_paid),
            "realized_pnl": str(pf.realized_pnl),
            "dust": {s: str(q) for s, q in sorted(pf.dust.items())},
        }

    def profit(self) -> dict[str, Any]:
        """The closed trades summed up: count, wins, win rate, realised PnL, fees, best
        and worst (win rate as the run summary rounds it)."""
        with self._read() as c:
            trades = read_trades(c)
            pf = read_portfolio(c, history=False)
            orders = read_orders(c)
            modes = decode_modes(read_meta_rows(c).get(MODES_META))
        positions = pf.positions if pf is not None else {}
        split = by_mode([t for _, t in trades], orders, modes, positions)
        pnls = [t.realized_pnl for _, t in trades]
        wins = sum(1 for p in pnls if p > 0)
        best = max(trades, key=lambda it: it[1].realized_pnl, default=None)
        worst = min(trades, key=lambda it: it[1].realized_pnl, default=None)
        total = sum(pnls, ZERO)
        return {
            "trades": len(trades),
            "wins": wins,
            "losses": sum(1 for p in pnls if p < 0),
            "win_rate": round(wins / len(trades), 4) if trades else 0.0,
            "realized_pnl": str(pf.realized_pnl if pf is not None else total),
            "trades_pnl": str(total),
            "avg_pnl": str(total / len(trades)) if trades else None,
            "fees": str(sum((t.fees for _, t in trades), ZERO)),
            "fees_paid": str(pf.fees_paid) if pf is not None else "0",
            "best": _trade_view(*best) if best else None,
            "worst": _trade_view(*worst) if worst else None,
            "first_exit_ms": trades[0][1].exit_ms if trades else None,
            "last_exit_ms": trades[-1][1].exit_ms if trades else None,
            "by_mode": split,
        }

    def daily(self, days: int, now_ms: int | None = None) -> list[dict[str, Any]]:
        """One row per UTC day of exit, oldest first: the ``days`` days that end on the
        day of ``now_ms`` (None: of the last exit), days without trades included (zero)."""
        n = _limit(days)
        with self._read() as c:
            trades = [t for _, t in read_trades(c)]
        if n == 0 or (now_ms is None and not trades):
            return []
        last_day = (now_ms if now_ms is not None else trades[-1].exit_ms) // DAY_MS
        first_day = last_day - n + 1
        rows = {d: _DaySum() for d in range(first_day, last_day + 1)}
        for t in trades:
            day = rows.get(t.exit_ms // DAY_MS)
            if day is not None:
                day.add(t)
        return [day.view(d) for d, day in rows.items()]

    # --- ghosts, alerts, audit ----------------------------------------------------------
    def ghosts(self) -> dict[str, Any]:
        """Orders decided but never sent: how many, why, and per entry signal (the SIGNAL
        transitions of the audit trail)."""
        with self._read() as c:
            count = c.execute("SELECT COUNT(*) FROM ghosts").fetchone()[0]
            by_reason = dict(
                c.execute("SELECT reason, COUNT(*) FROM ghosts GROUP BY reason ORDER BY reason")
            )
            sql = f"SELECT {', '.join(GHOST.columns)} FROM ghosts ORDER BY id DESC LIMIT ?"
            recent = [GHOST.decode(r) for r in c.execute(sql, (RECENT_GHOSTS,))]
            signals = self._count_signals(c)
        return {
            "count": count,
            "by_reason": by_reason,
            "signals": signals,
            "ghost_rate": round(count / signals, 6) if signals else None,
            "recent": [
                {
                    "ts": g.ts,
                    "symbol": g.symbol,
                    "side": g.side,
                    "intent_id": g.intent_id,
                    "decision_id": g.decision_id,
                    "reason": g.reason,
                }
                for g in recent
            ],
        }

    def _count_signals(self, c: sqlite3.Connection) -> int:
        """SIGNAL transitions in the audit table, counted from where the last call
        stopped (the audit is append-only; a shorter table starts the count again)."""
        top = int(c.execute("SELECT MAX(id) FROM audit").fetchone()[0] or 0)
        seen, count = self._signals
        if top < seen:
            seen, count = 0, 0
        count += int(
            c.execute(
                "SELECT COUNT(*) FROM audit WHERE id > ? AND id <= ? AND kind = 'phase'"
                " AND json_extract(record, '$.event') = 'SIGNAL'",
                (seen, top),
            ).fetchone()[0]
        )
        self._signals = (top, count)
        return count

    def alerts(self, limit: int) -> dict[str, Any]:
        """The current halt and stop of entries, and the latest ``limit`` halt, resume,
        alert and control records (newest first, each with its ``audit_id``)."""
        n = min(_limit(limit), KEEP_ALERTS)
        with self._read() as c:
            meta = read_meta_rows(c)
            top = int(c.execute("SELECT MAX(id) FROM audit").fetchone()[0] or 0)
            if top < self._alerts_seen:
                self._alerts.clear()
                self._alerts_seen = 0
            marks = ", ".join("?" * len(ALERT_KINDS))
            for audit_id, text in c.execute(
                f"SELECT id, record FROM audit WHERE id > ? AND id <= ? AND kind IN ({marks})"
                " ORDER BY id",
                (self._alerts_seen, top, *ALERT_KINDS),
            ):
                self._alerts.append({"audit_id": audit_id, **json.loads(text)})
            self._alerts_seen = top
        records = list(self._alerts)[-n:] if n else []
        records.reverse()
        return {
            "halted": meta.get("halted", ""),
            "entries_stopped": meta.get("entries_stopped", ""),
            "records": records,
        }

    def audit(self, after_id: int, limit: int) -> list[dict[str, Any]]:
        """The audit records after ``after_id``, oldest first, at most ``limit``; each
        is the record as committed plus its ``audit_id`` (as in audit.jsonl)."""
        with self._read() as c:
            rows = c.execute(
                "SELECT id, record FROM audit WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, _limit(limit)),
            ).fetchall()
        return [{"audit_id": i, **json.loads(text)} for i, text in rows]

    def last_audit_id(self) -> int:
        with self._read() as c:
            return int(c.execute("SELECT MAX(id) FROM audit").fetchone()[0] or 0)

    def reconcile_report(self) -> dict[str, Any] | None:
        """The latest reconcile report (``reconcile.json``, written atomically), or None
        when no reconcile has run here yet."""
        path = self.state_dir / "reconcile.json"
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{path}: cannot read the reconcile report ({exc})") from None
        try:
            report = json.loads(text)
        except ValueError as exc:
            raise StoreError(f"{path}: not a reconcile report ({exc})") from None
        if not isinstance(report, dict):
            raise StoreError(f"{path}: not a reconcile report (not a JSON object)")
        return report


def _trade_view(trade_id: int, t: ClosedTrade) -> dict[str, Any]:
    return {"id": trade_id, **t.to_record(), "fees": str(t.fees)}


def _position_view(p: Position) -> dict[str, Any]:
    return {
        "symbol": p.symbol,
        "decision_id": p.decision_id,
        "entry_ms": p.entry_ms,
        "qty": str(p.qty),
        "entry_price": str(p.avg_entry),
        "cost_basis": str(p.cost_basis),
        "buy_fees": str(p.buy_fees),
        "sold_qty": str(p.sold_qty),
        "sell_locked": str(p.sell_locked),
        "sell_legs": p.sell_legs,
    }


class _DaySum:
    """One UTC day's closed trades, summed in Decimal."""

    def __init__(self) -> None:
        self.trades = 0
        self.wins = 0
        self.pnl = ZERO
        self.fees = ZERO

    def add(self, t: ClosedTrade) -> None:
        self.trades += 1
        self.wins += t.realized_pnl > 0
        self.pnl += t.realized_pnl
        self.fees += t.fees

    def view(self, day: int) -> dict[str, Any]:
        date = datetime.fromtimestamp(day * DAY_MS / 1000, tz=UTC).date().isoformat()
        return {
            "day": date,
            "start_ms": day * DAY_MS,
            "trades": self.trades,
            "wins": self.wins,
            "realized_pnl": str(self.pnl),
            "fees": str(self.fees),
        }
