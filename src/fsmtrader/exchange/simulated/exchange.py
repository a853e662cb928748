"""The simulated exchange's facade: the ``Exchange`` protocol over the book, the
matcher, the wallets and the order ledger, and Binance's order validation in front.

Built with the plain constructor there is no file and no persistence cost at all;
:meth:`SimExchange.open` binds the same parts to a SQLite file (:mod:`.persistence`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from decimal import Decimal, localcontext
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from fsmtrader.clock import Clock
from fsmtrader.errors import (
    DuplicateOrder,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
)
from fsmtrader.exchange.simulated.book import Books, liquid, top
from fsmtrader.exchange.simulated.matching import Matcher
from fsmtrader.exchange.simulated.orders import OrderLedger, SimCounters, SimOrder
from fsmtrader.exchange.simulated.params import PREC, SimParams
from fsmtrader.exchange.simulated.persistence import SimFile
from fsmtrader.exchange.simulated.validate import validate, validate_stop
from fsmtrader.exchange.simulated.venue import BINANCE
from fsmtrader.exchange.simulated.wallets import Wallets, lock_for
from fsmtrader.exchange.types import Balance, OrderInfo, OrderType, Ticker, TimeInForce, TradeInfo
from fsmtrader.markets import MarketFilters, Side

MAX_CLIENT_ID_LEN: Final = BINANCE.client_id_max_len  # the default venue's
DEFAULT_PARAMS: Final = SimParams()


class SimExchange:
    """Simulated spot exchange implementing the ``Exchange`` protocol.

    Locks: a limit buy locks ``price*amount*(1+fee)`` of quote, where fee is the larger of
    the maker and taker rates, so a resting order can never overdraw its lock whichever
    way it fills; a sell locks ``amount`` of base. Market buys are refused (the engine
    never sends them and there is no price to lock at). The markets' own fee fields are
    not read: the simulator charges ``params``' fees (:meth:`SimParams.with_fees` states
    them on the filters a session trades under).

    Persistence (only for an exchange made by :meth:`open`): ``create_order`` (also when
    it rejects: the counters change), ``cancel_order`` of an open order,
    ``race_fill_on_cancel`` and an ``update_market`` that filled resting orders each
    commit what they changed before returning. A bar that changed nothing else, and depth
    drawn by a read (``order_book_top``), stay in memory until the next commit or
    :meth:`close`: after a crash the reopened exchange has the last bar and book seen at a
    commit, and redraws a book it never saved from the saved random state, as if that
    read never happened. Faults are injected around it (:mod:`.faults`), not in it.

    Venue rules (``params.venue``, :mod:`.venue`): a client id is refused while an
    earlier order with it is open and accepted again once that one is over (Binance),
    and a look-up by client id answers the most recent order with it; an order younger
    than the visibility lag is not found by any look-up (by id, by client id, open
    orders, history, trades), and on MEXC not by a cancel either; fees are charged in
    the venue's fee asset. :meth:`peek` and :meth:`all_orders` see everything at once:
    they are the venue's own engine, for the local server and test oracles.
    """

    def __init__(
        self,
        markets: Mapping[str, MarketFilters],
        balances: Mapping[str, Decimal],
        *,
        clock: Clock,
        params: SimParams = DEFAULT_PARAMS,
    ) -> None:
        for sym, m in markets.items():
            if not m.base or not m.quote:
                raise ValueError(f"{sym}: market needs base and quote assets")
        self.name = params.name
        self.params = params
        self.venue = params.venue
        self._markets: dict[str, MarketFilters] = dict(markets)
        self._clock = clock
        self._books = Books(self._markets, params)
        self._wallets = Wallets(balances)
        self._ledger = OrderLedger()
        self._matcher = Matcher(
            self._markets, self._books, self._wallets, self._ledger.counters, clock, params
        )
        # The very dicts of the parts (never rebound, restored in place), for the hot path.
        self._bars = self._books.bars
        self._resting = self._matcher.resting
        self._file: SimFile | None = None  # None: in memory only, and costs nothing

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        markets: Mapping[str, MarketFilters],
        balances: Mapping[str, Decimal],
        *,
        clock: Clock,
        params: SimParams = DEFAULT_PARAMS,
    ) -> Self:
        """An exchange whose state lives in the SQLite file ``path``, so it outlives the
        process. A missing file is created with ``balances``; an existing one is loaded
        whole and then ``balances`` and the seed are ignored (the file's wallets and
        random state win), while the markets and the fee/spread/depth parameters must
        equal the file's, and so must the venue profile. ValueError, naming the file and
        leaving it untouched, for a foreign or corrupt file or a mismatch."""
        ex = cls(markets, balances, clock=clock, params=params)
        parts = (ex._markets, ex._books, ex._wallets, ex._matcher, ex._ledger)
        ex._file = SimFile.open(Path(path), parts, params, balances)
        return ex

    def close(self) -> None:
        """Save what only memory holds (last bars, drawn books, random state) and close
        the file, so a reopened exchange continues exactly like one that never closed.
        Writes nothing if nothing is unsaved, so opening a file just to read it (the crash
        harness's check) leaves it as it was. Idempotent; a no-op without a file.
        Afterwards reads still answer from memory, and calls that would change state
        raise RuntimeError."""
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def counters(self) -> SimCounters:
        return self._ledger.counters

    # ------------------------------------------------------------------ market data

    def update_market(
        self, symbol: str, ts_ms: int, price: float, high: float, low: float, volume: float
    ) -> None:
        """Feed one bar. Cheap unless ``symbol`` has resting orders, which may then fill
        (as maker, at their limit) against this bar's depth."""
        if symbol not in self._markets:
            raise InvalidOrder(f"unknown symbol {symbol}", reason="symbol")
        self._bars[symbol] = (ts_ms, price, high, low, volume)
        if symbol in self._resting:
            file = self._file
            if file is not None:
                file.store.check_writable()
            filled = self._matcher.fill_resting(symbol)
            if filled and file is not None:
                file.commit(symbol, filled)

    def quote_at(self, symbol: str, ts_ms: int, bid: Decimal, volume: float) -> None:
        """The market trades at ``bid`` now: a level a backtest candle met inside it
        (``drive.step_bar``). The book's bid is that price exactly (no half spread: the
        candle traded there), the ask the full spread above; resting orders wait for the
        candle's close, which the driver feeds next."""
        self._market(symbol)
        bar = (ts_ms, float(bid), float(bid), float(bid), volume)
        self._bars[symbol] = bar
        self._books.pin(symbol, bar, bid)

    def load_markets(self) -> dict[str, MarketFilters]:
        return dict(self._markets)

    def fetch_ticker(self, symbol: str) -> Ticker:
        self._market(symbol)
        book = self._books.quote(symbol)
        volume = Decimal(repr(book.bar[4]))
        return Ticker(symbol, book.bar[0], book.bid, book.ask, book.mid, volume)

    def order_book_top(self, symbol: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(bid, bid_qty, ask, ask_qty) of the best levels that still have liquidity."""
        self._market(symbol)
        book = self._books.depth(symbol)
        bid, bid_qty = top(book.bids, book.bid)
        ask, ask_qty = top(book.asks, book.ask)
        return bid, bid_qty, ask, ask_qty

    def depth(
        self, symbol: str
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids, asks): every level of this bar's book that still has liquidity, best
        first: the depth orders fill against (the local server shows it)."""
        self._market(symbol)
        book = self._books.depth(symbol)
        return liquid(book.bids), liquid(book.asks)

    # ------------------------------------------------------------------ account

    def fetch_balance(self) -> dict[str, Balance]:
        return self._wallets.balances()

    # ------------------------------------------------------------------ orders

    def create_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        client_order_id: str,
        stop_price: Decimal | None = None,
    ) -> OrderInfo:
        """Validate like Binance (identity, duplicate, filters, funds), lock, then match
        at once against this bar's depth. IOC and market remainders are cancelled; a GTC
        remainder rests and fills as maker on later bars. With ``stop_price`` (a venue
        with stop orders only: Binance) a limit GTC sell is a STOP_LOSS_LIMIT: its base
        is locked and it rests untriggered until a bar's low reaches the stop."""
        if self._file is not None:
            self._file.store.check_writable()
        try:
            with localcontext(prec=PREC):
                order = self._place(
                    symbol,
                    side,
                    order_type,
                    amount,
                    price,
                    time_in_force,
                    client_order_id,
                    stop_price,
                )
        except InvalidOrder as e:
            self._count_rejection(e.reason)
            raise
        except DuplicateOrder:
            self._count_rejection("duplicate")
            raise
        except InsufficientFunds:
            self._count_rejection("insufficient_funds")
            raise
        except ExchangeUnavailable:
            self._count_rejection("no_price")
            raise
        if self._file is not None:
            self._file.commit(symbol, (order,))
        return order.to_info()

    def cancel_order(self, order_id: str, symbol: str) -> OrderInfo:
        """Cancel an open order and release its lock. An order that is already final is
        returned unchanged (the cancel/fill race is not an error)."""
        order = self._ledger.lookup(order_id, symbol)
        if self.venue.cancel_sees_lag:
            self._visible(order)
        if order.status == "open":
            if self._file is not None:
                self._file.store.check_writable()
            with localcontext(prec=PREC):
                race = self._ledger.race_on_cancel
                if order.id in race:
                    race.discard(order.id)
                    self._matcher.fill(order, order.amount - order.filled, order.price, maker=True)
                if order.status == "open":
                    self.counters.canceled += 1
                    self._matcher.end(order, "canceled")
            if self._file is not None:
                self._file.commit(order.symbol, (order,))
        return order.to_info()

    def fetch_order(self, order_id: str, symbol: str) -> OrderInfo:
        return self._visible(self._ledger.lookup(order_id, symbol)).to_info()

    def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo:
        """The most recent visible order with this client id on ``symbol``: Binance
        answers ``origClientOrderId`` with the latest order that carried it, and inside
        the visibility lag of a re-used id's new order that is still the earlier one."""
        seen = self._seen_before()
        for order in reversed(self._ledger.by_client_id.get(client_order_id, ())):
            if order.symbol == symbol and order.timestamp < seen:
                return order.to_info()
        raise OrderNotFound(f"no order with client id {client_order_id} on {symbol}")

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        seen = self._seen_before()
        return [
            o.to_info()
            for o in self._ledger.by_id.values()
            if o.status == "open" and (symbol is None or o.symbol == symbol) and o.timestamp < seen
        ]

    def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        trades = [
            t
            for t in self._matcher.trades
            if t.symbol == symbol and (since is None or t.timestamp >= since)
        ]
        seen = self._seen_before()
        if seen == math.inf:
            return trades
        by_id = self._ledger.by_id
        return [t for t in trades if by_id[t.order_id].timestamp < seen]

    def fetch_orders(self, symbol: str, since: int) -> list[OrderInfo]:
        self._market(symbol)
        seen = self._seen_before()
        return [
            o.to_info()
            for o in self._ledger.by_id.values()
            if o.symbol == symbol and since <= o.timestamp < seen
        ]

    def fetch_order_trades(self, order_id: str, symbol: str) -> list[TradeInfo]:
        order = self._visible(self._ledger.lookup(order_id, symbol))
        return list(order.trades)

    # ------------------------------------------------------------------ test hooks

    def race_fill_on_cancel(self, order_id: str) -> None:
        """When ``order_id`` is next cancelled while open, it first fills completely at
        its limit (maker), so the cancel returns it closed."""
        order = self._ledger.by_id.get(order_id)
        if order is None:
            raise OrderNotFound(f"no order {order_id}")
        if order.order_type != "limit":
            raise ValueError("only a limit order can race a cancel")
        if self._file is not None:
            self._file.store.check_writable()
        self._ledger.race_on_cancel.add(order_id)
        if self._file is not None:
            self._file.commit(None)

    def orders_by_client_id(self) -> dict[str, OrderInfo]:
        """The most recent order of every client id ever used (copies), for test
        oracles; :meth:`all_orders` has every order."""
        return {cid: orders[-1].to_info() for cid, orders in self._ledger.by_client_id.items()}

    def all_orders(self) -> list[OrderInfo]:
        """Every order ever created, oldest first, ignoring the visibility lag (copies),
        for test oracles and the local server."""
        return [o.to_info() for o in self._ledger.by_id.values()]

    def peek(self, order_id: str, symbol: str) -> OrderInfo:
        """An order as the venue's engine knows it, ignoring the visibility lag (the
        local server cancels and renders through this)."""
        return self._ledger.lookup(order_id, symbol).to_info()

    # ------------------------------------------------------------------ internals

    def _count_rejection(self, reason: str) -> None:
        self.counters.reject(reason)
        if self._file is not None:
            self._file.commit(None)  # a rejection changes nothing but the counters

    def _seen_before(self) -> float:
        """Orders created before this time are visible to look-ups. Without a lag every
        order is (even one stamped ahead of a reader's clock, as a file reopened under a
        fresh clock has)."""
        lag = self.venue.visibility_lag_ms
        return self._clock.now_ms() - lag + 1 if lag else math.inf

    def _visible(self, order: SimOrder) -> SimOrder:
        """``order`` if the venue shows it yet, else OrderNotFound (the visibility lag)."""
        if order.timestamp >= self._seen_before():
            raise OrderNotFound(f"no order {order.id} on {order.symbol} (not visible yet)")
        return order

    def _market(self, symbol: str) -> MarketFilters:
        m = self._markets.get(symbol)
        if m is None:
            raise InvalidOrder(f"unknown symbol {symbol}", reason="symbol")
        return m

    def _check_client_id(self, client_order_id: str) -> None:
        longest = self.venue.client_id_max_len
        if not isinstance(client_order_id, str) or not 0 < len(client_order_id) <= longest:
            raise InvalidOrder(
                f"client_order_id must be 1..{longest} chars", reason="client_order_id"
            )
        if self._ledger.client_id_taken(client_order_id, self.venue.client_ids == "open_only"):
            raise DuplicateOrder(f"client order id {client_order_id} is in use")

    def _place(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        client_order_id: str,
        stop_price: Decimal | None = None,
    ) -> SimOrder:
        m = self._market(symbol)
        self._check_client_id(client_order_id)
        book = self._books.quote(symbol)
        limit = validate(m, side, order_type, amount, price, time_in_force, book)
        if stop_price is not None:
            validate_stop(
                m, self.venue.stop_orders, side, order_type, time_in_force, stop_price, book
            )
        lock_asset, lock = lock_for(m, side, amount, limit, self._matcher.lock_rate)
        if not self._wallets.lock(lock_asset, lock):
            free = self._wallets.get(lock_asset).free
            raise InsufficientFunds(
                f"{side} {amount} {symbol} needs {lock} {lock_asset}, free {free}"
            )
        seq = self._ledger.new_seq()
        order = SimOrder(
            seq=seq,
            id=str(seq),
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            order_type=order_type,
            price=limit,
            amount=amount,
            time_in_force="IOC" if order_type == "market" else time_in_force,
            timestamp=self._clock.now_ms(),
            lock_asset=lock_asset,
            lock_remaining=lock,
            fee_currency=m.quote,
            stop_price=stop_price,
        )
        self._ledger.add(order)
        self.counters.created += 1
        if stop_price is not None:  # untriggered: it rests, it does not match
            self._resting.setdefault(symbol, []).append(order)
            return order
        self._matcher.take(order)
        if order.status == "open":
            if order.time_in_force == "GTC" or (
                self.venue.ioc_returns_open and order_type == "limit"
            ):  # MEXC: a limit IOC rests like a GTC (ccxt issue 25003)
                self._resting.setdefault(symbol, []).append(order)
            else:
                self._matcher.end(order, "canceled")
        return order
