"""Reconciliation: compare our books with what the exchange says, and explain every
difference or report it.

Checked: open orders (ours that the exchange does not have, and orders with our
clientOrderId prefix that we do not know: orphans), fills (every fill of one of our orders
must be booked), and balances. With ``exact`` balances (paper: the bot owns the account)
every asset must match to 1e-8; live, the account may hold more than the bot manages, so
the exchange must hold *at least* what the bot thinks it has.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypedDict

from fsmtrader.errors import ExchangeError
from fsmtrader.exchange.types import Exchange
from fsmtrader.orders.intent import CLIENT_ID_PREFIX
from fsmtrader.state.books import Books

TOLERANCE = Decimal("1e-8")
RECENT_MS = 24 * 3_600_000


# One type per finding; amounts are exact decimal text, as in the JSON report.
class OrphanedOrder(TypedDict):
    """Open on the exchange with our clientOrderId prefix, unknown to the books."""

    client_order_id: str
    order_id: str
    symbol: str
    side: str
    amount: str
    price: str


class MissingOrder(TypedDict):
    """Live in the books but not open on the exchange, or the other way round."""

    intent_id: str
    client_order_id: str
    detail: str


class FillOfUnknownOrder(TypedDict):
    """A fill with our prefix whose order the books do not hold."""

    trade_id: str
    order_id: str
    detail: str


class MissedFill(TypedDict):
    """A fill of one of our intents that the books have not booked."""

    trade_id: str
    intent_id: str
    amount: str


class BalanceDifference(TypedDict):
    asset: str
    exchange: str
    ours: str
    diff: str


@dataclass
class ReconcileReport:
    ts: int
    exact_balances: bool
    orphaned_orders: list[OrphanedOrder] = field(default_factory=list)
    missing_orders: list[MissingOrder] = field(default_factory=list)
    unbooked_fills: list[FillOfUnknownOrder | MissedFill] = field(default_factory=list)
    balance_differences: list[BalanceDifference] = field(default_factory=list)
    foreign_open_orders: int = 0
    recovered_intents: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.orphaned_orders
            or self.missing_orders
            or self.unbooked_fills
            or self.balance_differences
            or self.errors
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def summary(self) -> str:
        if self.ok:
            return "reconcile ok: books match the exchange"
        parts = [
            f"{len(self.orphaned_orders)} orphaned order(s)",
            f"{len(self.missing_orders)} missing order(s)",
            f"{len(self.unbooked_fills)} unbooked fill(s)",
            f"{len(self.balance_differences)} balance difference(s)",
        ]
        parts += self.errors
        return "reconcile MISMATCH: " + ", ".join(parts)


def reconcile(
    books: Books, exchange: Exchange, *, now_ms: int, exact_balances: bool
) -> ReconcileReport:
    """Compare ``books`` with what ``exchange`` reports at ``now_ms``; read-only."""
    rep = ReconcileReport(ts=now_ms, exact_balances=exact_balances)
    open_coids = _open_orders(books, exchange, rep)
    for rec in books.records.values():
        if rec.live and rec.order_id and rec.client_order_id not in open_coids:
            rep.missing_orders.append(
                {
                    "intent_id": rec.intent.intent_id,
                    "client_order_id": rec.client_order_id,
                    "detail": f"{rec.state} in our books, not open on the exchange",
                }
            )
    _fills(books, exchange, rep)
    _balances(books, exchange, rep, exact_balances)
    return rep


def _open_orders(books: Books, ex: Exchange, rep: ReconcileReport) -> set[str]:
    """Orders open on the exchange: orphans (ours by prefix, unknown to the books) and
    ones the books hold as over. Returns the open clientOrderIds."""
    by_coid = {r.client_order_id: r for r in books.records.values()}
    try:
        open_orders = ex.fetch_open_orders()
    except ExchangeError as exc:
        rep.errors.append(f"open orders unavailable: {exc}")
        open_orders = []
    open_coids = set()
    for o in open_orders:
        rec = by_coid.get(o.client_order_id)
        open_coids.add(o.client_order_id)
        if rec is None:
            if o.client_order_id.startswith(CLIENT_ID_PREFIX):
                rep.orphaned_orders.append(
                    {
                        "client_order_id": o.client_order_id,
                        "order_id": o.id,
                        "symbol": o.symbol,
                        "side": o.side,
                        "amount": str(o.amount),
                        "price": str(o.price),
                    }
                )
            else:
                rep.foreign_open_orders += 1
        elif not rec.live:
            rep.missing_orders.append(
                {
                    "intent_id": rec.intent.intent_id,
                    "client_order_id": o.client_order_id,
                    "detail": f"open on the exchange, {rec.state} in our books",
                }
            )
    return open_coids


def _fills(books: Books, ex: Exchange, rep: ReconcileReport) -> None:
    """Every fill of one of our orders must be booked.

    Only an order that is not over can have fills we have not booked (an order is
    finalised once its fills are booked), so read back to the oldest open intent; the
    last day besides catches fills of orphans. Not the whole history on every start."""
    by_coid = {r.client_order_id: r for r in books.records.values()}
    by_order_id = {r.order_id: r for r in books.records.values() if r.order_id}
    opened = [r.intent.created_ms for r in books.records.values() if not r.done]
    since = min([*opened, rep.ts - RECENT_MS])
    for sym in books.symbols:
        try:
            trades = ex.fetch_my_trades(sym, since=since)
        except ExchangeError as exc:
            rep.errors.append(f"{sym}: trades unavailable: {exc}")
            continue
        for t in trades:
            rec = by_order_id.get(t.order_id) or by_coid.get(t.client_order_id)
            if rec is None:
                if t.client_order_id.startswith(CLIENT_ID_PREFIX):
                    rep.unbooked_fills.append(
                        {
                            "trade_id": t.id,
                            "order_id": t.order_id,
                            "detail": "fill of an order we do not know",
                        }
                    )
                continue
            if t.id not in rec.seen_trades:
                rep.unbooked_fills.append(
                    {"trade_id": t.id, "intent_id": rec.intent.intent_id, "amount": str(t.amount)}
                )


def _balances(books: Books, ex: Exchange, rep: ReconcileReport, exact: bool) -> None:
    pf = books.portfolio
    try:
        bal = ex.fetch_balance()
    except ExchangeError as exc:
        rep.errors.append(f"balances unavailable: {exc}")
        return
    ours: dict[str, Decimal] = {pf.quote: pf.cash + pf.reserved_total}
    for sym in books.symbols:
        base = books.filters[sym].base
        pos = pf.positions.get(sym)
        held = (pos.qty if pos is not None else Decimal(0)) + pf.dust.get(sym, Decimal(0))
        ours[base] = ours.get(base, Decimal(0)) + held
    for asset, mine in sorted(ours.items()):
        b = bal.get(asset)
        theirs = b.total if b is not None else Decimal(0)
        diff = theirs - mine
        bad = abs(diff) > TOLERANCE if exact else diff < -TOLERANCE
        if bad:
            rep.balance_differences.append(
                {"asset": asset, "exchange": str(theirs), "ours": str(mine), "diff": str(diff)}
            )


def write_report(rep: ReconcileReport, state_dir: Path) -> Path:
    """reconcile.json (latest) plus a timestamped copy, each written atomically."""
    folder = state_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(rep.to_dict(), indent=2, sort_keys=True) + "\n"
    dated = folder / f"reconcile-{rep.ts}.json"
    for path in (dated, state_dir / "reconcile.json"):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return state_dir / "reconcile.json"
