"""Reconcile a running session: compare, book what is explainable, compare again.

Used on every start (after the router's recovery) and by ``fsmtrader reconcile``. The
first comparison's evidence goes to ``orders.found``; if it booked anything, the symbols
get the news, the books are committed, and a second comparison says what is left: only
what nothing explains, which the caller halts on. Not imported by the package (it
depends on the engine and the router, which reconcile itself must not).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from fsmtrader.engine import Engine
from fsmtrader.errors import ExchangeError
from fsmtrader.orders.found import book_found
from fsmtrader.reconcile.account import (
    BASELINE_META,
    Account,
    decode_outside,
    encode_outside,
    fees_elsewhere,
    fresh,
    outside_of,
)
from fsmtrader.reconcile.checks import VISIBILITY_MS, reconcile
from fsmtrader.reconcile.report import ReconcileReport
from fsmtrader.store.sqlite import SqliteStore

log = logging.getLogger("fsmtrader.reconcile")


def reconcile_and_book(
    engine: Engine,
    store: SqliteStore,
    meta: dict[str, str],
    *,
    exact: bool,
    visibility_ms: int = VISIBILITY_MS,
) -> ReconcileReport:
    """Reconcile ``engine``'s books with its exchange and book the explainable part.
    ``meta`` is the session's saved meta (it gains the outside holdings on a first start);
    ``visibility_ms`` is the venue's visibility window in force."""
    outside = outside_holdings(engine, store, meta)
    first = _compare(engine, store, outside, exact, visibility_ms)
    changed = book_found(engine.router, first)
    if not changed:
        return first
    for rec in changed:
        engine.on_order_update(rec)
    engine.commit()
    final = _compare(engine, store, outside, exact, visibility_ms)
    final.found_fills = first.found_fills
    final.corrected_orders = first.corrected_orders
    return final


def _compare(
    engine: Engine,
    store: SqliteStore,
    outside: dict[str, Decimal] | None,
    exact: bool,
    visibility_ms: int,
) -> ReconcileReport:
    account = None
    if outside is not None:
        fees = fees_elsewhere(store.fills(), engine.filters, engine.portfolio.quote)
        account = Account(outside=outside, fees_elsewhere=fees)
    return reconcile(
        engine.books(),
        engine.exchange,
        now_ms=engine.clock.now_ms(),
        exact_balances=exact,
        account=account,
        visibility_ms=visibility_ms,
    )


def outside_holdings(
    engine: Engine, store: SqliteStore, meta: dict[str, str]
) -> dict[str, Decimal] | None:
    """The account's holdings beyond the books: recorded at the session's first start
    (before any order) and read back ever after; None for books begun without them."""
    if BASELINE_META in meta:
        return dict(decode_outside(meta[BASELINE_META]))
    books = engine.books()
    if not fresh(books):
        return None
    try:
        balances = engine.exchange.fetch_balance()
    except ExchangeError as exc:
        log.warning("outside holdings not recorded yet: %s", exc)
        return None
    outside = outside_of(books, balances)
    text = encode_outside(outside)
    store.set_meta(BASELINE_META, text)
    meta[BASELINE_META] = text
    return dict(outside)
