"""The books of a live state directory against the exchange, asked through the real
client (every order since the start, every fill by order id, the balances) and the
server's own oracle (``GET /__sim/state``).

Both ways: every exchange order known to the bot (else an orphan), every order the bot
sent present on the exchange, every exchange fill booked (else a lost fill), every
booked fill the exchange's, each order's filled amount equal on both sides, base and
quote balances moved by exactly what the books moved them (surplus or deficit).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.config import Settings
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.exchange.types import TradeInfo
from fsmtrader.store.sqlite import SqliteStore, store_path
from fsmtrader_testing.torture.report import Verdict
from fsmtrader_testing.torture.server import API_KEY, API_SECRET, SimServer
from fsmtrader_testing.verify import Books, duplicates, orphaned, pnl_drift, reservation_drift

ZERO = Decimal(0)


def verify_live(
    state: Path, s: Settings, server: SimServer, baseline: dict[str, Decimal]
) -> Verdict:
    """Check the books in ``state`` against ``server``; ``baseline`` is the account's
    balances before the bot's first start (the account holds more than the bot trades)."""
    books = read_live_books(state, s, server)
    v = Verdict(duplicates=duplicates(books, s), orphans=orphaned(books))
    v.drift = reservation_drift(books) + pnl_drift(books) + balance_drift(books, s, baseline)
    v.drift += booked_not_made(books)
    v.lost_fills = lost_fills(books)
    v.notes = books.notes
    oracle = server.state()["orders"]
    if len(oracle) != len(books.orders):
        v.orphans += 1
        v.notes.append(f"orphan: the server has {len(oracle)} orders, history {len(books.orders)}")
    return v


def read_live_books(state: Path, s: Settings, server: SimServer) -> Books:
    store = SqliteStore(store_path(state, s.database_url), create=False)
    try:
        snap, fills = store.load(), store.fills()
    finally:
        store.close()
    if snap.portfolio is None:
        raise ValueError(f"{state}: the database holds no portfolio")
    options = CcxtOptions(
        s.exchange.name,
        api_key=API_KEY,
        api_secret=API_SECRET,
        base_url=server.base_url,
        timeout_ms=10_000,
        rate_limit=False,
    )
    symbols = list(s.market.symbols)
    with CcxtExchange(options, inline=True) as ex:
        ex.load_markets()
        orders = {o.client_order_id: o for sym in symbols for o in ex.fetch_orders(sym, 0)}
        trades: list[TradeInfo] = []
        for o in orders.values():
            if o.filled > 0:
                got = ex.fetch_order_trades(o.id, o.symbol)
                trades += [_with_coid(t, o.client_order_id) for t in got]
        balances = ex.fetch_balance()
    return Books(snap, snap.portfolio, fills, symbols, orders, trades, balances)


def _with_coid(t: TradeInfo, coid: str) -> TradeInfo:
    """Binance's trades carry no clientOrderId; the order they belong to has it."""
    if t.client_order_id == coid:
        return t
    return TradeInfo(
        t.id, t.order_id, coid, t.symbol, t.side, t.price, t.amount, t.fee,
        t.fee_currency, t.timestamp, t.maker,
    )  # fmt: skip


def lost_fills(books: Books) -> int:
    """Exchange fills of our orders the books do not hold, and orders the exchange
    filled further than the books say."""
    intent_of = {r.client_order_id: r.intent.intent_id for r in books.snap.orders}
    booked = {(f.intent_id, f.trade_id) for f in books.fills}
    lost = 0
    for t in books.trades:
        if (intent_of.get(t.client_order_id, "?"), t.id) not in booked:
            lost += 1
            books.notes.append(
                f"lost fill: {t.id} of {t.client_order_id} ({t.side} {t.amount} {t.symbol} "
                f"@ {t.price}) not booked"
            )
    ours: dict[str, Decimal] = defaultdict(Decimal)
    for f in books.fills:
        ours[f.intent_id] += Decimal(f.amount)
    for coid, o in books.orders.items():
        iid = intent_of.get(coid)
        if iid is not None and o.filled > ours[iid]:
            lost += 1
            books.notes.append(
                f"lost fill: {coid} filled {o.filled} on the exchange, {ours[iid]} booked"
            )
    return lost


def booked_not_made(books: Books) -> Decimal:
    """Booked fills the exchange does not have (by trade id), and orders the books hold
    as filled further than the exchange did."""
    theirs = {t.id for t in books.trades}
    drift = ZERO
    for f in books.fills:
        if f.trade_id not in theirs:
            drift += 1
            books.notes.append(
                f"drift: booked fill {f.trade_id} of {f.intent_id} not on the exchange"
            )
    filled = {coid: o.filled for coid, o in books.orders.items()}
    for r in books.snap.orders:
        have = filled.get(r.client_order_id, ZERO)
        if r.filled > have:
            drift += r.filled - have
            books.notes.append(
                f"drift: {r.client_order_id} filled {r.filled} in the books, {have} on the exchange"
            )
    return drift


def balance_drift(books: Books, s: Settings, baseline: dict[str, Decimal]) -> Decimal:
    """What the account gained or lost since ``baseline``, asset by asset, against what
    the books moved: positions and dust for each base, cash, reservations and the
    starting budget for the quote. Exact: fees are in the quote on this server."""
    pf, drift = books.portfolio, ZERO
    moved: dict[str, Decimal] = {}
    for sym in books.symbols:
        pos = pf.positions.get(sym)
        base = sym.split("/")[0]
        moved[base] = moved.get(base, ZERO) + (pos.qty if pos else ZERO) + pf.dust.get(sym, ZERO)
    moved[s.market.quote] = pf.cash + pf.reserved_total - _budget(s, baseline)
    for asset, ours in moved.items():
        bal = books.balances.get(asset)
        theirs = (bal.total if bal else ZERO) - baseline.get(asset, ZERO)
        if theirs != ours:
            drift += abs(theirs - ours)
            books.notes.append(
                f"drift: {asset} moved {theirs} on the exchange, {ours} in the books"
            )
    return drift


def _budget(s: Settings, baseline: dict[str, Decimal]) -> Decimal:
    """The bot's starting cash: the configured balance, or less if the account had less."""
    return min(s.market.starting_balance, baseline.get(s.market.quote, ZERO))


def closed_trades(state: Path) -> int:
    """Closed trades in the books, read-only while the bot may be writing."""
    path = state / "fsmtrader.db"
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM trades").fetchone()[0])
    except sqlite3.Error:  # busy or not created yet: the next look will tell
        return 0


def balances_now(server: SimServer) -> dict[str, Decimal]:
    """The account's balances (free + used) from the server's oracle."""
    raw: dict[str, Any] = server.state()["balances"]
    return {a: Decimal(b["free"]) + Decimal(b["used"]) for a, b in raw.items()}
