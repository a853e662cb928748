"""An independent check of a session's books against the exchange's own records, used by
scenario D of `fsmtrader smoke`, the crash torture and the recovery tests: the product's
two-way reconcile over the whole history (no second copy of its rules), plus what only an
oracle can know.

Duplicates: more than one exchange order for one intent (a venue accepts a reused
clientOrderId once the first order is over), more buy legs for one decision than
escalation steps, or more bought than the budget allows. Orphans: exchange orders the
books cannot place, and orders whose liveness the books and the exchange disagree on.
Lost fills: exchange fills of our orders that the books did not book. Drift: booked
fills the exchange lacks, filled amount, cost and fees per order, the fill table against
the order records, reservations against open buys, positions against the exchange's
fills, balances, and realised PnL recomputed from the exchange's fills. Fees may be in
the quote, the base asset (it shrinks what is held) or a third asset (BNB: it costs the
books nothing and leaves the account's BNB).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from fsmtrader.clock import SimClock
from fsmtrader.config import Settings
from fsmtrader.exchange.types import Exchange, TradeInfo
from fsmtrader.markets import MarketFilters
from fsmtrader.orders.states import TERMINAL
from fsmtrader.portfolio import Portfolio
from fsmtrader.reconcile import Account, ReconcileReport, reconcile
from fsmtrader.reconcile.account import BASELINE_META, decode_outside, fees_elsewhere
from fsmtrader.session import open_sim_exchange, session_filters
from fsmtrader.state.books import Books
from fsmtrader.state.delta import Snapshot
from fsmtrader.state.fill import BookedFill
from fsmtrader.store.sqlite import SqliteStore, store_path

ZERO = Decimal(0)
MAX_LAG_MS = 700_000  # beyond the longest visibility lag a setting allows (600 s)


class Verdict(NamedTuple):
    """The oracle's verdict: every count is 0 (drift 0) for a sound session."""

    duplicates: int
    orphans: int
    drift: Decimal
    lost_fills: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.orphans or self.drift or self.lost_fills)

    def last_line(self) -> str:
        return (
            f"duplicates={self.duplicates} orphans={self.orphans} drift={self.drift} "
            f"lost_fills={self.lost_fills}"
        )


@dataclass
class SessionBooks:
    """The bot's committed state, read once from its database, with its markets."""

    snap: Snapshot
    portfolio: Portfolio
    fills: list[BookedFill]
    filters: dict[str, MarketFilters]

    def books(self) -> Books:
        records = {r.intent.intent_id: r for r in self.snap.orders}
        return Books(records, self.portfolio, list(self.filters), self.filters)


def read_state(state: Path, s: Settings, filters: dict[str, MarketFilters]) -> SessionBooks:
    """The books in ``state`` (read-only; no lock: the bot must be stopped)."""
    store = SqliteStore(store_path(state, s.database_url), create=False)
    try:
        snap = store.load()
        fills = store.fills()
    finally:
        store.close()
    if snap.portfolio is None:
        raise ValueError(f"{state}: the database holds no portfolio")
    return SessionBooks(snap, snap.portfolio, fills, filters)


def verify_session(state: Path, s: Settings) -> Verdict:
    """A paper session: its books against its own simulated exchange file (exact)."""
    filters = session_filters(s)
    books = read_state(state, s, filters)
    ex = open_sim_exchange(s, state, filters, SimClock(after_all(books)))
    try:
        return verify_books(books, ex, s, exact=True)
    finally:
        ex.close()


def verify_live_state(state: Path, exchange: Exchange, s: Settings) -> Verdict:
    """A live session's state directory against the venue it traded on (e.g. the ccxt
    adapter on ``fsmtrader sim-server``)."""
    markets = exchange.load_markets()
    filters = {sym: markets[sym] for sym in s.market.symbols}
    return verify_books(read_state(state, s, filters), exchange, s)


