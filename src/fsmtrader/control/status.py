"""The status of a bot's books, as one JSON-ready dict: the row builder that the API, the
CLI ``status`` and the live terminal table all print, so the three never disagree.

Pure: it takes the books' values (symbol states, order records, the portfolio) and the
marks (last price per symbol) and reads no clock, database or engine. Money is Decimal and
leaves as exact text; a float mark enters as its shortest repr (``Decimal(str(x))``), so
``0.1`` is 0.1 and not the binary expansion.

Unrealised PnL of an open position is what closing it would book if what is still held
sold at the last price with no further fee (``Portfolio.close_position``'s arithmetic):
``sell_gross - sell_fees + qty * last - cost_basis``. ``cost_basis`` holds the buy fills
plus the buy fees paid in quote (a fee taken in the base asset is already in the smaller
``qty``); the exit legs sold so far count with their own fees, because the portfolio's
realised PnL takes them only when the position closes. So realised + unrealised is the
session's whole result at the marks. The exit's own fee is not guessed (maker or taker,
which rung): it is paid, and shown, when the exit fills.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from fsmtrader.fsm.phases import Phase
from fsmtrader.portfolio import Portfolio, Position
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.symbol import SymbolState

ZERO = Decimal(0)
# Phases with no trade under way: a symbol there is "at rest" unless it holds or has an
# order in flight (IDLE finding a position, a restart mid-trade).
RESTING = frozenset({Phase.WARMUP, Phase.IDLE, Phase.COOLDOWN})
RANK_ERROR, RANK_ACTIVE, RANK_REST = 0, 1, 2


def mark_decimal(price: float | None) -> Decimal | None:
    """A float mark as the Decimal it was printed as; None, NaN, infinite or <= 0 is no
    mark (it would poison every sum it enters)."""
    if price is None or price != price or price <= 0 or price == float("inf"):
        return None
    return Decimal(str(price))


def unrealized_pnl(pos: Position, last: Decimal) -> Decimal:
    """What closing ``pos`` at ``last`` (no exit fee) would book; see the module doc."""
    return pos.sell_gross - pos.sell_fees + pos.qty * last - pos.cost_basis


def order_view(rec: OrderRecord) -> dict[str, Any]:
    """An order as the status and the open-order list show it (exact text)."""
    it = rec.intent
    return {
        "intent_id": it.intent_id,
        "client_order_id": rec.client_order_id,
        "symbol": it.symbol,
        "side": it.side,
        "state": rec.state.value,
        "price": None if rec.price is None else str(rec.price),
        "amount": str(rec.amount),
        "filled": str(rec.filled),
        "avg_price": None if rec.avg_price is None else str(rec.avg_price),
        "reserved": str(rec.reserved),
        "attempts": rec.attempts,
        "decision_id": it.decision_id,
        "reason": rec.reason,
        "mode": it.mode,
    }


def _open_order(st: SymbolState, open_orders: Sequence[OrderRecord]) -> OrderRecord | None:
    """The symbol's order in flight: its active intent, else its latest open order."""
    for rec in open_orders:
        if rec.intent.intent_id == st.active_intent:
            return rec
    return open_orders[-1] if open_orders else None


def symbol_row(
    st: SymbolState,
    pos: Position | None,
    open_orders: Sequence[OrderRecord],
    last: Decimal | None,
    now_ms: int,
    mode: str = "",
) -> dict[str, Any]:
    """One symbol's status row (``open_orders``: its non-terminal orders, oldest first;
    ``mode``: observe, paper or live, "" where no mode was saved)."""
    held = pos is not None and pos.qty > 0
    pnl = unrealized_pnl(pos, last) if pos is not None and held and last is not None else None
    order = _open_order(st, open_orders)
    return {
        "symbol": st.symbol,
        "mode": mode,
        "phase": st.phase.value,
        "entered_ms": st.entered_ms,
        "time_in_phase_ms": max(now_ms - st.entered_ms, 0),
        "decision_id": st.decision_id,
        "position": str(pos.qty) if pos is not None else "0",
        "entry_price": str(pos.avg_entry) if pos is not None and pos.bought_qty > 0 else None,
        "last_price": None if last is None else str(last),
        "unrealized_pnl": None if pnl is None else str(pnl),
        "open_order": None if order is None else order_view(order),
        "open_orders": len(open_orders),
        "error_count": st.error_count,
        "last_error": st.last_error,
        "exit_reason": st.exit_reason,
    }


def rank(row: Mapping[str, Any]) -> int:
    """0: ERROR; 1: active (holds, has an order in flight, or is mid-trade); 2: at rest."""
    if row["phase"] == Phase.ERROR.value:
        return RANK_ERROR
    if is_active(row):
        return RANK_ACTIVE
    return RANK_REST


