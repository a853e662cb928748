"""A deterministic, Binance-like spot exchange for backtests and router tests.

It exists so the engine runs against *real* exchange behaviour (filters, locked balances,
partial fills against finite depth, resting orders, fee rounding, the cancel/fill race)
without a network. Everything random comes from one ``random.Random(seed)``, every
timestamp from the injected clock, and ids are sequential, so a run is reproducible.

Prices arrive as floats, one bar at a time, through :meth:`SimExchange.update_market`,
which is on the backtest hot path: it only stores the floats unless the symbol has
resting orders. Bid/ask and depth are derived lazily, in Decimal, when someone asks.

:meth:`SimExchange.open` gives an exchange that outlives its process (paper trading under
the crash harness): its state lives in a SQLite file (:mod:`sim_store`), written through
by every call that changes it, in one transaction, before the call returns. Built with the
plain constructor there is no file and no persistence cost at all.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from fsmtrader.clock import Clock
from fsmtrader.errors import (
    DuplicateOrder,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
)
from fsmtrader.exchange.sim_store import Bar, Changes, OrderRow, SimStore, StoredState
from fsmtrader.exchange.types import (
    Balance,
    OrderInfo,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
    TimeInForce,
    TradeInfo,
)
from fsmtrader.markets import MarketFilters, ceil_to, q_amount, q_price

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
BPS: Final = Decimal(10_000)
FEE_QUANTUM: Final = Decimal("1e-8")
MAX_CLIENT_ID_LEN: Final = 36
# Internal money arithmetic runs at this precision so products of prices, amounts and
# fee rates stay exact (the default 28 digits could round a lock share).
_PREC: Final = 60

FAULTABLE_METHODS: Final = frozenset(
    {
        "load_markets",
        "fetch_ticker",
        "fetch_balance",
        "create_order",
        "cancel_order",
        "fetch_order",
        "fetch_order_by_client_id",
        "fetch_open_orders",
        "fetch_my_trades",
        "order_book_top",
    }
)

_T = TypeVar("_T")

# (ts_ms, price, high, low, volume) exactly as the driver gave them.
_Bar = Bar


@dataclass(slots=True)
class _Wallet:
    """One asset's balance; ``used`` is what open orders have locked."""

    free: Decimal = ZERO
    used: Decimal = ZERO


@dataclass(slots=True)
class _Level:
    """One price level of the synthetic book; ``qty`` shrinks as fills consume it."""

    price: Decimal
    qty: Decimal


@dataclass(slots=True)
class _Book:
    """The synthetic book of one bar. ``bar`` is the identity of the bar it was built
    from: a new ``update_market`` makes the cache stale without any work on the hot path.
    Depth levels are built (and their random factors drawn) only when first needed."""

    bar: _Bar
    mid: Decimal
    bid: Decimal
    ask: Decimal
    asks: list[_Level] | None = None
    bids: list[_Level] | None = None


@dataclass(slots=True)
class _Order:
    """The exchange's own record of an order. Never handed out: callers get copies."""

    seq: int
    id: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    price: Decimal  # limit price; 0 for a market order
    amount: Decimal
    time_in_force: TimeInForce
    timestamp: int
    lock_asset: str
    lock_remaining: Decimal
    status: OrderStatus = "open"
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    fee_currency: str = ""
    trades: list[TradeInfo] = field(default_factory=list)

    def to_info(self) -> OrderInfo:
        """A detached copy in the protocol's shape."""
        price = self.price
        if self.order_type == "market" and self.filled > 0:
            # Fixed precision, so every copy of the order compares equal whatever the
            # caller's decimal context is.
            with localcontext(prec=28):
                price = self.cost / self.filled
        return OrderInfo(
            id=self.id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            price=price,
            amount=self.amount,
            time_in_force=self.time_in_force,
            status=self.status,
            timestamp=self.timestamp,
            filled=self.filled,
            cost=self.cost,
            fee=self.fee,
            fee_currency=self.fee_currency,
            trades=list(self.trades),
            order_type=self.order_type,
        )


@dataclass(slots=True)
class _Fault:
    error: Exception
    after: bool
    times: int