def verify_books(
    books: SessionBooks, exchange: Exchange, s: Settings, *, exact: bool = False
) -> Verdict:
    """The product's reconcile over the whole history, then the oracle's own checks."""
    rep = _reconcile(books, exchange, exact)
    problems = [f"reconcile: {n}" for n in rep.notes] + [f"reconcile: {e}" for e in rep.errors]
    dup = len(rep.duplicate_orders) + legs_and_budget(books, rep, s, problems)
    orphans = len(rep.orphaned_orders) + len(rep.missing_orders)
    lost = len(rep.unbooked_fills)
    problems += [f"duplicate: {r}" for r in rep.duplicate_orders]
    problems += [f"orphan: {r}" for r in rep.orphaned_orders]
    problems += [f"orphan: {r}" for r in rep.missing_orders]
    problems += [f"lost fill: {r}" for r in rep.unbooked_fills]
    drift = _reported_drift(rep, problems)
    drift += order_drift(books, rep, problems) + fill_table_drift(books, problems)
    drift += reservation_drift(books, problems) + holdings_drift(books, rep, problems)
    drift += pnl_drift(books, rep, problems)
    return Verdict(dup, orphans, drift, lost, problems)


def _reconcile(books: SessionBooks, exchange: Exchange, exact: bool) -> ReconcileReport:
    meta = books.snap.meta
    fees = fees_elsewhere(books.fills, books.filters, books.portfolio.quote)
    account = None
    if BASELINE_META in meta:
        account = Account(decode_outside(meta[BASELINE_META]), fees)
    elif exact:
        account = Account({}, fees)
    return reconcile(
        books.books(),
        exchange,
        now_ms=after_all(books),
        exact_balances=exact,
        since=0,
        account=account,
    )


def after_all(books: SessionBooks) -> int:
    """A time at which the exchange shows every order the books know (past any venue's
    visibility lag), and not so late that a venue's history window has dropped them."""
    created = [max(r.intent.created_ms, r.unknown_since or 0) for r in books.snap.orders]
    last_bar = int(books.snap.meta.get("last_bar_ts", "0") or 0)
    return max([*created, last_bar], default=0) + MAX_LAG_MS


def _reported_drift(rep: ReconcileReport, problems: list[str]) -> Decimal:
    drift = Decimal(len(rep.phantom_fills))
    problems += [f"drift: booked fill not on the exchange: {r}" for r in rep.phantom_fills]
    for f in rep.filled_differences:
        drift += abs(Decimal(f["exchange"]) - Decimal(f["ours"]))
        problems.append(f"drift: filled {f}")
    for b in rep.balance_differences:
        drift += abs(Decimal(b["diff"]))
        problems.append(f"drift: balance {b}")
    return drift


def legs_and_budget(
    books: SessionBooks, rep: ReconcileReport, s: Settings, problems: list[str]
) -> int:
    """What a lost state would do is send another leg for the same decision: decisions
    whose buy orders exceed the escalation steps, or whose buys exceed the budget."""
    legs: dict[str, set[int]] = defaultdict(set)
    spent: dict[str, Decimal] = defaultdict(Decimal)
    recs = {r.intent.intent_id: r for r in books.snap.orders}
    for iid, orders in rep.evidence.orders.items():
        it = recs[iid].intent
        for o in orders:
            if o.side == "buy":
                legs[it.decision_id].add(it.leg)
                spent[it.decision_id] += o.cost
    dup = 0
    for did, used in legs.items():
        if len(used) > len(s.entry.buy_escalation_bps):
            dup += 1
            problems.append(f"duplicate: {did} has {len(used)} buy legs")
    limit = s.risk.position_size * Decimal("1.01") + Decimal(10)
    for did, cost in spent.items():
        if cost > limit:
            dup += 1
            problems.append(f"duplicate: {did} bought {cost} > {limit}")
    return dup


def fee_in_quote(t: TradeInfo, m: MarketFilters) -> Decimal:
    """A fill's fee valued in quote as the books value it: quote as is, base at the fill's
    price, a third asset (BNB) at 0 (the account pays it, not the books)."""
    if t.fee_currency == m.base:
        return t.fee * t.price
    if t.fee_currency and t.fee_currency != m.quote:
        return ZERO
    return t.fee


def order_drift(books: SessionBooks, rep: ReconcileReport, problems: list[str]) -> Decimal:
    """Cost and fees per order: the books' against the sum of the exchange's fills."""
    drift = ZERO
    for rec in books.snap.orders:
        trades = rep.evidence.trades.get(rec.intent.intent_id, [])
        if not trades and not rec.filled:
            continue
        m = books.filters[rec.intent.symbol]
        cost = sum((t.price * t.amount for t in trades), ZERO)
        fee = sum((fee_in_quote(t, m) for t in trades), ZERO)
        for what, ours, theirs in (("cost", rec.cost, cost), ("fee", rec.fee_quote, fee)):
            if ours != theirs:
                drift += abs(ours - theirs)
                problems.append(f"drift: {rec.client_order_id} {what} {ours} != exchange {theirs}")
    return drift


