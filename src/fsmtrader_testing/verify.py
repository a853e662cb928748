"""An independent check of a paper session: the bot's database against the simulated
exchange's own records (used by the crash-torture harness and the recovery tests).

Duplicates: more buy legs for one decision than escalation steps, or more bought than the
budget allows. Orphans: exchange orders the bot does not know, open ones it thinks are
over, or ones it sent that the exchange does not have. Drift: reservations vs open buy
intents, positions vs exchange fills, fills unbooked or booked but not the exchange's, the
quote balance, and realised PnL recomputed from the exchange's fills.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from fsmtrader.clock import SimClock
from fsmtrader.config import Settings
from fsmtrader.exchange.types import Balance, OrderInfo, TradeInfo
from fsmtrader.orders.states import TERMINAL
from fsmtrader.portfolio import Portfolio
from fsmtrader.session import open_sim_exchange, session_filters
from fsmtrader.state.delta import Snapshot
from fsmtrader.state.fill import BookedFill
from fsmtrader.store.sqlite import SqliteStore, store_path

ZERO = Decimal(0)


@dataclass
class Books:
    """Both sides, read once: the bot's committed state and the exchange's records."""

    snap: Snapshot
    portfolio: Portfolio
    fills: list[BookedFill]
    symbols: list[str]
    orders: dict[str, OrderInfo]  # every exchange order, by client id
    trades: list[TradeInfo]
    balances: dict[str, Balance]
    notes: list[str] = field(default_factory=list)


def verify_session(state: Path, s: Settings) -> tuple[int, int, Decimal, list[str]]:
    """Compare the bot's books with the exchange's own records: (duplicates, orphans,
    drift, notes). All three numbers are 0 for a sound session."""
    books = read_books(state, s)
    dup = duplicates(books, s)
    orphans = orphaned(books)
    drift = reservation_drift(books) + holdings_drift(books, s.market.quote) + pnl_drift(books)
    return dup, orphans, drift, books.notes


def read_books(state: Path, s: Settings) -> Books:
    store = SqliteStore(store_path(state, s.database_url), create=False)
    snap = store.load()
    fills = store.fills()
    store.close()
    if snap.portfolio is None:
        raise ValueError(f"{state}: the database holds no portfolio")
    filters = session_filters(s)
    ex = open_sim_exchange(s, state, filters, SimClock(0))
    try:
        orders = ex.orders_by_client_id()
        trades = [t for sym in filters for t in ex.fetch_my_trades(sym)]
        balances = ex.fetch_balance()
    finally:
        ex.close()
    return Books(snap, snap.portfolio, fills, list(filters), orders, trades, balances)


def duplicates(books: Books, s: Settings) -> int:
    """An intent with two exchange orders is impossible by clientOrderId; what a lost state
    would do is send another leg for the same decision. Count decisions whose buy orders
    exceed the escalation steps, or whose buys exceed the position budget."""
    recs = {r.client_order_id: r for r in books.snap.orders}
    legs: dict[str, set[int]] = defaultdict(set)
    spent: dict[str, Decimal] = defaultdict(Decimal)
    for coid, o in books.orders.items():
        rec = recs.get(coid)
        if rec is not None and o.side == "buy":
            legs[rec.intent.decision_id].add(rec.intent.leg)
            spent[rec.intent.decision_id] += o.cost
    dup = 0
    for did, used in legs.items():
        if len(used) > len(s.entry.buy_escalation_bps):
            dup += 1
            books.notes.append(f"duplicate: {did} has {len(used)} buy legs")
    limit = s.risk.position_size * Decimal("1.01") + Decimal(10)
    for did, cost in spent.items():
        if cost > limit:
            dup += 1
            books.notes.append(f"duplicate: {did} bought {cost} > {limit}")
    return dup


def orphaned(books: Books) -> int:
    """Exchange orders the bot does not know, open ones it thinks are over, and orders the
    bot sent (it holds their exchange id) that the exchange does not have."""
    recs = {r.client_order_id: r for r in books.snap.orders}
    orphans = 0
    for coid, o in books.orders.items():
        rec = recs.get(coid)
        if rec is None:
            orphans += 1
            books.notes.append(f"orphan: exchange order {o.id} {coid} unknown to the bot")
        elif o.status == "open" and rec.state in TERMINAL:
            orphans += 1
            books.notes.append(f"orphan: {coid} open on the exchange, {rec.state} in the bot")
    for rec in books.snap.orders:  # the other way: sent, by the bot's books, but not there
        if rec.order_id and rec.client_order_id not in books.orders:
            orphans += 1
            books.notes.append(
                f"orphan: {rec.client_order_id} ({rec.order_id}) in the bot, not on the exchange"
            )
    return orphans


def reservation_drift(books: Books) -> Decimal:
    """Reservations against the open buy intents: the same set, the same amounts."""
    pf, drift = books.portfolio, ZERO
    open_buys = {
        r.intent.intent_id: r
        for r in books.snap.orders
        if r.intent.side == "buy" and r.state not in TERMINAL
    }
    if set(pf.reserved) != set(open_buys):
        drift += 1
        books.notes.append(
            f"drift: reservations {sorted(pf.reserved)} != open buys {sorted(open_buys)}"
        )
    for iid, amount in pf.reserved.items():
        r = open_buys.get(iid)
        if r is not None:
            expect = r.reserved - r.cost - r.fee_quote
            if amount != expect:
                drift += abs(amount - expect)
                books.notes.append(f"drift: reservation {iid} {amount} != {expect}")
    return drift


def holdings_drift(books: Books, quote_asset: str) -> Decimal:
    """Positions against the exchange's fills, every fill booked and every booked fill the
    exchange's, the quote balance."""
    pf, drift = books.portfolio, ZERO
    by_order = {o.id: o for o in books.orders.values()}
    base_delta: dict[str, Decimal] = defaultdict(Decimal)
    for t in books.trades:
        base_delta[t.symbol] += t.amount if t.side == "buy" else -t.amount
    for sym in books.symbols:
        pos = pf.positions.get(sym)
        ours = (pos.qty if pos else ZERO) + pf.dust.get(sym, ZERO)
        if ours != base_delta[sym]:
            drift += abs(ours - base_delta[sym])
            books.notes.append(f"drift: {sym} position {ours} != exchange fills {base_delta[sym]}")
    booked = {(f.intent_id, f.trade_id) for f in books.fills}
    coid_to_intent = {r.client_order_id: r.intent.intent_id for r in books.snap.orders}
    for t in books.trades:
        o = by_order[t.order_id]
        if (coid_to_intent.get(o.client_order_id, "?"), t.id) not in booked:
            drift += 1
            books.notes.append(f"drift: exchange fill {t.id} of {o.client_order_id} not booked")
    theirs_ids = {t.id for t in books.trades}
    for f in books.fills:  # the other way: booked, but not a fill the exchange made
        if f.trade_id not in theirs_ids:
            drift += 1
            books.notes.append(
                f"drift: booked fill {f.trade_id} of {f.intent_id} not on the exchange"
            )
    quote = books.balances.get(quote_asset)
    theirs, ours_q = (quote.total if quote else ZERO), pf.cash + pf.reserved_total
    if theirs != ours_q:
        drift += abs(theirs - ours_q)
        books.notes.append(f"drift: quote balance {theirs} != cash+reserved {ours_q}")
    return drift


