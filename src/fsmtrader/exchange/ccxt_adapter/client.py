"""The async adapter: one ccxt client, our checks around every order (``checks.py``),
our values out (``convert.py``), every call under the retry policy (``retry.py``).

Secrets never leave: ccxt is given its own logger whose filter scrubs the signed URL and
the key header from its DEBUG lines, every error message is built from a redacted text,
our errors are raised without the ccxt exception attached (no ``__cause__`` /
``__context__``), and no ``repr`` shows the key.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import OrderedDict
from decimal import Decimal
from typing import Any, Final

import ccxt.async_support as ccxt_async

from fsmtrader.errors import ExchangeError, NetworkError, OrderNotFound
from fsmtrader.exchange.ccxt_adapter.checks import check_client_order_id, check_grid, check_order
from fsmtrader.exchange.ccxt_adapter.convert import (
    Candle,
    OrderHint,
    balances_from_ccxt,
    book_top_from_ccxt,
    candles_from_ccxt,
    order_from_ccxt,
    ticker_from_ccxt,
    ticker_touch,
    trade_from_ccxt,
    wire,
)
from fsmtrader.exchange.ccxt_adapter.errors import (
    Op,
    RedactingFilter,
    Redactor,
    describe,
)
from fsmtrader.exchange.ccxt_adapter.history import (
    Page,
    Paging,
    Row,
    walk,
    walk_end_ms,
)
from fsmtrader.exchange.ccxt_adapter.market_filters import filters_from_ccxt
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions, deep_merge
from fsmtrader.exchange.ccxt_adapter.retry import GraceWindow, Retrier
from fsmtrader.exchange.ccxt_adapter.urls import local_urls
from fsmtrader.exchange.types import Balance, OrderInfo, OrderType, Ticker, TimeInForce, TradeInfo
from fsmtrader.markets import MarketFilters, Side

log = logging.getLogger("fsmtrader.exchange.ccxt")

_BOOK_DEPTH: Final = 5
_COID_MEMORY: Final = 10_000


class AsyncCcxtExchange:
    """Binance / MEXC spot as coroutines. Bound to the event loop it is first used on
    (ccxt binds its HTTP session and throttler to it)."""

    def __init__(self, options: CcxtOptions) -> None:
        self.options = options
        self.venue = options.venue
        self.name: str = options.exchange_id
        self.exchange_id = options.exchange_id
        self._redactor = Redactor([options.api_key, options.api_secret])
        # ccxt logs every request (signed URL, key header) at DEBUG on the logger it is
        # given: give it one we scrub.
        self._wire_log = logging.getLogger(f"fsmtrader.exchange.ccxt.wire.{self.exchange_id}")
        self._log_filter = RedactingFilter(self._redactor)
        self._wire_log.addFilter(self._log_filter)
        self._client: Any = getattr(ccxt_async, self.exchange_id)(self._ccxt_config())
        if options.base_url:
            self._client.urls = {
                **self._client.urls,
                "api": local_urls(self._client.urls["api"], options.base_url),
            }
        self._retry = Retrier(
            self.exchange_id,
            attempts=options.retry_attempts,
            base_s=options.retry_base_s,
            max_wait_s=options.max_wait_s,
            redactor=self._redactor,
            last_headers=lambda: getattr(self._client, "last_response_headers", None),
        )
        self._grace = GraceWindow(
            self.exchange_id, options.grace_ms / 1000, max(options.retry_base_s, 0.0)
        )
        self._markets_lock = asyncio.Lock()
        self._markets_loaded = False
        # order id -> clientOrderId, for my-trades rows and answers that omit it.
        self._coid_of: OrderedDict[str, str] = OrderedDict()
        self._closed = False

    def _ccxt_config(self) -> dict[str, Any]:
        o = self.options
        config: dict[str, Any] = {
            "enableRateLimit": o.rate_limit,
            "timeout": int(o.timeout_ms),
            "logger": self._wire_log,
            # A copy: ccxt may write into its options, the venue profile stays as declared.
            "options": deep_merge(
                copy.deepcopy(dict(self.venue.ccxt_options)), o.ccxt_options or {}
            ),
            # load_markets must not call the private currencies endpoint.
            "has": {"fetchCurrencies": False},
        }
        if o.api_key:
            config["apiKey"] = o.api_key
        if o.api_secret:
            config["secret"] = o.api_secret
        return config

    def describe_error(self, exc: BaseException) -> str:
        """A one-line, secret-free description of any exception."""
        return describe(exc, self._redactor)

    def __repr__(self) -> str:
        credentials = "set" if self.options.authenticated else "none"
        return f"AsyncCcxtExchange({self.exchange_id!r}, credentials={credentials})"

    # ------------------------------------------------------------------ plumbing
    def _learn(self, info: OrderInfo) -> OrderInfo:
        if info.id and info.client_order_id:
            self._coid_of[info.id] = info.client_order_id
            self._coid_of.move_to_end(info.id)
            while len(self._coid_of) > _COID_MEMORY:
                self._coid_of.popitem(last=False)
        return info

    def _order(self, raw: Any, hint: OrderHint, action: str) -> OrderInfo:
        if not isinstance(raw, dict):
            raise ExchangeError(f"{self.exchange_id} {action}: answer is not an order")
        try:
            return self._learn(order_from_ccxt(raw, hint, self._coid_of, self.venue.statuses))
        except (ValueError, TypeError, ArithmeticError, KeyError) as exc:
            err = ExchangeError(
                f"{self.exchange_id} {action}: unreadable order answer: "
                f"{describe(exc, self._redactor)}"
            )
        raise err

    def _quote_of(self, symbol: str) -> str | None:
        market = (self._client.markets or {}).get(symbol)
        return str(market["quote"]) if isinstance(market, dict) and market.get("quote") else None

    async def _ensure_markets(self) -> None:
        if self._markets_loaded:
            return
        async with self._markets_lock:
            if not self._markets_loaded:
                await self._load_markets_locked()

    # ------------------------------------------------------------------ markets & data
    async def load_markets(self) -> dict[str, MarketFilters]:
        """Spot markets only, as :class:`MarketFilters` keyed by unified symbol (ccxt's
        TICK_SIZE precision mode for both venues: precision *is* the tick / step).

        The markets are fetched with the venue's spot-only fetcher and installed with
        ``set_markets``: ccxt's ``load_markets`` would also call MEXC's contract API and
        Binance's private currency/margin endpoints.
        """
        async with self._markets_lock:
            return await self._load_markets_locked()

    async def _load_markets_locked(self) -> dict[str, MarketFilters]:
        client = self._client
        fetch = getattr(client, self.venue.markets_fetcher)
        markets = await self._retry.call("load_markets", Op.READ, fetch)
        spot = [m for m in markets if isinstance(m, dict) and m.get("spot")]
        client.set_markets(spot)
        self._markets_loaded = True
        out: dict[str, MarketFilters] = {}
        for m in spot:
            try:
                f = filters_from_ccxt(m)
            except ValueError as exc:
                log.warning("%s: market skipped: %s", self.exchange_id, exc)
                continue
            out[f.symbol] = f
        return out

    async def fetch_ticker(self, symbol: str) -> Ticker:
        """Bid/ask from the venue's 24h ticker (Binance/MEXC include the book top); if it
        lacks them, from the order book."""
        await self._ensure_markets()
        t = await self._retry.call(
            "fetch_ticker", Op.READ, lambda: self._client.fetch_ticker(symbol)
        )
        bid, ask = ticker_touch(t)
        if not bid or not ask:
            bid, _, ask, _ = await self.fetch_order_book_top(symbol)
        return ticker_from_ccxt(t, symbol, bid, ask, now_ms=int(time.time() * 1000))

    async def fetch_order_book_top(self, symbol: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(bid, bid_qty, ask, ask_qty) of the best levels; zeros for an empty side."""
        await self._ensure_markets()
        book = await self._retry.call(
            "fetch_order_book",
            Op.READ,
            lambda: self._client.fetch_order_book(symbol, _BOOK_DEPTH),
        )
        return book_top_from_ccxt(book)

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        """Candles as (ts_ms, open, high, low, close, volume) for WARMUP backfill and
        download-data."""
        await self._ensure_markets()
        rows = await self._retry.call(
            "fetch_ohlcv",
            Op.READ,
            lambda: self._client.fetch_ohlcv(symbol, timeframe, since, limit),
        )
        return candles_from_ccxt(rows)

    async def fetch_balance(self) -> dict[str, Balance]:
        await self._ensure_markets()
        raw = await self._retry.call("fetch_balance", Op.READ, lambda: self._client.fetch_balance())
        return balances_from_ccxt(raw)

    # ------------------------------------------------------------------ orders
    async def create_order(
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
        """Place a limit (IOC/GTC) or market sell order under ``client_order_id``; with
        ``stop_price`` a limit GTC sell goes as Binance's STOP_LOSS_LIMIT (``stopPrice``).

        Retried only while the request certainly did not execute (429/418, connection
        refused before sending). A timeout, a 5xx or an "execution status unknown" answer
        is raised at once as ``NetworkError(maybe_sent=True)``; the router then looks the
        order up by its clientOrderId.
        """
        where = f"{self.exchange_id} create_order {symbol}"
        check_order(self.venue, where, side, order_type, amount, price, time_in_force, stop_price)
        check_client_order_id(self.venue, where, client_order_id)
        await self._ensure_markets()
        grid_price = price if order_type == "limit" else None
        for px in (grid_price, stop_price) if stop_price is not None else (grid_price,):
            check_grid(self._client, self.venue, where, symbol, amount, px, self._redactor)
        hint = OrderHint(
            symbol=symbol,
            side=side,
            amount=amount,
            price=price,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
            order_type=order_type,
        )
        sent_at = self._grace.note_sent(f"coid:{client_order_id}")
        raw = await self._send_create(hint, amount, price, stop_price)
        try:
            info = self._order(raw, hint, "create_order")
        except ExchangeError as exc:
            # The venue accepted the order; only its answer is unreadable. Resolve it by
            # clientOrderId rather than risk a second order.
            raise NetworkError(f"{exc} (order placed; resolve by clientOrderId)") from None
        if info.id:
            self._grace.note_sent(f"id:{info.id}", at=sent_at)
        if info.id and (self.venue.create_acks_only or raw.get("status") is None):
            return await self._state_after_ack(info, symbol)
        return info

    async def _send_create(
        self, hint: OrderHint, amount: Decimal, price: Decimal | None, stop: Decimal | None
    ) -> Any:
        params: dict[str, Any] = {"clientOrderId": hint.client_order_id}
        if hint.order_type == "limit":
            params["timeInForce"] = hint.time_in_force
        if stop is not None:  # ccxt makes a limit with stopPrice a spot STOP_LOSS_LIMIT
            params["stopPrice"] = wire(stop)
        # A market order must go without a price: with one, ccxt turns it into a
        # quote-amount (quoteOrderQty) order.
        wire_price = wire(price) if hint.order_type == "limit" and price is not None else None
        wire_amount = wire(amount)
        return await self._retry.call(
            "create_order",
            Op.CREATE,
            lambda: self._client.create_order(
                hint.symbol, hint.order_type, hint.side, wire_amount, wire_price, dict(params)
            ),
            quote=self._quote_of(hint.symbol),
        )

    async def _state_after_ack(self, info: OrderInfo, symbol: str) -> OrderInfo:
        """The create answer was an acknowledgement only: ask for the order's state, and
        report it as acknowledged (open) if that read fails."""
        try:
            return await self.fetch_order(info.id, symbol)
        except ExchangeError as exc:
            log.info(
                "%s: state of new order %s not readable yet (%s); reporting it open",
                self.exchange_id,
                info.client_order_id,
                exc,
            )
        return info

    async def cancel_order(self, order_id: str, symbol: str) -> OrderInfo:
        """Cancel and return the order's final state.

        If the venue says the order is unknown (it filled or was canceled meanwhile: the
        cancel/fill race) the order is fetched and returned as it is; ``OrderNotFound``
        is raised only when that look-up does not find it either.
        """
        await self._ensure_markets()
        hint = OrderHint(symbol=symbol, order_id=order_id)
        for attempt in range(2):
            try:
                raw = await self._retry.call(
                    "cancel_order",
                    Op.CANCEL,
                    lambda: self._client.cancel_order(order_id, symbol),
                )
            except OrderNotFound:
                info = await self.fetch_order(order_id, symbol)
                if info.status == "open" and attempt == 0:
                    continue  # not yet visible to the cancel (MEXC lag): cancel again
                return info
            try:
                info = self._order(raw, hint, "cancel_order")
            except ExchangeError:
                return await self.fetch_order(order_id, symbol)
            if info.status == "open":
                # A cancel answered without a final state (no status, or pending): ask.
                try:
                    return await self.fetch_order(order_id, symbol)
                except ExchangeError as exc:
                    log.info("%s: state after cancel unknown: %s", self.exchange_id, exc)
            return info
        raise OrderNotFound(f"{self.exchange_id} cancel_order {order_id}: not cancelable")

    async def fetch_order(self, order_id: str, symbol: str) -> OrderInfo:
        await self._ensure_markets()
        raw = await self._grace.lookup(
            f"id:{order_id}",
            lambda: self._retry.call(
                "fetch_order", Op.READ, lambda: self._client.fetch_order(order_id, symbol)
            ),
        )
        return self._order(raw, OrderHint(symbol=symbol, order_id=order_id), "fetch_order")

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo:
        """Look an order up by our clientOrderId (ccxt's unified ``clientOrderId`` param:
        ``origClientOrderId`` on the wire for both venues)."""
        await self._ensure_markets()
        raw = await self._grace.lookup(
            f"coid:{client_order_id}",
            lambda: self._retry.call(
                "fetch_order_by_client_id",
                Op.READ,
                lambda: self._client.fetch_order(None, symbol, {"clientOrderId": client_order_id}),
            ),
        )
        hint = OrderHint(symbol=symbol, client_order_id=client_order_id)
        return self._order(raw, hint, "fetch_order_by_client_id")

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        """Open orders of one symbol or, with None, of the account (Binance allows it at
        a higher rate-limit weight; real MEXC may insist on a symbol)."""
        await self._ensure_markets()
        rows = await self._retry.call(
            "fetch_open_orders", Op.READ, lambda: self._client.fetch_open_orders(symbol)
        )
        out: list[OrderInfo] = []
        for row in rows or []:
            try:
                out.append(self._order(row, OrderHint(symbol=symbol or ""), "fetch_open_orders"))
            except ExchangeError as exc:
                log.warning("%s: open order skipped: %s", self.exchange_id, exc)
        return out

    async def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        """Our fills in ``symbol`` since ``since`` (ms), oldest first, every page (see
        :mod:`.history`). Without ``since``: from the first trade where the venue has an
        id cursor, else as far back as its history reaches (``history_lookback_ms``)."""
        await self._ensure_markets()
        v = self.venue
        paging = Paging(v.trades_page_limit, v.history_window_ms, v.trades_cursor)
        now = walk_end_ms()
        if since is None and v.trades_cursor is None:
            since = now - (v.history_lookback_ms or v.history_window_ms)

        async def page(start: int | None, end: int | None, extra: dict[str, Any]) -> Any:
            rows = await self._history_call(
                "fetch_my_trades", self._client.fetch_my_trades, symbol, start, end, extra, paging
            )
            return self._trade_rows(rows, symbol)

        return await walk(page, paging, since, now, f"{self.exchange_id} fetch_my_trades")

    async def fetch_orders(self, symbol: str, since: int) -> list[OrderInfo]:
        """Every order of ``symbol`` created since ``since``, oldest first: every window
        from ``since`` to now, every page of each (see :mod:`.history`)."""
        await self._ensure_markets()
        v = self.venue
        paging = Paging(v.history_page_limit, v.history_window_ms, v.orders_cursor)

        async def page(start: int | None, end: int | None, extra: dict[str, Any]) -> Any:
            rows = await self._history_call(
                "fetch_orders", self._client.fetch_orders, symbol, start, end, extra, paging
            )
            out: Page[OrderInfo] = []
            for row in rows:
                try:
                    info = self._order(row, OrderHint(symbol=symbol), "fetch_orders")
                except ExchangeError as exc:
                    log.warning("%s: order skipped: %s", self.exchange_id, exc)
                    out.append(None)
                    continue
                out.append(Row(info.id, info.timestamp, info))
            return out

        return await walk(page, paging, since, walk_end_ms(), f"{self.exchange_id} fetch_orders")

    async def fetch_order_trades(self, order_id: str, symbol: str) -> list[TradeInfo]:
        """The fills of one order (myTrades with orderId), every page: by ``fromId``
        where the venue has it, else (MEXC: without times only the last 24 h) by time
        from the order's creation, or from as far back as the history reaches."""
        await self._ensure_markets()
        v = self.venue
        paging = Paging(v.trades_page_limit, v.history_window_ms, v.trades_cursor)
        now = walk_end_ms()
        since: int | None = None
        if v.trades_cursor is None:
            try:
                since = (await self.fetch_order(order_id, symbol)).timestamp
            except OrderNotFound:
                since = now - (v.history_lookback_ms or v.history_window_ms)

        async def page(start: int | None, end: int | None, extra: dict[str, Any]) -> Any:
            fetch, params = self._client.fetch_my_trades, {"orderId": order_id, **extra}
            rows = await self._history_call(
                "fetch_order_trades", fetch, symbol, start, end, params, paging
            )
            return self._trade_rows(rows, symbol)

        return await walk(page, paging, since, now, f"{self.exchange_id} fetch_order_trades")

    async def _history_call(
        self,
        action: str,
        method: Any,
        symbol: str,
        start: int | None,
        end: int | None,
        extra: dict[str, Any],
        paging: Paging,
    ) -> list[Any]:
        params = dict(extra)
        if end is not None:
            params["until"] = end
        rows = await self._retry.call(
            action, Op.READ, lambda: method(symbol, start, paging.limit, dict(params))
        )
        return list(rows or [])

    def _trade_rows(self, rows: list[Any], symbol: str) -> Page[TradeInfo]:
        out: Page[TradeInfo] = []
        for row in rows:
            try:
                t = trade_from_ccxt(row, symbol=symbol, coid_of=self._coid_of)
            except (ValueError, TypeError, ArithmeticError) as exc:
                log.warning(
                    "%s: trade skipped: %s", self.exchange_id, describe(exc, self._redactor)
                )
                out.append(None)
                continue
            out.append(Row(t.id, t.timestamp, t))
        return out

    async def close(self) -> None:
        """Close ccxt's HTTP session. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._client.close()
        finally:
            self._wire_log.removeFilter(self._log_filter)