def fill_table_drift(books: SessionBooks, problems: list[str]) -> Decimal:
    """The fill table and the order records name the same fills (both are the books)."""
    table: dict[str, set[str]] = defaultdict(set)
    for f in books.fills:
        table[f.intent_id].add(f.trade_id)
    drift = ZERO
    for rec in books.snap.orders:
        got = table.pop(rec.intent.intent_id, set())
        if got != rec.seen_trades:
            drift += len(got ^ rec.seen_trades)
            problems.append(
                f"drift: {rec.client_order_id} fill table {sorted(got)} "
                f"!= order record {sorted(rec.seen_trades)}"
            )
    for iid, ids in table.items():
        drift += len(ids)
        problems.append(f"drift: fills {sorted(ids)} of {iid}, an intent the books lack")
    return drift


def reservation_drift(books: SessionBooks, problems: list[str]) -> Decimal:
    """Reservations against the open buy intents: the same set, the same amounts."""
    pf, drift = books.portfolio, ZERO
    open_buys = {
        r.intent.intent_id: r
        for r in books.snap.orders
        if r.intent.side == "buy" and r.state not in TERMINAL
    }
    if set(pf.reserved) != set(open_buys):
        drift += 1
        problems.append(
            f"drift: reservations {sorted(pf.reserved)} != open buys {sorted(open_buys)}"
        )
    for iid, amount in pf.reserved.items():
        r = open_buys.get(iid)
        if r is not None:
            expect = r.reserved - r.cost - r.fee_quote
            if amount != expect:
                drift += abs(amount - expect)
                problems.append(f"drift: reservation {iid} {amount} != {expect}")
    return drift


def base_received(t: TradeInfo, m: MarketFilters) -> Decimal:
    """What a fill moves of the base asset: a buy's amount less a base-asset fee, minus a
    sell's amount (and a base fee charged on it)."""
    fee = t.fee if t.fee_currency == m.base else ZERO
    return t.amount - fee if t.side == "buy" else -t.amount - fee


def holdings_drift(books: SessionBooks, rep: ReconcileReport, problems: list[str]) -> Decimal:
    """Each position (and dust) against the base the exchange's fills of our orders moved."""
    pf, drift = books.portfolio, ZERO
    delta: dict[str, Decimal] = defaultdict(Decimal)
    for trades in rep.evidence.trades.values():
        for t in trades:
            delta[t.symbol] += base_received(t, books.filters[t.symbol])
    for sym in books.filters:
        pos = pf.positions.get(sym)
        ours = (pos.qty if pos else ZERO) + pf.dust.get(sym, ZERO)
        if ours != delta[sym]:
            drift += abs(ours - delta[sym])
            problems.append(f"drift: {sym} position {ours} != exchange fills {delta[sym]}")
    return drift


def pnl_drift(books: SessionBooks, rep: ReconcileReport, problems: list[str]) -> Decimal:
    """Realised PnL recomputed from the exchange's fills of each closed trade."""
    pf = books.portfolio
    decision_of = {r.intent.intent_id: r.intent.decision_id for r in books.snap.orders}
    per: dict[str, list[TradeInfo]] = defaultdict(list)
    for iid, trades in rep.evidence.trades.items():
        per[decision_of[iid]] += trades
    pnl = ZERO
    for tr in pf.trades:
        m = books.filters[tr.symbol]
        legs = per[tr.decision_id]
        buys = [t for t in legs if t.side == "buy"]
        sells = [t for t in legs if t.side == "sell"]
        bought = sum((base_received(t, m) for t in buys), ZERO)
        sold = sum((t.amount for t in sells), ZERO)
        quote_fees = (t.fee for t in buys if t.fee_currency == m.quote)
        basis = sum((t.price * t.amount for t in buys), ZERO) + sum(quote_fees, ZERO)
        proceeds = sum((t.price * t.amount - fee_in_quote(t, m) for t in sells), ZERO)
        pnl += proceeds - (basis * sold / bought if bought else ZERO)
    if abs(pnl - pf.realized_pnl) > Decimal("1e-8"):
        problems.append(f"drift: realised PnL {pf.realized_pnl} != recomputed {pnl}")
        return abs(pnl - pf.realized_pnl)
    return ZERO
