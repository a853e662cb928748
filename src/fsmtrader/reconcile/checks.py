"""Reconciliation both ways: compare our books with what the exchange says; read-only.

Look-back: every exchange order created since the oldest intent that is not over (less a
clock-skew margin), and at least the last ``RECENT_MS`` (a day): an intent settled
FAILED_FINAL or canceled-before-send in that day is exactly one that may have executed
after all. Per traded symbol that is the order history (``fetch_orders``, every page),
our fills (``fetch_my_trades``, mapped to orders by order id: Binance's trade history
carries no clientOrderId) and, once, the open orders (an order resting since before the
look-back). Not the whole history on every start.

Checked, each way: every exchange order with our prefix is placed on an intent by
clientOrderId or order id (else an orphan), one order per intent (else a duplicate: a
venue accepts a reused clientOrderId once the first order is over), its filled amount
equals the books', every fill is booked and every booked fill is the exchange's, an
order live in the books is open on the exchange and the other way round, and balances
match for every asset the bot touches (``reconcile.balances``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from fsmtrader.errors import ExchangeError
from fsmtrader.exchange.types import Exchange, OrderInfo, TradeInfo
from fsmtrader.orders.intent import CLIENT_ID_PREFIX
from fsmtrader.orders.states import OrderState
from fsmtrader.reconcile.account import Account
from fsmtrader.reconcile.balances import compare_balances
from fsmtrader.reconcile.report import ReconcileReport
from fsmtrader.state.books import Books
from fsmtrader.state.order import OrderRecord

S = OrderState
ZERO = Decimal(0)
RECENT_MS = 24 * 3_600_000
CLOCK_SKEW_MS = 60_000  # our clock against the venue's, when reading back to an intent
# A just-created order may not be visible yet (Binance 5 s, MEXC 10 s): an order the
# books hold is concluded absent from the exchange only once its last send is older than
# this (the default; a session passes the visibility window in force).
VISIBILITY_MS = 10_000


def lookback(books: Books, now_ms: int) -> int:
    """Where reading the exchange's history starts (see the module's docstring)."""
    unsettled = [r.intent.created_ms - CLOCK_SKEW_MS for r in books.records.values() if not r.done]
    return min([*unsettled, now_ms - RECENT_MS])


def reconcile(
    books: Books,
    exchange: Exchange,
    *,
    now_ms: int,
    exact_balances: bool,
    since: int | None = None,
    account: Account | None = None,
    visibility_ms: int = VISIBILITY_MS,
) -> ReconcileReport:
    """Compare ``books`` with what ``exchange`` reports at ``now_ms``; read-only.

    ``since`` overrides the look-back (an oracle reads the whole history with 0);
    ``account`` holds the outside holdings and third-asset fees for the balance check;
    ``visibility_ms`` is the venue's visibility window."""
    rep = ReconcileReport(ts=now_ms, exact_balances=exact_balances)
    rep.since = lookback(books, now_ms) if since is None else since
    orders, trades, readable = _read(books, exchange, rep)
    matched = _match_orders(books, orders, rep)
    _check_orders(books, matched, orders, readable, rep, visibility_ms)
    _check_fills(books, matched, trades, rep)
    compare_balances(books, exchange, rep, exact_balances, account)
    return rep


def _read(
    books: Books, ex: Exchange, rep: ReconcileReport
) -> tuple[dict[str, OrderInfo], list[TradeInfo], set[str]]:
    """Exchange orders (history and open, by id), our fills, and the symbols whose
    history could be read (an absence is concluded only there)."""
    orders: dict[str, OrderInfo] = {}
    trades: list[TradeInfo] = []
    readable: set[str] = set()
    for sym in books.symbols:
        try:
            history = ex.fetch_orders(sym, since=rep.since)
            mine = ex.fetch_my_trades(sym, since=rep.since)
        except ExchangeError as exc:
            rep.errors.append(f"{sym}: order history unavailable: {exc}")
            continue
        readable.add(sym)
        orders.update((o.id, o) for o in history)
        trades += mine
    try:
        open_orders = ex.fetch_open_orders()
    except ExchangeError as exc:
        rep.errors.append(f"open orders unavailable: {exc}")
        open_orders = []
    for o in open_orders:
        orders.setdefault(o.id, o)  # the history's copy is as fresh; keep one per id
    return orders, trades, readable


def _match_orders(
    books: Books, orders: dict[str, OrderInfo], rep: ReconcileReport
) -> dict[str, list[OrderInfo]]:
    """Place every exchange order on an intent (by order id, else clientOrderId); the rest
    are orphans (our prefix) or foreign. Returns intent_id -> its exchange orders."""
    by_coid = {r.client_order_id: r for r in books.records.values()}
    by_oid = {r.order_id: r for r in books.records.values() if r.order_id}
    matched: dict[str, list[OrderInfo]] = defaultdict(list)
    for o in sorted(orders.values(), key=lambda o: (o.timestamp, o.id)):
        rec = by_oid.get(o.id) or by_coid.get(o.client_order_id)
        if rec is not None:
            matched[rec.intent.intent_id].append(o)
        elif o.client_order_id.startswith(CLIENT_ID_PREFIX) and o.status != "open" and not o.filled:
            # over without a fill: nothing moved (e.g. an orphan a person cancelled)
            rep.notes.append(f"order {o.id} ({o.client_order_id}) unknown, {o.status} unfilled")
        elif o.client_order_id.startswith(CLIENT_ID_PREFIX):
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
        elif o.status == "open":
            rep.foreign_open_orders += 1
    for iid, found in matched.items():
        rep.evidence.orders[iid] = found
        if len(found) > 1:
            rec = books.records[iid]
            rep.duplicate_orders.append(
                {
                    "intent_id": iid,
                    "client_order_id": rec.client_order_id,
                    "order_ids": [o.id for o in found],
                }
            )
    return matched