@dataclass(slots=True)
class SimCounters:
    """Run totals for summaries. ``rejections`` is keyed by reason: an InvalidOrder
    reason (tick, step, min_qty, min_notional, ...), "insufficient_funds", "duplicate"
    or "no_price"."""

    created: int = 0
    rejected: int = 0
    canceled: int = 0
    trades: int = 0
    rejections: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "rejected": self.rejected,
            "canceled": self.canceled,
            "trades": self.trades,
            "rejections": dict(self.rejections),
        }


def _on_grid(value: Decimal, unit: Decimal) -> bool:
    """Whether ``value`` is an exact multiple of ``unit`` (no float, no rounding)."""
    try:
        with localcontext(prec=_PREC):
            return value % unit == 0
    except InvalidOperation:  # quotient too large to be exact: certainly not a sane order
        return False


class SimExchange:
    """Simulated spot exchange implementing the ``Exchange`` protocol.

    Locks: a limit buy locks ``price*amount*(1+fee)`` of quote, where fee is the larger of
    the maker and taker rates, so a resting order can never overdraw its lock whichever
    way it fills; a sell locks ``amount`` of base. Market buys are refused (the engine
    never sends them and there is no price to lock at).

    Persistence (only for an exchange made by :meth:`open`): ``create_order`` (also when
    it rejects: the counters change), ``cancel_order`` of an open order,
    ``race_fill_on_cancel`` and an ``update_market`` that filled resting orders each
    commit what they changed before returning, or before raising an injected
    ``after=True`` fault. A bar that changed nothing else, and depth drawn by a read
    (``order_book_top``), stay in memory until the next commit or :meth:`close`: after a
    crash the reopened exchange has the last bar and book seen at a commit, and redraws a
    book it never saved from the saved random state, as if that read never happened.
    Injected faults are not persisted: they model the caller's network, not the exchange.
    """

    def __init__(
        self,
        markets: dict[str, MarketFilters],
        balances: dict[str, Decimal],
        *,
        clock: Clock,
        seed: int = 0,
        maker_fee_bps: Decimal = Decimal("10"),
        taker_fee_bps: Decimal = Decimal("10"),
        spread_bps: Decimal = Decimal("5"),
        depth_quote: Decimal = Decimal("2000"),
        depth_levels: int = 5,
        level_step_bps: Decimal = Decimal("5"),
        name: str = "sim",
    ) -> None:
        if depth_levels < 1:
            raise ValueError("depth_levels must be >= 1")
        for label, v in (
            ("maker_fee_bps", maker_fee_bps),
            ("taker_fee_bps", taker_fee_bps),
            ("spread_bps", spread_bps),
            ("depth_quote", depth_quote),
            ("level_step_bps", level_step_bps),
        ):
            if v < 0:
                raise ValueError(f"{label} must be >= 0, got {v}")
        for sym, m in markets.items():
            if not m.base or not m.quote:
                raise ValueError(f"{sym}: market needs base and quote assets")
        self.name = name
        self._markets: dict[str, MarketFilters] = dict(markets)
        self._clock = clock
        self._rng = random.Random(seed)
        self._maker_rate = maker_fee_bps / BPS
        self._taker_rate = taker_fee_bps / BPS
        self._lock_rate = ONE + max(self._maker_rate, self._taker_rate)
        self._half_spread = spread_bps / BPS / 2
        self._depth_quote = depth_quote
        self._depth_levels = depth_levels
        self._level_step = level_step_bps / BPS
        self._wallets: dict[str, _Wallet] = {
            asset: _Wallet(free=amount) for asset, amount in balances.items()
        }
        for asset, w in self._wallets.items():
            if w.free < 0:
                raise ValueError(f"balance of {asset} must be >= 0")
        self._bars: dict[str, _Bar] = {}
        self._books: dict[str, _Book] = {}
        self._orders: dict[str, _Order] = {}
        self._by_client_id: dict[str, _Order] = {}
        # Only symbols that currently have open GTC orders appear here: the hot path
        # in update_market is a single membership test.
        self._resting: dict[str, list[_Order]] = {}
        self._trades: list[TradeInfo] = []
        self._next_order = 1
        self._next_trade = 1
        self._faults: dict[str, list[_Fault]] = {}
        self._race_on_cancel: set[str] = set()
        self.counters = SimCounters()
        # Persistence (see open()): None means in memory only, and costs nothing.
        self._store: SimStore | None = None
        self._drawn: set[str] = set()  # symbols whose depth was drawn since the last commit
        self._trades_saved = 0
        self._wallets_saved = 0
        self._bars_saved: dict[str, _Bar] = {}  # the bar object last written per symbol

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        markets: dict[str, MarketFilters],
        balances: dict[str, Decimal],
        *,
        clock: Clock,
        seed: int = 0,
        maker_fee_bps: Decimal = Decimal("10"),
        taker_fee_bps: Decimal = Decimal("10"),
        spread_bps: Decimal = Decimal("5"),
        depth_quote: Decimal = Decimal("2000"),
        depth_levels: int = 5,
        level_step_bps: Decimal = Decimal("5"),
        name: str = "sim",
    ) -> Self:
        """An exchange whose state lives in the SQLite file ``path``, so it outlives the
        process. A missing file is created with ``balances``; an existing one is loaded
        whole and then ``balances`` and ``seed`` are ignored (the file's wallets and
        random state win), while the markets and the fee/spread/depth parameters must
        equal the file's. ValueError, naming the file and leaving it untouched, for a
        foreign or corrupt file or a mismatch."""
        ex = cls(
            markets,
            balances,
            clock=clock,
            seed=seed,
            maker_fee_bps=maker_fee_bps,
            taker_fee_bps=taker_fee_bps,
            spread_bps=spread_bps,
            depth_quote=depth_quote,
            depth_levels=depth_levels,
            level_step_bps=level_step_bps,
            name=name,
        )
        params = {
            "maker_fee_bps": maker_fee_bps,
            "taker_fee_bps": taker_fee_bps,
            "spread_bps": spread_bps,
            "depth_quote": depth_quote,
            "depth_levels": Decimal(depth_levels),
            "level_step_bps": level_step_bps,
        }
        file = Path(path)
        initial = Changes(
            core=ex._core(),
            wallets=[(a, w.free, w.used) for a, w in ex._wallets.items()],
            rng=ex._rng.getstate(),
        )
        store, state = SimStore.open(
            file, markets=ex._markets, params=params, seed=seed, balances=balances, initial=initial
        )
        if state is not None:
            try:
                ex._restore(state)
            except (KeyError, IndexError, TypeError, ValueError, InvalidOperation) as e:
                store.close()
                raise ValueError(f"{file}: corrupt sim exchange file: {e!r}") from e
        ex._store = store
        ex._trades_saved = len(ex._trades)
        ex._wallets_saved = len(ex._wallets)
        ex._bars_saved = dict(ex._bars)
        return ex

    def close(self) -> None:
        """Save what only memory holds (last bars, drawn books, random state) and close
        the file, so a reopened exchange continues exactly like one that never closed.
        Writes nothing if nothing is unsaved, so opening a file just to read it (the crash
        harness's check) leaves it as it was. Idempotent; a no-op without a file.
        Afterwards reads still answer from memory, and calls that would change state
        raise RuntimeError."""
        store = self._store
        if store is None or store.closed:
            return
        try:
            saved = self._bars_saved
            self._drawn.update(s for s, bar in self._bars.items() if saved.get(s) is not bar)
            if self._drawn and not store.broken:
                self._commit(None)
        finally:
            store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
            store = self._store
            if store is not None:
                store.check_writable()
            filled = self._fill_resting(symbol)
            if filled and store is not None:
                self._commit(symbol, filled)

    def load_markets(self) -> dict[str, MarketFilters]:
        after = self._fault_gate("load_markets")
        result = dict(self._markets)
        return self._finish(after, result)

    def fetch_ticker(self, symbol: str) -> Ticker:
        after = self._fault_gate("fetch_ticker")
        self._market(symbol)
        book = self._quote(symbol)
        volume = Decimal(repr(book.bar[4]))
        result = Ticker(symbol, book.bar[0], book.bid, book.ask, book.mid, volume)
        return self._finish(after, result)

    def order_book_top(self, symbol: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(bid, bid_qty, ask, ask_qty) of the best levels that still have liquidity."""
        after = self._fault_gate("order_book_top")
        self._market(symbol)
        book = self._depth(symbol)
        bid, bid_qty = _top(book.bids, book.bid)
        ask, ask_qty = _top(book.asks, book.ask)
        return self._finish(after, (bid, bid_qty, ask, ask_qty))

    # ------------------------------------------------------------------ account

    def fetch_balance(self) -> dict[str, Balance]:
        after = self._fault_gate("fetch_balance")
        result = {a: Balance(free=w.free, used=w.used) for a, w in self._wallets.items()}
        return self._finish(after, result)

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
    ) -> OrderInfo:
        """Validate like Binance (identity, duplicate, filters, funds), lock, then match
        at once against this bar's depth. IOC and market remainders are cancelled; a GTC
        remainder rests and fills as maker on later bars."""
        if self._store is not None:
            self._store.check_writable()
        after = self._fault_gate("create_order")
        try:
            with localcontext(prec=_PREC):
                order = self._place(
                    symbol, side, order_type, amount, price, time_in_force, client_order_id
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
        if self._store is not None:
            self._commit(symbol, (order,))
        return self._finish(after, order.to_info())

    def cancel_order(self, order_id: str, symbol: str) -> OrderInfo:
        """Cancel an open order and release its lock. An order that is already final is
        returned unchanged (the cancel/fill race is not an error)."""
        after = self._fault_gate("cancel_order")
        order = self._lookup(order_id, symbol)
        if order.status == "open":
            if self._store is not None:
                self._store.check_writable()
            with localcontext(prec=_PREC):
                if order.id in self._race_on_cancel:
                    self._race_on_cancel.discard(order.id)
                    self._fill(order, order.amount - order.filled, order.price, maker=True)
                if order.status == "open":
                    self.counters.canceled += 1
                    self._end(order, "canceled")
            if self._store is not None:
                self._commit(order.symbol, (order,))
        return self._finish(after, order.to_info())

    def fetch_order(self, order_id: str, symbol: str) -> OrderInfo:
        after = self._fault_gate("fetch_order")
        result = self._lookup(order_id, symbol).to_info()
        return self._finish(after, result)

    def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo:
        after = self._fault_gate("fetch_order_by_client_id")
        order = self._by_client_id.get(client_order_id)
        if order is None or order.symbol != symbol:
            raise OrderNotFound(f"no order with client id {client_order_id} on {symbol}")
        return self._finish(after, order.to_info())

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        after = self._fault_gate("fetch_open_orders")
        result = [
            o.to_info()
            for o in self._orders.values()
            if o.status == "open" and (symbol is None or o.symbol == symbol)
        ]
        return self._finish(after, result)

    def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        after = self._fault_gate("fetch_my_trades")
        result = [
            t
            for t in self._trades
            if t.symbol == symbol and (since is None or t.timestamp >= since)
        ]
        return self._finish(after, result)

    # ------------------------------------------------------------------ test hooks

    def inject_fault(
        self, method: str, error: Exception, *, after: bool = False, times: int = 1
    ) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error``. With ``after`` the
        call takes full effect first (a lost response: the order exists, the caller
        does not know). Faults queue in the order they were injected."""
        if method not in FAULTABLE_METHODS:
            raise ValueError(f"cannot inject a fault into {method!r}")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.setdefault(method, []).append(_Fault(error, after, times))

    def race_fill_on_cancel(self, order_id: str) -> None:
        """When ``order_id`` is next cancelled while open, it first fills completely at
        its limit (maker), so the cancel returns it closed."""
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"no order {order_id}")
        if order.order_type != "limit":
            raise ValueError("only a limit order can race a cancel")
        if self._store is not None:
            self._store.check_writable()
        self._race_on_cancel.add(order_id)
        self._commit(None)

    def orders_by_client_id(self) -> dict[str, OrderInfo]:
        """Every order ever created, by client id (copies), for test oracles."""
        return {cid: o.to_info() for cid, o in self._by_client_id.items()}

    # ------------------------------------------------------------------ internals: faults

    def _fault_gate(self, method: str) -> Exception | None:
        """Consume one injected fault for ``method``: raise it now, or return it for
        :meth:`_finish` to raise once the call has taken effect."""
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        if fault.after:
            return fault.error
        raise fault.error.with_traceback(None)

    @staticmethod
    def _finish(after: Exception | None, result: _T) -> _T:
        if after is not None:
            raise after.with_traceback(None)
        return result

    def _count_rejection(self, reason: str) -> None:
        self.counters.rejected += 1
        self.counters.rejections[reason] = self.counters.rejections.get(reason, 0) + 1
        if self._store is not None:
            self._commit(None)  # a rejection changes nothing but the counters

    # ------------------------------------------------------------------ internals: prices

    def _market(self, symbol: str) -> MarketFilters:
        m = self._markets.get(symbol)
        if m is None:
            raise InvalidOrder(f"unknown symbol {symbol}", reason="symbol")
        return m

    def _quote(self, symbol: str) -> _Book:
        """This bar's bid/ask, built once per bar from the last price."""
        bar = self._bars.get(symbol)
        if bar is None:
            raise ExchangeUnavailable(f"no price yet for {symbol}", maybe_sent=False)
        book = self._books.get(symbol)
        if book is not None and book.bar is bar:
            return book
        tick = self._markets[symbol].tick_size
        with localcontext(prec=_PREC):
            mid = Decimal(repr(bar[1]))
            bid = q_price(mid * (ONE - self._half_spread), tick)
            ask = ceil_to(mid * (ONE + self._half_spread), tick)
            if ask < bid + tick:
                ask = bid + tick
        book = _Book(bar=bar, mid=mid, bid=bid, ask=ask)
        self._books[symbol] = book
        return book

    def _depth(self, symbol: str) -> _Book:
        """This bar's book with depth; the random level factors are drawn here, once."""
        book = self._quote(symbol)
        if book.asks is not None:
            return book
        m = self._markets[symbol]
        tick, step = m.tick_size, m.step_size
        self._drawn.add(symbol)  # the random state moves: the next commit saves both
        asks: list[_Level] = []
        bids: list[_Level] = []
        with localcontext(prec=_PREC):
            for i in range(self._depth_levels):
                p = ceil_to(book.ask * (ONE + i * self._level_step), tick)
                if asks and p <= asks[-1].price:
                    p = asks[-1].price + tick
                asks.append(_Level(p, self._level_qty(p, step)))
            for i in range(self._depth_levels):
                p = q_price(book.bid * (ONE - i * self._level_step), tick)
                if bids and p >= bids[-1].price:
                    p = bids[-1].price - tick
                if p <= 0:
                    break
                bids.append(_Level(p, self._level_qty(p, step)))
        book.asks, book.bids = asks, bids
        return book

    def _level_qty(self, price: Decimal, step: Decimal) -> Decimal:
        factor = Decimal(repr(self._rng.uniform(0.5, 1.5)))
        return q_amount(self._depth_quote / price * factor, step)

    # ------------------------------------------------------------------ internals: orders

    def _place(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        client_order_id: str,
    ) -> _Order:
        m = self._market(symbol)
        if not isinstance(client_order_id, str) or not 0 < len(client_order_id) <= 36:
            raise InvalidOrder("client_order_id must be 1..36 chars", reason="client_order_id")
        if client_order_id in self._by_client_id:
            raise DuplicateOrder(f"client order id {client_order_id} already used")
        book = self._quote(symbol)
        limit = self._validate(m, side, order_type, amount, price, time_in_force, book)
        lock_asset, lock = self._lock_for(m, side, amount, limit)
        wallet = self._wallet(lock_asset)
        if wallet.free < lock:
            raise InsufficientFunds(
                f"{side} {amount} {symbol} needs {lock} {lock_asset}, free {wallet.free}"
            )
        wallet.free -= lock
        wallet.used += lock
        _check(lock_asset, wallet)

        seq = self._next_order
        self._next_order += 1
        order = _Order(
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
        )
        self._orders[order.id] = order
        self._by_client_id[client_order_id] = order
        self.counters.created += 1

        self._take(order)
        if order.status == "open":
            if order.time_in_force == "GTC":
                self._resting.setdefault(symbol, []).append(order)
            else:
                self._end(order, "canceled")
        return order

    def _validate(
        self,
        m: MarketFilters,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        book: _Book,
    ) -> Decimal:
        """Filter checks in Binance's order; returns the limit price (0 for market)."""
        if side not in ("buy", "sell"):
            raise InvalidOrder(f"bad side {side!r}", reason="side")
        if order_type not in ("limit", "market"):
            raise InvalidOrder(f"bad order type {order_type!r}", reason="order_type")
        if time_in_force not in ("IOC", "GTC"):
            raise InvalidOrder(f"bad time in force {time_in_force!r}", reason="time_in_force")
        if order_type == "market":
            if price is not None:
                raise InvalidOrder("a market order takes no price", reason="price")
            if side == "buy":
                raise InvalidOrder("market buys are not supported", reason="market_buy")
        elif not isinstance(price, Decimal) or not price.is_finite():
            raise InvalidOrder("a limit order needs a Decimal price", reason="price")
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise InvalidOrder(f"amount must be a positive Decimal, got {amount!r}", "amount")
        if price is not None and (price <= 0 or not _on_grid(price, m.tick_size)):
            raise InvalidOrder(f"price {price} not on tick {m.tick_size}", reason="tick")
        if not _on_grid(amount, m.step_size):
            raise InvalidOrder(f"amount {amount} not on step {m.step_size}", reason="step")
        if amount < m.min_qty:
            raise InvalidOrder(f"amount {amount} < min qty {m.min_qty}", reason="min_qty")
        ref = price if price is not None else book.bid  # a market order here is a sell
        if ref * amount < m.min_notional:
            raise InvalidOrder(
                f"notional {ref * amount} < min notional {m.min_notional}", reason="min_notional"
            )
        return price if price is not None else ZERO

    def _lock_for(
        self, m: MarketFilters, side: Side, amount: Decimal, limit: Decimal
    ) -> tuple[str, Decimal]:
        if side == "buy":
            return m.quote, limit * amount * self._lock_rate
        return m.base, amount

    def _take(self, order: _Order) -> None:
        """Match a new order as taker against this bar's opposite depth, one trade per
        level, consuming the levels for the rest of the bar."""
        book = self._depth(order.symbol)
        levels = book.asks if order.side == "buy" else book.bids
        assert levels is not None
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
            self._fill(order, qty, level.price, maker=False)

    def _fill_resting(self, symbol: str) -> list[_Order]:
        """Fill resting orders the new bar crossed, at their limit, as maker. Per bar an
        order side can take at most the bar's total depth on the side it trades against,
        best-priced order first, then oldest. Returns the orders that filled."""
        _, _, high_f, low_f, _ = self._bars[symbol]
        with localcontext(prec=_PREC):
            high, low = Decimal(repr(high_f)), Decimal(repr(low_f))
            resting = self._resting[symbol]
            buys = sorted(
                (o for o in resting if o.side == "buy" and low <= o.price),
                key=lambda o: (-o.price, o.seq),
            )
            sells = sorted(
                (o for o in resting if o.side == "sell" and high >= o.price),
                key=lambda o: (o.price, o.seq),
            )
            if not buys and not sells:
                return []
            book = self._depth(symbol)
            assert book.asks is not None and book.bids is not None
            filled: list[_Order] = []
            for orders, levels in ((buys, book.asks), (sells, book.bids)):
                for order in orders:
                    qty = _consume(levels, order.amount - order.filled)
                    if qty > 0:
                        self._fill(order, qty, order.price, maker=True)
                        filled.append(order)
        return filled

    def _fill(self, order: _Order, qty: Decimal, price: Decimal, *, maker: bool) -> None:
        """Book one trade: move balances exactly, record it, end the order if full."""
        m = self._markets[order.symbol]
        cost = price * qty
        rate = self._maker_rate if maker else self._taker_rate
        fee = (cost * rate).quantize(FEE_QUANTUM, rounding=ROUND_DOWN)
        base, quote = self._wallet(m.base), self._wallet(m.quote)
        if order.side == "buy":
            share = min(order.price * qty * self._lock_rate, order.lock_remaining)
            order.lock_remaining -= share
            quote.used -= share
            quote.free += share - cost - fee
            base.free += qty
        else:
            order.lock_remaining -= qty
            base.used -= qty
            quote.free += cost - fee
        _check(m.base, base)
        _check(m.quote, quote)
        if order.lock_remaining < 0:
            raise AssertionError(f"order {order.id} overdrew its lock")

        trade = TradeInfo(
            id=f"t{self._next_trade}",
            order_id=order.id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            amount=qty,
            fee=fee,
            fee_currency=m.quote,
            timestamp=self._clock.now_ms(),
            maker=maker,
        )
        self._next_trade += 1
        self.counters.trades += 1
        self._trades.append(trade)
        order.trades.append(trade)
        order.filled += qty
        order.cost += cost
        order.fee += fee
        if order.filled >= order.amount:
            self._end(order, "closed")

    def _end(self, order: _Order, status: OrderStatus) -> None:
        """Make an order final: release what is left of its lock, drop it from the
        resting set."""
        order.status = status
        if order.lock_remaining:
            wallet = self._wallet(order.lock_asset)
            wallet.used -= order.lock_remaining
            wallet.free += order.lock_remaining
            order.lock_remaining = ZERO
            _check(order.lock_asset, wallet)
        resting = self._resting.get(order.symbol)
        if resting is not None and order in resting:
            resting.remove(order)
            if not resting:
                del self._resting[order.symbol]

    def _lookup(self, order_id: str, symbol: str) -> _Order:
        order = self._orders.get(order_id)
        if order is None or order.symbol != symbol:
            raise OrderNotFound(f"no order {order_id} on {symbol}")
        return order

    def _wallet(self, asset: str) -> _Wallet:
        wallet = self._wallets.get(asset)
        if wallet is None:
            wallet = self._wallets[asset] = _Wallet()
        return wallet

    # ------------------------------------------------------------------ internals: persistence

    def _commit(self, symbol: str | None, orders: Sequence[_Order] = ()) -> None:
        """Write through what this call changed, in one transaction; a no-op without a
        file. A call changes at most: ``orders``, the wallets of ``symbol``'s base and
        quote (plus any wallet created since the last commit), the trades appended since
        then, ``symbol``'s bar and book, the books whose depth was drawn since then (with
        the random state), and the counters."""
        store = self._store
        if store is None:
            return
        wallets = self._wallets
        assets: list[str] = []
        if len(wallets) != self._wallets_saved:  # new wallets first, in creation order
            assets.extend(itertools.islice(wallets, self._wallets_saved, None))
        symbols = set(self._drawn)
        if symbol is not None:
            m = self._markets[symbol]
            assets.extend(a for a in (m.base, m.quote) if a in wallets and a not in assets)
            symbols.add(symbol)
        saved = self._trades_saved
        new_trades = self._trades[saved:] if len(self._trades) > saved else []
        markets: list[tuple[str, _Bar, dict[str, Any] | None]] = []
        for sym in sorted(symbols):
            bar = self._bars.get(sym)
            if bar is not None:
                self._bars_saved[sym] = bar
                book = self._books.get(sym)
                saved_book = None  # a quote-only or stale book is rebuilt on demand
                if book is not None and book.bar is bar and book.asks is not None:
                    saved_book = _encode_book(book)
                markets.append((sym, bar, saved_book))
        store.commit(
            Changes(
                core=self._core(),
                wallets=[(a, wallets[a].free, wallets[a].used) for a in assets],
                orders=[_order_row(o) for o in orders],
                trades=[(saved + i, t) for i, t in enumerate(new_trades, 1)],
                markets=markets,
                rng=self._rng.getstate() if self._drawn else None,
            )
        )
        self._trades_saved = len(self._trades)
        self._wallets_saved = len(wallets)
        self._drawn.clear()

    def _core(self) -> dict[str, Any]:
        """Id counters, run counters and pending cancel races, as JSON-ready data."""
        return {
            "next_order": self._next_order,
            "next_trade": self._next_trade,
            "counters": self.counters.as_dict(),
            "race_on_cancel": sorted(self._race_on_cancel),
        }

    def _restore(self, state: StoredState) -> None:
        """Replace this fresh exchange's state with a file's. Resting lists come back in
        seq order, which is the order they were appended in."""
        self._wallets = {a: _Wallet(free=f, used=u) for a, (f, u) in state.wallets.items()}
        for row in state.orders:
            if row.symbol not in self._markets:
                raise ValueError(f"order {row.id} is on unknown symbol {row.symbol}")
            order = _Order(**row._asdict())
            self._orders[order.id] = order
            self._by_client_id[order.client_order_id] = order
            if order.status == "open":
                self._resting.setdefault(order.symbol, []).append(order)
        self._trades = list(state.trades)
        for trade in self._trades:
            self._orders[trade.order_id].trades.append(trade)
        core = state.core
        self._next_order = int(core["next_order"])
        self._next_trade = int(core["next_trade"])
        c = core["counters"]
        self.counters = SimCounters(
            created=int(c["created"]),
            rejected=int(c["rejected"]),
            canceled=int(c["canceled"]),
            trades=int(c["trades"]),
            rejections={str(k): int(v) for k, v in c["rejections"].items()},
        )
        self._race_on_cancel = {str(i) for i in core["race_on_cancel"]}
        self._rng.setstate(state.rng)
        for sym, (bar, book) in state.markets.items():
            if sym not in self._markets:
                raise ValueError(f"market state for unknown symbol {sym}")
            self._bars[sym] = bar
            if book is not None:
                self._books[sym] = _decode_book(bar, book)


