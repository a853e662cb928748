"""The synthetic order book: each symbol's last bar and the book derived from it.

Prices arrive as floats, one bar at a time; bid/ask and depth are derived lazily, in
Decimal, only when someone asks, so feeding a bar costs one dict write. Depth level sizes
are the only random numbers of the simulator, drawn from one ``random.Random(seed)``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

from fsmtrader.errors import ExchangeUnavailable, required
from fsmtrader.exchange.simulated.params import BPS, ONE, PREC, ZERO, SimParams
from fsmtrader.markets import Grid, MarketFilters

# (ts_ms, price, high, low, volume) exactly as the driver gave them.
Bar = tuple[int, float, float, float, float]
# What ``localcontext(prec=PREC)`` gives over the default context, as one object whose
# methods the depth loop calls (no context switch per book).
_CTX = Context(prec=PREC)


class Level:
    """One price level of the synthetic book; ``qty`` shrinks as fills consume it. A
    drawn level keeps its random factor (drawn with the book, so the random state moves
    as before) and makes its Decimal size only when first read: a fill reads one or two
    levels of the ten."""

    __slots__ = ("_draw", "_qty", "price")

    def __init__(
        self,
        price: Decimal,
        qty: Decimal | None = None,
        draw: tuple[Decimal, float, Grid] | None = None,
    ) -> None:
        if qty is None and draw is None:
            raise ValueError("a level needs its qty or its draw")
        self.price, self._qty, self._draw = price, qty, draw

    @property
    def qty(self) -> Decimal:
        """``depth_quote / price * factor`` on the step grid, in ``PREC`` digits."""
        q = self._qty
        if q is None:
            quote, factor, step = required(self._draw, "a level's draw")
            size = _CTX.multiply(_CTX.divide(quote, self.price), Decimal(repr(factor)))
            q = self._qty = step.floor(size)
        return q

    @qty.setter
    def qty(self, value: Decimal) -> None:
        self._qty = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return (self.price, self.qty) == (other.price, other.qty)

    __hash__ = None  # type: ignore[assignment]  # (mutable, as the dataclass it was)

    def __repr__(self) -> str:
        return f"Level(price={self.price!r}, qty={self.qty!r})"


@dataclass(frozen=True, slots=True)
class Grids:
    """A market's grids, as the book's hot paths quantize onto them."""

    market: MarketFilters
    tick: Decimal
    ceil: Grid  # the tick, rounding up (``ceil_to``)
    floor: Grid  # the tick, rounding down (``q_price``)
    step: Grid  # the step, rounding down (``q_amount``)


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
        levels = range(self._depth_levels)  # each level's distance from the top, once
        self._ups = [_CTX.add(ONE, _CTX.multiply(i, self._level_step)) for i in levels]
        self._downs = [_CTX.subtract(ONE, _CTX.multiply(i, self._level_step)) for i in levels]
        self._below = _CTX.subtract(ONE, self._half_spread)  # (the bid's and ask's factors)
        self._above = _CTX.add(ONE, self._half_spread)
        self._spread_up = _CTX.add(ONE, _CTX.multiply(2, self._half_spread))
        self._grids: dict[str, Grids] = {}
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
        g = self._grids_of(symbol)
        mid = Decimal(repr(bar[1]))
        bid = g.floor.floor(_CTX.multiply(mid, self._below))
        ask = g.ceil.ceil(_CTX.multiply(mid, self._above))
        if ask < _CTX.add(bid, g.tick):
            ask = _CTX.add(bid, g.tick)
        book = Book(bar=bar, mid=mid, bid=bid, ask=ask)
        self.books[symbol] = book
        return book

    def pin(self, symbol: str, bar: Bar, bid: Decimal) -> Book:
        """The book of ``bar`` (already in :attr:`bars`) with its bid at ``bid``, on the
        tick grid, and the ask the full spread above (at least a tick): the quote at a
        price the market traded at (``SimExchange.quote_at``)."""
        g = self._grids_of(symbol)
        bid = g.floor.floor(bid)
        ask = max(g.ceil.ceil(_CTX.multiply(bid, self._spread_up)), _CTX.add(bid, g.tick))
        book = Book(bar=bar, mid=bid, bid=bid, ask=ask)
        self.books[symbol] = book
        return book

    def _grids_of(self, symbol: str) -> Grids:
        """The symbol's tick and step as :class:`~fsmtrader.markets.Grid`\\ s, made once
        per market (again if its filters are replaced)."""
        m = self._markets[symbol]
        g = self._grids.get(symbol)
        if g is None or g.market is not m:
            g = self._grids[symbol] = Grids(
                m,
                m.tick_size,
                Grid(m.tick_size, "value"),
                Grid(m.tick_size, "price"),
                Grid(m.step_size, "amount"),
            )
        return g

    def depth(self, symbol: str) -> Book:
        """This bar's book with depth; the random level factors are drawn here, once
        (asks from the top outwards, then bids), in the arithmetic of ``PREC`` digits."""
        book = self.quote(symbol)
        if book.asks is not None:
            return book
        g = self._grids_of(symbol)
        ceil, floor, step, tick = g.ceil, g.floor, g.step, g.tick
        self.drawn.add(symbol)  # the random state moves: the next commit saves both
        mul, add, sub = _CTX.multiply, _CTX.add, _CTX.subtract
        asks: list[Level] = []
        bids: list[Level] = []
        for up in self._ups:
            p = ceil.ceil(mul(book.ask, up))
            if asks and p <= asks[-1].price:
                p = add(asks[-1].price, tick)
            asks.append(self._level(p, step))
        for down in self._downs:
            p = floor.floor(mul(book.bid, down))
            if bids and p >= bids[-1].price:
                p = sub(bids[-1].price, tick)
            if p <= 0:
                break
            bids.append(self._level(p, step))
        book.asks, book.bids = asks, bids
        return book

    def _level(self, price: Decimal, step: Grid) -> Level:
        return Level(price, None, (self._depth_quote, self.rng.uniform(0.5, 1.5), step))


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