def pnl_drift(books: Books) -> Decimal:
    """Realised PnL recomputed from the exchange's fills of each closed trade."""
    pf = books.portfolio
    by_order = {o.id: o for o in books.orders.values()}
    decision_of = {r.client_order_id: r.intent.decision_id for r in books.snap.orders}
    per: dict[str, list[tuple[str, Decimal, Decimal, Decimal]]] = defaultdict(list)
    for t in books.trades:
        owner = decision_of.get(by_order[t.order_id].client_order_id)
        if owner is not None:
            per[owner].append((t.side, t.price, t.amount, t.fee))
    pnl = ZERO
    for tr in pf.trades:
        legs = per[tr.decision_id]
        bought = sum((a for sd, _, a, _ in legs if sd == "buy"), ZERO)
        sold = sum((a for sd, _, a, _ in legs if sd == "sell"), ZERO)
        basis = sum((p * a + f for sd, p, a, f in legs if sd == "buy"), ZERO)
        proceeds = sum((p * a - f for sd, p, a, f in legs if sd == "sell"), ZERO)
        pnl += proceeds - (basis * sold / bought if bought else ZERO)
    if abs(pnl - pf.realized_pnl) > Decimal("1e-8"):
        books.notes.append(f"drift: realised PnL {pf.realized_pnl} != recomputed {pnl}")
        return abs(pnl - pf.realized_pnl)
    return ZERO