def is_active(row: Mapping[str, Any]) -> bool:
    return (
        Decimal(row["position"]) > 0
        or row["open_order"] is not None
        or Phase(row["phase"]) not in RESTING
    )


def sort_key(row: Mapping[str, Any]) -> tuple[int, str]:
    """ERROR first, then the active symbols, then the rest; by symbol within each."""
    return (rank(row), row["symbol"])


def build_status(
    states: Iterable[SymbolState],
    records: Iterable[OrderRecord],
    portfolio: Portfolio | None,
    *,
    marks: Mapping[str, float],
    now_ms: int,
    halted: str,
    entries_stopped: str,
    modes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole status: sorted symbol rows and the totals over them (see the module doc
    for unrealised PnL), also per mode. ``records`` may hold every order: the terminal
    ones are skipped. ``modes``: each symbol's (the session's saved ``modes``)."""
    modes = modes or {}
    by_symbol: dict[str, list[OrderRecord]] = {}
    for rec in records:
        if not rec.done:
            by_symbol.setdefault(rec.intent.symbol, []).append(rec)
    positions = portfolio.positions if portfolio is not None else {}
    rows = [
        symbol_row(
            st,
            positions.get(st.symbol),
            by_symbol.get(st.symbol, []),
            mark_decimal(marks.get(st.symbol)),
            now_ms,
            modes.get(st.symbol, ""),
        )
        for st in states
    ]
    rows.sort(key=sort_key)
    return {
        "now_ms": now_ms,
        "halted": halted,
        "entries_stopped": entries_stopped,
        "entries_allowed": not (halted or entries_stopped),
        "symbols": rows,
        "totals": _totals(rows, portfolio, by_symbol),
        "by_mode": _by_mode(rows),
    }


def _by_mode(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per mode: its symbols, positions, open orders and unrealised PnL (as the totals)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = out.setdefault(
            r["mode"], {"symbols": 0, "positions": 0, "open_orders": 0, "unrealized_pnl": ZERO}
        )
        m["symbols"] += 1
        m["positions"] += Decimal(r["position"]) > 0
        m["open_orders"] += r["open_orders"]
        if r["unrealized_pnl"] is not None:
            m["unrealized_pnl"] += Decimal(r["unrealized_pnl"])
    for m in out.values():
        m["unrealized_pnl"] = str(m["unrealized_pnl"])
    return dict(sorted(out.items()))


def _totals(
    rows: list[dict[str, Any]],
    pf: Portfolio | None,
    by_symbol: Mapping[str, list[OrderRecord]],
) -> dict[str, Any]:
    """Counts over the rows, and the books' money (None where there is no portfolio yet).
    ``unrealized_pnl`` sums the held symbols that have a mark; ``unpriced`` names those
    that do not (their PnL is unknown, not zero)."""
    held = [r for r in rows if Decimal(r["position"]) > 0]
    priced = [Decimal(r["unrealized_pnl"]) for r in held if r["unrealized_pnl"] is not None]
    unrealized = sum(priced, ZERO)
    realized = pf.realized_pnl if pf is not None else None
    return {
        "symbols": len(rows),
        "by_phase": dict(sorted(Counter(r["phase"] for r in rows).items())),
        "errors": sum(1 for r in rows if r["phase"] == Phase.ERROR.value),
        "active": sum(1 for r in rows if rank(r) == RANK_ACTIVE),
        "positions": len(held),
        "open_orders": sum(len(v) for v in by_symbol.values()),
        "unrealized_pnl": str(unrealized),
        "unpriced": [r["symbol"] for r in held if r["unrealized_pnl"] is None],
        "realized_pnl": None if realized is None else str(realized),
        "total_pnl": None if realized is None else str(realized + unrealized),
        "quote": pf.quote if pf is not None else "",
        "cash": None if pf is None else str(pf.cash),
        "reserved": None if pf is None else str(pf.reserved_total),
        "exposure": None if pf is None else str(pf.exposure()),
        "fees": None if pf is None else str(pf.fees_paid),
    }


def visible_rows(
    status: Mapping[str, Any], *, hide_idle: bool, hide_warmup: bool
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The rows a table shows, and how many it hid per phase. Only a symbol at rest is
    ever hidden: one with a position, an order in flight or an error always shows."""
    hide = set()
    if hide_idle:
        hide.add(Phase.IDLE.value)
    if hide_warmup:
        hide.add(Phase.WARMUP.value)
    shown: list[dict[str, Any]] = []
    hidden: Counter[str] = Counter()
    for row in status["symbols"]:
        if row["phase"] in hide and rank(row) == RANK_REST:
            hidden[row["phase"]] += 1
        else:
            shown.append(row)
    return shown, dict(hidden)