def _check_orders(
    books: Books,
    matched: dict[str, list[OrderInfo]],
    orders: dict[str, OrderInfo],
    readable: set[str],
    rep: ReconcileReport,
    visibility_ms: int,
) -> None:
    """Live in the books against open on the exchange, both ways; an order the books
    sent that the exchange's history lacks."""
    for rec in books.records.values():
        found = matched.get(rec.intent.intent_id, [])
        is_open = any(o.status == "open" for o in found)
        if rec.live and found and not is_open:
            _missing(rec, rep, f"{rec.state} in our books, not open on the exchange")
        elif is_open and not rec.live:
            _missing(rec, rep, f"open on the exchange, {rec.state} in our books")
        elif found and not rec.live and (rec.state is S.FAILED_FINAL or not rec.done):
            o = found[0]
            detail = f"{o.status} on the exchange (filled {o.filled}), {rec.state} in our books"
            if rec.done and not any(x.filled for x in found):  # given up, and nothing moved
                rep.notes.append(f"{rec.client_order_id}: {detail}")
            else:
                _missing(rec, rep, detail)
        elif found and rec.order_id and rec.order_id not in {o.id for o in found}:
            ids = ", ".join(o.id for o in found)
            _missing(rec, rep, f"order {rec.order_id} in our books, the exchange's is {ids}")
        elif (
            not found
            and rec.order_id
            and rec.order_id not in orders
            and _visible(rec, rep, readable, visibility_ms)
        ):
            _missing(rec, rep, f"{rec.state} in our books, not on the exchange")


def _visible(rec: OrderRecord, rep: ReconcileReport, readable: set[str], window: int) -> bool:
    """Would the exchange's history we read show this order if it existed? It was read
    from the look-back on, and past the visibility window from its intent and from the
    end of its last send that ended unknown (``unknown_since``, the router's anchor)."""
    created = rec.intent.created_ms
    sent = rec.unknown_since if rec.unknown_since is not None else created
    return (
        rec.intent.symbol in readable
        and created >= rep.since + CLOCK_SKEW_MS
        and max(sent, created) <= rep.ts - window
    )


def _missing(rec: OrderRecord, rep: ReconcileReport, detail: str) -> None:
    iid, coid = rec.intent.intent_id, rec.client_order_id
    rep.missing_orders.append({"intent_id": iid, "client_order_id": coid, "detail": detail})


def _check_fills(
    books: Books, matched: dict[str, list[OrderInfo]], trades: list[TradeInfo], rep: ReconcileReport
) -> None:
    """Every fill of one of our orders is booked, every booked fill of an order we read
    is the exchange's, and the filled amounts agree."""
    # By order id only: the exchange orders placed on intents, and the order ids the
    # books hold (an order over and older than the look-back, whose late fill is in it).
    owner = {r.order_id: iid for iid, r in books.records.items() if r.order_id}
    owner.update((o.id, iid) for iid, found in matched.items() for o in found)
    orphan_ids = {r["order_id"] for r in rep.orphaned_orders}
    per_intent: dict[str, list[TradeInfo]] = defaultdict(list)
    for t in trades:
        iid = owner.get(t.order_id)
        if iid is not None:
            per_intent[iid].append(t)
        elif t.order_id in orphan_ids or t.client_order_id.startswith(CLIENT_ID_PREFIX):
            detail = "fill of an order we do not know"
            rep.unbooked_fills.append({"trade_id": t.id, "order_id": t.order_id, "detail": detail})
    for iid, found in matched.items():
        rec = books.records[iid]
        fills = per_intent.get(iid, [])
        rep.evidence.trades[iid] = fills
        _fills_of(rec, found, fills, rep)


def _fills_of(
    rec: OrderRecord, found: Sequence[OrderInfo], fills: list[TradeInfo], rep: ReconcileReport
) -> None:
    """One intent's fills against its exchange orders'. Booked fills are checked only
    when the look-back covers the orders' whole life (an order resting since before it
    has older fills we did not read)."""
    iid = rec.intent.intent_id
    theirs = {t.id for t in fills}
    missed = [t for t in fills if t.id not in rec.seen_trades]
    for t in missed:
        rep.unbooked_fills.append({"trade_id": t.id, "intent_id": iid, "amount": str(t.amount)})
    if any(o.timestamp < rep.since for o in found):
        return
    for trade_id in sorted(rec.seen_trades - theirs):
        rep.phantom_fills.append(
            {"trade_id": trade_id, "intent_id": iid, "order_id": rec.order_id or found[0].id}
        )
    exchange_filled = sum((o.filled for o in found), ZERO)
    explained = rec.filled + sum((t.amount for t in missed), ZERO)
    if exchange_filled != explained:
        rep.filled_differences.append(
            {
                "intent_id": iid,
                "client_order_id": rec.client_order_id,
                "exchange": str(exchange_filled),
                "ours": str(rec.filled),
            }
        )
