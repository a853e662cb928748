"""The synchronous face of the adapter: what the engine and the router call.

The engine core is synchronous and ccxt is async, so :class:`CcxtExchange` owns a private
event loop and runs :class:`AsyncCcxtExchange` coroutines on it. Two loop modes:

* ``inline=True``: the calling thread drives the loop itself, no hand-off to another
  thread (the engine's mode: two thread wake-ups per call are most of the overhead);
* otherwise a daemon thread runs the loop; blocking calls wait for it, and async callers
  on their own loop run any coroutine of :attr:`CcxtExchange.core` through
  :meth:`CcxtExchange.submit`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from fsmtrader.errors import ExchangeError, NetworkError, required
from fsmtrader.exchange.ccxt_adapter.client import AsyncCcxtExchange
from fsmtrader.exchange.ccxt_adapter.convert import Candle
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.types import Balance, OrderInfo, OrderType, Ticker, TimeInForce, TradeInfo
from fsmtrader.markets import MarketFilters, Side

log = logging.getLogger("fsmtrader.exchange.ccxt")

T = TypeVar("T")

_BUILD_TIMEOUT_S = 30
_CLOSE_TIMEOUT_S = 10


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def is_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class _InlineLoop:
    """A private event loop driven by the calling thread itself. Only for callers that
    are not on an event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def stop(self) -> None:
        if not self.loop.is_closed():
            self.loop.close()


def call_deadline_s(options: CcxtOptions) -> float:
    """Upper bound for one blocking call: every attempt timing out, every backoff at its
    cap, plus the not-found window. Past it the call is abandoned as unknown."""
    per_attempt = options.timeout_ms / 1000 + options.max_wait_s
    return options.retry_attempts * per_attempt * 3 + options.grace_ms / 1000 + 5


class CcxtExchange:
    """Binance / MEXC spot for the synchronous engine (implements ``Exchange``).

    Every protocol method runs the async core on the adapter's private loop and waits
    for it (see the module doc for the two loop modes).
    """

    def __init__(self, options: CcxtOptions, *, inline: bool = False) -> None:
        self.name: str = options.exchange_id
        self.exchange_id = options.exchange_id
        self._inline = _InlineLoop() if inline else None
        self._runner = None if inline else _LoopThread(f"ccxt-{options.exchange_id}")
        self._deadline_s = call_deadline_s(options)
        self._closed = False

        async def build() -> AsyncCcxtExchange:
            # Built on the adapter's loop so ccxt binds its session and throttler to it.
            return AsyncCcxtExchange(options)

        try:
            if self._inline is not None:
                self._core = self._inline.run(build(), _BUILD_TIMEOUT_S)
            else:
                runner = required(self._runner, "the adapter's loop thread")
                self._core = runner.submit(build()).result(timeout=_BUILD_TIMEOUT_S)
        except BaseException:
            self._stop_loop()
            raise

    def __repr__(self) -> str:
        return f"CcxtExchange({self.exchange_id!r}, closed={self._closed})"

    def __enter__(self) -> CcxtExchange:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def core(self) -> AsyncCcxtExchange:
        """The async implementation. Its coroutines run only on this adapter's loop:
        from another loop, ``await adapter.submit(adapter.core.fetch_ticker(sym))``."""
        return self._core

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise ExchangeError(f"{self.exchange_id}: adapter is closed")
        if self._inline is not None:
            try:
                return self._inline.run(coro, self._deadline_s)
            except TimeoutError:
                raise self._abandoned() from None
        runner = required(self._runner, "the adapter's loop thread")
        if runner.is_loop_thread():
            coro.close()
            raise RuntimeError(
                "blocking adapter call from its own event loop: await the core's coroutine"
            )
        future = runner.submit(coro)
        try:
            return future.result(timeout=self._deadline_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise self._abandoned() from None

    def _abandoned(self) -> NetworkError:
        return NetworkError(
            f"{self.exchange_id}: call abandoned after {self._deadline_s:.0f}s", maybe_sent=True
        )

    def retry_stats(self) -> dict[str, Any]:
        """What the adapter's retries have counted so far (read-only copy, any thread):
        ``{"retries": {action: n}, "rate_limit_waits": n, "rate_limit_wait_seconds": s}``."""
        return self._core._retry.stats.snapshot()

    async def submit(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of :attr:`core` on the adapter's loop thread and await it from
        the caller's own event loop (the one way for async callers; threaded mode only)."""
        if self._closed:
            coro.close()
            raise ExchangeError(f"{self.exchange_id}: adapter is closed")
        if self._runner is None:
            coro.close()
            raise RuntimeError("this adapter was built inline=True: use the blocking methods")
        return await asyncio.wrap_future(self._runner.submit(coro))

    # ------------------------------------------------------------------ Exchange protocol
    def load_markets(self) -> dict[str, MarketFilters]:
        return self._run(self._core.load_markets())

    def fetch_ticker(self, symbol: str) -> Ticker:
        return self._run(self._core.fetch_ticker(symbol))

    def fetch_order_book_top(self, symbol: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        return self._run(self._core.fetch_order_book_top(symbol))

    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        return self._run(self._core.fetch_ohlcv(symbol, timeframe, since, limit))

    def fetch_balance(self) -> dict[str, Balance]:
        return self._run(self._core.fetch_balance())

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
        return self._run(
            self._core.create_order(
                symbol, side, order_type, amount, price, time_in_force, client_order_id, stop_price
            )
        )

    def cancel_order(self, order_id: str, symbol: str) -> OrderInfo:
        return self._run(self._core.cancel_order(order_id, symbol))

    def fetch_order(self, order_id: str, symbol: str) -> OrderInfo:
        return self._run(self._core.fetch_order(order_id, symbol))

    def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo:
        return self._run(self._core.fetch_order_by_client_id(client_order_id, symbol))

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        return self._run(self._core.fetch_open_orders(symbol))

    def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        return self._run(self._core.fetch_my_trades(symbol, since))

    def fetch_orders(self, symbol: str, since: int) -> list[OrderInfo]:
        return self._run(self._core.fetch_orders(symbol, since))

    def fetch_order_trades(self, order_id: str, symbol: str) -> list[TradeInfo]:
        return self._run(self._core.fetch_order_trades(order_id, symbol))

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the ccxt client and stop the loop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._inline is not None:
                self._inline.run(self._core.close(), _CLOSE_TIMEOUT_S)
            else:
                runner = required(self._runner, "the adapter's loop thread")
                runner.submit(self._core.close()).result(timeout=_CLOSE_TIMEOUT_S)
        except Exception as exc:
            log.warning("%s: close failed: %s", self.exchange_id, self._core.describe_error(exc))
        finally:
            with contextlib.suppress(RuntimeError):
                self._stop_loop()

    def _stop_loop(self) -> None:
        if self._inline is not None:
            self._inline.stop()
        elif self._runner is not None:
            self._runner.stop()