def _order_row(o: _Order) -> OrderRow:
    return OrderRow(
        seq=o.seq,
        id=o.id,
        client_order_id=o.client_order_id,
        symbol=o.symbol,
        side=o.side,
        order_type=o.order_type,
        price=o.price,
        amount=o.amount,
        time_in_force=o.time_in_force,
        timestamp=o.timestamp,
        lock_asset=o.lock_asset,
        lock_remaining=o.lock_remaining,
        status=o.status,
        filled=o.filled,
        cost=o.cost,
        fee=o.fee,
        fee_currency=o.fee_currency,
    )


def _encode_book(book: _Book) -> dict[str, Any]:
    """A drawn book with what this bar's fills have consumed of it, exact, as JSON data."""
    return {
        "mid": str(book.mid),
        "bid": str(book.bid),
        "ask": str(book.ask),
        "asks": [[str(lv.price), str(lv.qty)] for lv in book.asks or ()],
        "bids": [[str(lv.price), str(lv.qty)] for lv in book.bids or ()],
    }


def _decode_book(bar: _Bar, raw: dict[str, Any]) -> _Book:
    """The inverse of :func:`_encode_book`; ``bar`` must be the very tuple in ``_bars``
    (the cache is keyed on identity)."""
    return _Book(
        bar=bar,
        mid=Decimal(raw["mid"]),
        bid=Decimal(raw["bid"]),
        ask=Decimal(raw["ask"]),
        asks=[_Level(Decimal(p), Decimal(q)) for p, q in raw["asks"]],
        bids=[_Level(Decimal(p), Decimal(q)) for p, q in raw["bids"]],
    )


def _top(levels: list[_Level] | None, fallback: Decimal) -> tuple[Decimal, Decimal]:
    for level in levels or ():
        if level.qty > 0:
            return level.price, level.qty
    return fallback, ZERO


def _consume(levels: list[_Level], want: Decimal) -> Decimal:
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


def _check(asset: str, wallet: _Wallet) -> None:
    """Balances never go negative; a violation is a simulator bug, so fail loudly even
    under ``python -O``. Also folds an exact zero back to plain ``0`` (not ``0E-10``)."""
    if wallet.free < 0 or wallet.used < 0:
        raise AssertionError(f"{asset} balance went negative: {wallet}")
    if not wallet.used:
        wallet.used = ZERO
    if not wallet.free:
        wallet.free = ZERO
