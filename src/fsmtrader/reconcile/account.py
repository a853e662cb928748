"""What an account holds besides the bot's books, so balances can be compared both ways.

Live, the account may hold more than the bot manages (other coins, quote beyond the
bot's budget, BNB for fees). At the session's first start, before any order, those
outside holdings are recorded (exchange total minus the books, per asset) in the store's
meta; from then on ``exchange total = outside + ours - fees paid in assets the books do
not hold`` must hold for every asset the bot touches, a surplus as much as a deficit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from fsmtrader.exchange.types import Balance
from fsmtrader.markets import MarketFilters
from fsmtrader.state.books import Books
from fsmtrader.state.fill import BookedFill

ZERO = Decimal(0)
BASELINE_META = "account_outside"  # the store meta key that holds the outside holdings


@dataclass(frozen=True, slots=True)
class Account:
    """``outside``: per asset, what the account held beyond the books at the first start.
    ``fees_elsewhere``: per asset, fees the booked fills paid in an asset that is neither
    the quote nor the fill's base (BNB on Binance), which the portfolio does not hold."""

    outside: Mapping[str, Decimal] = field(default_factory=dict)
    fees_elsewhere: Mapping[str, Decimal] = field(default_factory=dict)


def holdings(books: Books) -> dict[str, Decimal]:
    """What the books say the account holds of each asset they manage."""
    pf = books.portfolio
    ours: dict[str, Decimal] = {pf.quote: pf.cash + pf.reserved_total}
    for sym in books.symbols:
        base = books.filters[sym].base
        pos = pf.positions.get(sym)
        held = (pos.qty if pos is not None else ZERO) + pf.dust.get(sym, ZERO)
        ours[base] = ours.get(base, ZERO) + held
    return ours


def fresh(books: Books) -> bool:
    """No order, position or dust yet: the books are the starting budget only."""
    pf = books.portfolio
    return not (books.records or pf.positions or pf.dust or pf.reserved)


def outside_of(books: Books, balances: Mapping[str, Balance]) -> dict[str, Decimal]:
    """The outside holdings: exchange total minus the books, for every asset listed."""
    ours = holdings(books)
    assets = set(balances) | set(ours)
    out = {}
    for asset in sorted(assets):
        b = balances.get(asset)
        theirs = b.total if b is not None else ZERO
        out[asset] = theirs - ours.get(asset, ZERO)
    return out


def encode_outside(outside: Mapping[str, Decimal]) -> str:
    return json.dumps({k: str(v) for k, v in sorted(outside.items())}, sort_keys=True)


def decode_outside(text: str) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in json.loads(text).items()}


def fees_elsewhere(
    fills: Iterable[BookedFill], filters: Mapping[str, MarketFilters], quote: str
) -> dict[str, Decimal]:
    """Fees the booked fills paid in a third asset (the portfolio values them at 0 and
    does not hold that asset), per asset."""
    out: dict[str, Decimal] = {}
    for f in fills:
        m = filters.get(f.symbol)
        base = m.base if m is not None else ""
        if f.fee_currency and f.fee_currency not in (quote, base):
            out[f.fee_currency] = out.get(f.fee_currency, ZERO) + Decimal(f.fee)
    return out
