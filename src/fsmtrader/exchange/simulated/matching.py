"""Matching: orders fill against the synthetic depth of the current bar.

A new order takes liquidity at once (as taker, one trade per level, consuming the levels
for the rest of the bar); a GTC remainder rests and fills as maker, at its limit, on
later bars that cross it. Each trade is priced, charged its fee (rounded down to 1e-8)
in the asset the venue profile says (quote, the received asset, or BNB) and moves the
balances exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Final

from fsmtrader.clock import Clock
from fsmtrader.errors import required
from fsmtrader.exchange.simulated.book import Books, consume
from fsmtrader.exchange.simulated.orders import SimCounters, SimOrder
from fsmtrader.exchange.simulated.params import PREC, ZERO, SimParams
from fsmtrader.exchange.simulated.venue import BNB
from fsmtrader.exchange.simulated.wallets import Wallets, check
from fsmtrader.exchange.types import OrderStatus, TradeInfo
from fsmtrader.markets import MarketFilters

FEE_QUANTUM: Final = Decimal("1e-8")


class Matcher:
    """Fills orders and books their trades. ``resting`` holds only symbols that have
    open GTC orders, so a bar for any other symbol costs one membership test."""

    def __init__(
        self,
        markets: Mapping[str, MarketFilters],
        books: Books,
        wallets: Wallets,
        counters: SimCounters,
        clock: Clock,
        params: SimParams,
    ) -> None:
        self._markets = markets
        self._books = books
        self._wallets = wallets
        self._counters = counters
        self._clock = clock
        self._maker_rate = params.maker_rate
        self._taker_rate = params.taker_rate
        self.lock_rate = params.lock_rate
        self._fee_asset = params.venue.fee_asset
        self._bnb_price = params.venue.bnb_price
        self.resting: dict[str, list[SimOrder]] = {}
        self.trades: list[TradeInfo] = []
        self.next_trade = 1

    def take(self, order: SimOrder) -> None:
        """Match a new order as taker against this bar's opposite depth, one trade per
        level, consuming the levels for the rest of the bar."""
        book = self._books.depth(order.symbol)
        levels = required(book.asks if order.side == "buy" else book.bids, "this bar's depth")
        for level in levels:
            need = order.amount - order.filled
            if need <= 0:
                break
            if order.order_type == "limit" and (
                (order.side == "buy" and level.price > order.price)
                or (order.side == "sell" and level.price < order.price)
            ):
                break
            qty = min(need, level.qty)
            if qty <= 0:
                continue
            level.qty -= qty
            self.fill(order, qty, level.price, maker=False)

    def fill_resting(self, symbol: str) -> list[SimOrder]:
        """Fill resting orders the new bar crossed, at their limit, as maker. Per bar an
        order side can take at most the bar's total depth on the side it trades against,
        best-priced order first, then oldest. Returns the orders that filled."""
        _, _, high_f, low_f, _ = self._books.bars[symbol]
        with localcontext(prec=PREC):
            high, low = Decimal(repr(high_f)), Decimal(repr(low_f))
            resting = self.resting[symbol]
            triggered = self._trigger_stops(resting, low)
            buys = sorted(
                (o for o in resting if o.side == "buy" and low <= o.price),
                key=lambda o: (-o.price, o.seq),
            )
            sells = sorted(
                (
                    o
                    for o in resting
                    if o.side == "sell"
                    and high >= o.price
                    and (o.stop_price is None or o.triggered)
                ),
                key=lambda o: (o.price, o.seq),
            )
            if not buys and not sells:
                return triggered
            book = self._books.depth(symbol)
            asks = required(book.asks, "this bar's asks")
            bids = required(book.bids, "this bar's bids")
            filled: list[SimOrder] = list(triggered)
            for orders, levels in ((buys, asks), (sells, bids)):
                for order in orders:
                    qty = consume(levels, order.amount - order.filled)
                    if qty > 0:
                        self.fill(order, qty, order.price, maker=True)
                        if order not in filled:
                            filled.append(order)
        return filled

    def _trigger_stops(self, resting: list[SimOrder], low: Decimal) -> list[SimOrder]:
        """Stop-limit sells whose stop this bar's low reached: triggered, each becomes a
        limit sell at once, taking the bids down to its limit (the rest rests)."""
        hit = [
            o
            for o in resting
            if o.stop_price is not None and not o.triggered and low <= o.stop_price
        ]
        for order in hit:
            order.triggered = True
            self.take(order)
            if order.status == "open" and order.time_in_force != "GTC":
                self.end(order, "canceled")
        return hit

    def fill(self, order: SimOrder, qty: Decimal, price: Decimal, *, maker: bool) -> None:
        """Book one trade: move balances exactly, record it, end the order if full.

        The order's ``fee`` sums its fees in its fee asset (that of its first fill); a
        BNB-paying order whose BNB ran out mid-way has the other fees on its trades only
        (the balances are exact either way: every trade settles its own fee)."""
        m = self._markets[order.symbol]
        cost = price * qty
        rate = self._maker_rate if maker else self._taker_rate
        fee, fee_asset = self._fee(order, m, qty, cost, rate)
        self._settle(order, m, qty, cost, fee, fee_asset)
        trade = TradeInfo(
            id=f"t{self.next_trade}",
            order_id=order.id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            amount=qty,
            fee=fee,
            fee_currency=fee_asset,
            timestamp=self._clock.now_ms(),
            maker=maker,
        )
        self.next_trade += 1
        self._counters.trades += 1
        self.trades.append(trade)
        order.trades.append(trade)
        order.filled += qty
        order.cost += cost
        if not order.trades[:-1]:  # the first fill names the order's fee asset
            order.fee_currency = fee_asset
        if fee_asset == order.fee_currency:
            order.fee += fee
        if order.filled >= order.amount:
            self.end(order, "closed")

    def _fee(
        self, order: SimOrder, m: MarketFilters, qty: Decimal, cost: Decimal, rate: Decimal
    ) -> tuple[Decimal, str]:
        """The fee of one trade and its asset. BNB is charged only if the free BNB pays
        it whole; otherwise (and under ``received``) a buy pays in base, a sell in quote."""
        if self._fee_asset == "quote":
            return _down(cost * rate), m.quote
        if self._fee_asset == "bnb":
            fee = _down(cost * rate / self._bnb_price)
            bnb = self._wallets.by_asset.get(BNB)
            if bnb is not None and bnb.free >= fee:
                return fee, BNB
        if order.side == "buy":
            return _down(qty * rate), m.base
        return _down(cost * rate), m.quote

    def _settle(
        self,
        order: SimOrder,
        m: MarketFilters,
        qty: Decimal,
        cost: Decimal,
        fee: Decimal,
        fee_asset: str,
    ) -> None:
        """Move one trade's money: a buy pays from its lock (its share of it, the rest
        stays locked), a sell delivers locked base; the fee leaves the free balance of
        its asset (for a quote fee on a buy: from the lock's share, which covers it)."""
        base, quote = self._wallets.get(m.base), self._wallets.get(m.quote)
        if order.side == "buy":
            share = min(order.price * qty * self.lock_rate, order.lock_remaining)
            order.lock_remaining -= share
            quote.used -= share
            quote.free += share - cost
            base.free += qty
        else:
            order.lock_remaining -= qty
            base.used -= qty
            quote.free += cost
        payer = self._wallets.get(fee_asset)
        payer.free -= fee
        check(fee_asset, payer)
        check(m.base, base)
        check(m.quote, quote)
        if order.lock_remaining < 0:
            raise AssertionError(f"order {order.id} overdrew its lock")

    def end(self, order: SimOrder, status: OrderStatus) -> None:
        """Make an order final: release what is left of its lock, drop it from the
        resting set."""
        order.status = status
        if order.lock_remaining:
            self._wallets.release(order.lock_asset, order.lock_remaining)
            order.lock_remaining = ZERO
        resting = self.resting.get(order.symbol)
        if resting is not None and order in resting:
            resting.remove(order)
            if not resting:
                del self.resting[order.symbol]


def _down(fee: Decimal) -> Decimal:
    return fee.quantize(FEE_QUANTUM, rounding=ROUND_DOWN)
