"""Balances both ways: for every asset the bot touches (the quote, each traded base, any
asset a fee was paid in), the exchange's total must be what the books account for.

Expected = ours (cash + reservations for the quote; position + dust for a base) + the
outside holdings recorded at the first start - fees paid in a third asset (BNB).

Tolerance: paper (the bot owns the simulated account) 1e-8, the exchange's fee quantum.
Live: 1e-8 for a fee asset; one amount step of the market for a base asset (what a
venue's own rounding of a base-asset fee can leave behind); 0.01 of the quote (a cent:
venues round fee valuations). A surplus beyond it is flagged as much as a deficit.
Without a recorded baseline (a live session begun before baselines were recorded) only
a deficit can be judged: the account may hold more than the bot manages.
"""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.errors import ExchangeError
from fsmtrader.exchange.types import Exchange
from fsmtrader.reconcile.account import Account, holdings
from fsmtrader.reconcile.report import ReconcileReport
from fsmtrader.state.books import Books

ZERO = Decimal(0)
TOLERANCE = Decimal("1e-8")
QUOTE_TOLERANCE_LIVE = Decimal("0.01")


def tolerances(books: Books, exact: bool) -> dict[str, Decimal]:
    """Per asset, the difference still taken as a match (see the module's docstring)."""
    if exact:
        return {}
    tol = {books.portfolio.quote: QUOTE_TOLERANCE_LIVE}
    for sym in books.symbols:
        m = books.filters[sym]
        tol[m.base] = max(tol.get(m.base, ZERO), m.step_size, TOLERANCE)
    return tol


def compare_balances(
    books: Books, ex: Exchange, rep: ReconcileReport, exact: bool, account: Account | None
) -> None:
    try:
        bal = ex.fetch_balance()
    except ExchangeError as exc:
        rep.errors.append(f"balances unavailable: {exc}")
        return
    ours = holdings(books)
    both_ways = exact or account is not None
    if account is None:
        account = Account()
        if not exact:
            rep.notes.append("no outside holdings recorded: only a deficit is checked")
    expected = dict(ours)
    for asset, amount in account.outside.items():
        if asset in expected:
            expected[asset] += amount
    for asset, fee in account.fees_elsewhere.items():
        expected[asset] = expected.get(asset, ZERO) + account.outside.get(asset, ZERO) - fee
    tol = tolerances(books, exact)
    for asset, mine in sorted(expected.items()):
        b = bal.get(asset)
        theirs = b.total if b is not None else ZERO
        diff = theirs - mine
        limit = tol.get(asset, TOLERANCE) if both_ways else TOLERANCE
        bad = abs(diff) > limit if both_ways else diff < -limit
        if bad:
            rep.balance_differences.append(
                {"asset": asset, "exchange": str(theirs), "ours": str(mine), "diff": str(diff)}
            )
