"""The simulated book's depth: every level's random factor is drawn when the depth is
built (asks from the top outwards, then bids), its Decimal size computed when first
read, and the sizes are the formula's, however late they are read."""

from __future__ import annotations

import random
from decimal import Decimal, localcontext

import pytest

from fsmtrader.exchange.simulated.book import Books, Level
from fsmtrader.exchange.simulated.params import ONE, PREC, SimParams
from fsmtrader.markets import MarketFilters, ceil_to, q_amount, q_price
from fsmtrader_testing.harness import BLESS, BTC

PRICES = [50_000.0, 50_123.45, 49_876.5, 51_000.01]


def fed(books: Books, symbol: str, i: int, price: float) -> None:
    books.bars[symbol] = (i, price, price, price, 1.0)


def expected_sides(
    ask: Decimal, bid: Decimal, rng: random.Random, p: SimParams, tick: Decimal, step: Decimal
) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """The depth spelled out with the markets functions, as the book defines it."""
    level_step = p.level_step_bps / 10_000
    asks: list[tuple[Decimal, Decimal]] = []
    bids: list[tuple[Decimal, Decimal]] = []
    with localcontext(prec=PREC):
        for i in range(p.depth_levels):
            px = ceil_to(ask * (ONE + i * level_step), tick)
            if asks and px <= asks[-1][0]:
                px = asks[-1][0] + tick
            factor = Decimal(repr(rng.uniform(0.5, 1.5)))
            asks.append((px, q_amount(p.depth_quote / px * factor, step)))
        for i in range(p.depth_levels):
            px = q_price(bid * (ONE - i * level_step), tick)
            if bids and px >= bids[-1][0]:
                px = bids[-1][0] - tick
            if px <= 0:
                break
            factor = Decimal(repr(rng.uniform(0.5, 1.5)))
            bids.append((px, q_amount(p.depth_quote / px * factor, step)))
    return asks, bids


@pytest.mark.parametrize("market", [BTC, BLESS], ids=lambda m: m.symbol)
def test_depth_sizes_are_the_formulas_in_the_draw_order(market: MarketFilters) -> None:
    m = market
    p = SimParams()
    books, rng = Books({m.symbol: m}, p), random.Random(p.seed)
    scale = 1.0 if m is BTC else 1e-5
    for i, price in enumerate(PRICES):
        fed(books, m.symbol, i, price * scale)
        book = books.depth(m.symbol)
        want = expected_sides(book.ask, book.bid, rng, p, m.tick_size, m.step_size)
        got = (
            [(lv.price, lv.qty) for lv in book.asks or ()],
            [(lv.price, lv.qty) for lv in book.bids or ()],
        )
        assert [[(str(a), str(b)) for a, b in side] for side in got] == [
            [(str(a), str(b)) for a, b in side] for side in want
        ]


def test_sizes_read_late_equal_sizes_read_at_once() -> None:
    now, late = Books({BTC.symbol: BTC}, SimParams()), Books({BTC.symbol: BTC}, SimParams())
    read_now, kept = [], []
    for i, price in enumerate(PRICES):
        for books in (now, late):
            fed(books, BTC.symbol, i, price)
        book = now.depth(BTC.symbol)
        read_now.append([lv.qty for lv in (book.asks or []) + (book.bids or [])])
        kept.append(late.depth(BTC.symbol))  # (sizes not read yet: the draws are made)
    assert now.rng.getstate() == late.rng.getstate()
    assert [[lv.qty for lv in (b.asks or []) + (b.bids or [])] for b in kept] == read_now


def test_a_level_is_its_price_and_size() -> None:
    a = Level(Decimal("10.5"), Decimal("3"))
    a.qty -= Decimal("1")
    assert a == Level(Decimal("10.5"), Decimal("2")) and a != Level(Decimal("10.5"), Decimal("3"))
    assert repr(a) == "Level(price=Decimal('10.5'), qty=Decimal('2'))"
    with pytest.raises(ValueError, match="its qty or its draw"):
        Level(Decimal("1"))
