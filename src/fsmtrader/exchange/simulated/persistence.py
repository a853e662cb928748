"""Write-through persistence of a simulated exchange: its parts to rows and back.

The exchange's parts (books, wallets, matcher, order ledger) know nothing of files; the
store (:mod:`.store`) knows rows and JSON, not the exchange's internals. This module is
the one place that converts between the two: each state-changing call commits what it
changed, and an existing file restores the parts in place.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fsmtrader.exchange.simulated.book import Bar, Books, decode_book, encode_book
from fsmtrader.exchange.simulated.matching import Matcher
from fsmtrader.exchange.simulated.orders import OrderLedger, SimOrder
from fsmtrader.exchange.simulated.params import SimParams
from fsmtrader.exchange.simulated.rows import Changes, OrderRow, StoredState
from fsmtrader.exchange.simulated.store import SimStore
from fsmtrader.exchange.simulated.venue import BNB
from fsmtrader.exchange.simulated.wallets import Wallets
from fsmtrader.markets import MarketFilters


class SimFile:
    """An exchange's parts bound to their file. What a commit writes is what changed
    since the last one: new wallets and trades are found by position, bars by identity,
    drawn books through :attr:`Books.drawn`."""

    def __init__(
        self,
        store: SimStore,
        markets: Mapping[str, MarketFilters],
        books: Books,
        wallets: Wallets,
        matcher: Matcher,
        ledger: OrderLedger,
        *,
        fee_asset: str | None = None,
    ) -> None:
        self.store = store
        self._fee_asset = fee_asset  # a third asset fees move (BNB), saved with every trade
        self._markets = markets
        self._books = books
        self._wallets = wallets
        self._matcher = matcher
        self._ledger = ledger
        self._trades_saved = len(matcher.trades)
        self._wallets_saved = len(wallets.by_asset)
        self._bars_saved: dict[str, Bar] = dict(books.bars)  # the bar object last written

    @classmethod
    def open(
        cls,
        path: Path,
        parts: tuple[Mapping[str, MarketFilters], Books, Wallets, Matcher, OrderLedger],
        params: SimParams,
        balances: Mapping[str, Decimal],
    ) -> SimFile:
        """Bind fresh ``parts`` to the file ``path``: create it from them, or restore them
        from an existing one (ValueError, naming the file, if it is not consistent)."""
        markets, books, wallets, matcher, ledger = parts
        initial = Changes(
            core=core(matcher, ledger),
            wallets=[(a, w.free, w.used) for a, w in wallets.by_asset.items()],
            rng=books.rng.getstate(),
        )
        store, state = SimStore.open(
            path,
            markets=markets,
            params=params.file_params(),
            venue=params.venue.identity(),
            seed=params.seed,
            balances=balances,
            initial=initial,
        )
        if state is not None:
            try:
                restore(state, *parts)
            except (KeyError, IndexError, TypeError, ValueError, InvalidOperation) as e:
                store.close()
                raise ValueError(f"{path}: corrupt sim exchange file: {e!r}") from e
        return cls(store, *parts, fee_asset=BNB if params.venue.fee_asset == "bnb" else None)

    def commit(self, symbol: str | None, orders: Sequence[SimOrder] = ()) -> None:
        """Write through what this call changed, in one transaction. A call changes at
        most: ``orders``, the wallets of ``symbol``'s base and quote (plus any wallet
        created since the last commit), the trades appended since then, ``symbol``'s bar
        and book, the books whose depth was drawn since then (with the random state), and
        the counters."""
        books, wallets = self._books, self._wallets.by_asset
        assets: list[str] = []
        if len(wallets) != self._wallets_saved:  # new wallets first, in creation order
            assets.extend(itertools.islice(wallets, self._wallets_saved, None))
        symbols = set(books.drawn)
        if symbol is not None:
            m = self._markets[symbol]
            touched = [m.base, m.quote] + ([self._fee_asset] if self._fee_asset else [])
            assets.extend(a for a in touched if a in wallets and a not in assets)
            symbols.add(symbol)
        trades, saved = self._matcher.trades, self._trades_saved
        new_trades = trades[saved:] if len(trades) > saved else []
        self.store.commit(
            Changes(
                core=core(self._matcher, self._ledger),
                wallets=[(a, wallets[a].free, wallets[a].used) for a in assets],
                orders=[order_row(o) for o in orders],
                trades=[(saved + i, t) for i, t in enumerate(new_trades, 1)],
                markets=self._markets_of(sorted(symbols)),
                rng=books.rng.getstate() if books.drawn else None,
            )
        )
        self._trades_saved = len(trades)
        self._wallets_saved = len(wallets)
        books.drawn.clear()

    def _markets_of(self, symbols: list[str]) -> list[tuple[str, Bar, dict[str, Any] | None]]:
        """Each symbol's bar, with its book if its depth was drawn for that very bar (a
        quote-only or stale book is rebuilt on demand)."""
        books = self._books
        markets: list[tuple[str, Bar, dict[str, Any] | None]] = []
        for sym in symbols:
            bar = books.bars.get(sym)
            if bar is not None:
                self._bars_saved[sym] = bar
                book = books.books.get(sym)
                saved_book = None
                if book is not None and book.bar is bar and book.asks is not None:
                    saved_book = encode_book(book)
                markets.append((sym, bar, saved_book))
        return markets

    def close(self) -> None:
        """Save what only memory holds (last bars, drawn books, random state) and close
        the file. Writes nothing if nothing is unsaved. Idempotent."""
        store = self.store
        if store.closed:
            return
        try:
            saved, books = self._bars_saved, self._books
            books.drawn.update(s for s, bar in books.bars.items() if saved.get(s) is not bar)
            if books.drawn and not store.broken:
                self.commit(None)
        finally:
            store.close()


def core(matcher: Matcher, ledger: OrderLedger) -> dict[str, Any]:
    """Id counters, run counters and pending cancel races, as JSON-ready data."""
    return {
        "next_order": ledger.next_order,
        "next_trade": matcher.next_trade,
        "counters": ledger.counters.as_dict(),
        "race_on_cancel": sorted(ledger.race_on_cancel),
    }


def restore(
    state: StoredState,
    markets: Mapping[str, MarketFilters],
    books: Books,
    wallets: Wallets,
    matcher: Matcher,
    ledger: OrderLedger,
) -> None:
    """Replace fresh parts' state with a file's, in place. Resting lists come back in seq
    order, which is the order they were appended in."""
    wallets.restore(state.wallets)
    for row in state.orders:
        if row.symbol not in markets:
            raise ValueError(f"order {row.id} is on unknown symbol {row.symbol}")
        order = SimOrder(**row._asdict())
        ledger.add(order)
        if order.status == "open":
            matcher.resting.setdefault(order.symbol, []).append(order)
    matcher.trades = list(state.trades)
    for trade in matcher.trades:
        ledger.by_id[trade.order_id].trades.append(trade)
    raw = state.core
    ledger.next_order = int(raw["next_order"])
    matcher.next_trade = int(raw["next_trade"])
    ledger.counters.load(raw["counters"])
    ledger.race_on_cancel = {str(i) for i in raw["race_on_cancel"]}
    books.rng.setstate(state.rng)
    for sym, (bar, book) in state.markets.items():
        if sym not in markets:
            raise ValueError(f"market state for unknown symbol {sym}")
        books.bars[sym] = bar
        if book is not None:
            books.books[sym] = decode_book(bar, book)


def order_row(o: SimOrder) -> OrderRow:
    """The order's columns: its fields of the same names (all but its trades)."""
    return OrderRow._make(getattr(o, name) for name in OrderRow._fields)
