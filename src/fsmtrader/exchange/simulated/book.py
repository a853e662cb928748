"""The synthetic order book: each symbol's last bar and the book derived from it.

Prices arrive as floats, one bar at a time; bid/ask and depth are derived lazily, in
Decimal, only when someone asks, so feeding a bar costs one dict write. Depth level sizes
are the only random numbers of the simulator, drawn from one ``random.Random(seed)``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from fsmtrader.errors import ExchangeUnavailable
from fsmtrader.exchange.simulated.params import BPS, ONE, PREC, ZERO, SimParams
from fsmtrader.markets import MarketFilters, ceil_to, q_amount, q_price

# (ts_ms, price, high, low, volume) exactly as the driver gave them.
Bar = tuple[int, float, float, float, float]


@dataclass(slots=True)
class Level:
    """One price level of the synthetic book; ``qty`` shrinks as fills consume it."""

    price: Decimal
    qty: Decimal


@dataclass(slots=True)
class Book:
    """The synthetic book of one bar. ``bar`` is the identity of the bar it was built
    from: a new bar makes the cache stale without any work on the hot path. Depth levels
    are built (and their random factors drawn) only when first needed."""

    bar: Bar
    mid: Decimal
    bid: Decimal
    ask: Decimal
    asks: list[Level] | None = None
    bids: list[Level] | None = None


class Books:
    """Every symbol's last bar and its book, and the random generator that sizes depth.

    ``bars`` is written by the exchange's hot path directly; ``drawn`` names the symbols
    whose depth was drawn since the persistence layer last saved them (it clears it)."""

    def __init__(self, markets: Mapping[str, MarketFilters], params: SimParams) -> None:
        self._markets = markets
        self.rng = random.Random(params.seed)
        self._half_spread = params.spread_bps / BPS / 2
        self._depth_quote = params.depth_quote
        self._depth_levels = params.depth_levels
        self._level_step = params.level_step_bps / BPS
        self.bars: dict[str, Bar] = {}
        self.books: dict[str, Book] = {}
        self.drawn: set[str] = set()

    def quote(self, symbol: str) -> Book:
        """This bar's bid/ask, built once per bar from the last price."""
        bar = self.bars.get(symbol)
        if bar is None:
            raise ExchangeUnavailable(f"no price yet for {symbol}", maybe_sent=False)
        book = self.books.get(symbol)
        if book is not None and book.bar is bar:
            return book
        tick = self._markets[symbol].tick_size
        with localcontext(prec=PREC):
            mid = Decimal(repr(bar[1]))
            bid = q_price(mid * (ONE - self._half_spread), tick)
            ask = ceil_to(mid * (ONE + self._half_spread), tick)
            if ask < bid + tick:
                ask = bid + tick
        book = Book(bar=bar, mid=mid, bid=bid, ask=ask)
        self.books[symbol] = book
        return book

    def pin(self, symbol: str, bar: Bar, bid: Decimal) -> Book:
        """The book of ``bar`` (already in :attr:`bars`) with its bid at ``bid``, on the
        tick grid, and the ask the full spread above (at least a tick): the quote at a
        price the market traded at (``SimExchange.quote_at``)."""
        tick = self._markets[symbol].tick_size
        with localcontext(prec=PREC):
            bid = q_price(bid, tick)
            ask = max(ceil_to(bid * (ONE + 2 * self._half_spread), tick), bid + tick)
        book = Book(bar=bar, mid=bid, bid=bid, ask=ask)
        self.books[symbol] = book
        return book

    def depth(self, symbol: str) -> Book:
        """This bar's book with depth; the random level factors are drawn here, once."""
        book = self.quote(symbol)
        if book.asks is not None:
            return book
        m = self._markets[symbol]
        tick, step = m.tick_size, m.step_size
        self.drawn.add(symbol)  # the random state moves: the next commit saves both
        asks: list[Level] = []
        bids: list[Level] = []
        with localcontext(prec=PREC):
            for i in range(self._depth_levels):
                p = ceil_to(book.ask * (ONE + i * self._level_step), tick)
                if asks and p <= asks[-1].price:
                    p = asks[-1].price + tick
                asks.append(Level(p, self._level_qty(p, step)))
            for i in range(self._depth_levels):
                p = q_price(book.bid * (ONE - i * self._level_step), tick)
                if bids and p >= bids[-1].price:
                    p = bids[-1].price - tick
                if p <= 0:
                    break
                bids.append(Level(p, self._level_qty(p, step)))
        book.asks, book.bids = asks, bids
        return book

    def _level_qty(self, price: Decimal, step: Decimal) -> Decimal:
        factor = Decimal(repr(self.rng.uniform(0.5, 1.5)))
        return q_amount(self._depth_quote / price * factor, step)


def top(levels: list[Level] | None, fallback: Decimal) -> tuple[Decimal, Decimal]:
    """The best level that still has liquidity, or ``fallback`` with no quantity."""
    for level in levels or ():
        if level.qty > 0:
            return level.price, level.qty
    return fallback, ZERO


def liquid(levels: list[Level] | None) -> list[tuple[Decimal, Decimal]]:
    """(price, qty) of every level that still has liquidity, best first."""
    return [(lv.price, lv.qty) for lv in levels or () if lv.qty > 0]


def consume(levels: list[Level], want: Decimal) -> Decimal:
    """Take up to ``want`` from the levels, best first; returns what was taken."""
    got = ZERO
    for level in levels:
        if got >= want:
            break
        take = min(want - got, level.qty)
        if take > 0:
            level.qty -= take
            got += take
    return got


def encode_book(book: Book) -> dict[str, Any]:
    """A drawn book with what this bar's fills have consumed of it, exact, as JSON data."""
    return {
        "mid": str(book.mid),
        "bid": str(book.bid),
        "ask": str(book.ask),
        "asks": [[str(lv.price), str(lv.qty)] for lv in book.asks or ()],
        "bids": [[str(lv.price), str(lv.qty)] for lv in book.bids or ()],
    }


def decode_book(bar: Bar, raw: dict[str, Any]) -> Book:
    """The inverse of :func:`encode_book`; ``bar`` must be the very tuple in
    :attr:`Books.bars` (the cache is keyed on identity)."""
    return Book(
        bar=bar,
        mid=Decimal(raw["mid"]),
        bid=Decimal(raw["bid"]),
        ask=Decimal(raw["ask"]),
        asks=[Level(Decimal(p), Decimal(q)) for p, q in raw["asks"]],
        bids=[Level(Decimal(p), Decimal(q)) for p, q in raw["bids"]],
    )
