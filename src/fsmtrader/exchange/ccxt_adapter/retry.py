"""When a failed ccxt call is tried again, and when "not found" means "not yet".

:class:`Retrier` runs one call under the retry policy of its :class:`Op` (tenacity,
exponential backoff with jitter, a venue's Retry-After honoured up to ``max_wait_s``);
every failure leaves it as our error class, never as a ccxt exception. An order create
is retried only while the request certainly did not execute (see ``errors.retryable``).

:class:`GraceWindow` remembers when this process sent each order, so that a look-up of
an order created a moment ago is asked again while the venue may still be catching up
(MEXC, ccxt issue 21614) instead of being reported as not found.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from fsmtrader.errors import ExchangeError, OrderNotFound, RateLimited
from fsmtrader.exchange.ccxt_adapter.errors import (
    Op,
    Redactor,
    map_error,
    retry_after_s,
    retryable,
)

log = logging.getLogger("fsmtrader.exchange.ccxt")

T = TypeVar("T")


class RetryStats:
    """How often calls were tried again, per action, and how long rate limits made them
    wait: counted on the adapter's loop as the retries happen, read by the metrics scrape
    from another thread (hence the lock). Counting only: nothing here changes a retry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._retries: Counter[str] = Counter()
        self._rate_limit_waits = 0
        self._rate_limit_wait_s = 0.0

    def note_retry(self, action: str, sleep_s: float, rate_limited: bool) -> None:
        with self._lock:
            self._retries[action] += 1
            if rate_limited:
                self._rate_limit_waits += 1
                self._rate_limit_wait_s += sleep_s

    def snapshot(self) -> dict[str, Any]:
        """``{"retries": {action: n}, "rate_limit_waits": n, "rate_limit_wait_seconds": s}``."""
        with self._lock:
            return {
                "retries": dict(self._retries),
                "rate_limit_waits": self._rate_limit_waits,
                "rate_limit_wait_seconds": self._rate_limit_wait_s,
            }


class Retrier:
    """One venue's retry policy. ``attempts`` counts all attempts, the first included;
    ``last_headers`` reads the client's last response headers (for Retry-After)."""

    def __init__(
        self,
        venue: str,
        *,
        attempts: int,
        base_s: float,
        max_wait_s: float,
        redactor: Redactor,
        last_headers: Callable[[], Any],
    ) -> None:
        self.venue = venue
        self.attempts = attempts
        self.max_wait_s = max_wait_s
        self._redactor = redactor
        self._last_headers = last_headers
        base = max(base_s, 0.0)
        self._backoff = wait_exponential_jitter(multiplier=base, max=max_wait_s, jitter=base)
        self.stats = RetryStats()

    async def once(
        self, action: str, op: Op, fn: Callable[[], Awaitable[T]], quote: str | None = None
    ) -> T:
        """One ccxt call; any failure comes out as our error with no ccxt exception
        attached (its text can carry the signed URL)."""
        try:
            return await fn()
        except ExchangeError:
            raise
        except Exception as exc:
            headers = self._last_headers()
            err = map_error(
                exc,
                venue=self.venue,
                op=op,
                action=action,
                redactor=self._redactor,
                retry_after=retry_after_s(headers if isinstance(headers, Mapping) else None),
                quote=quote,
            )
        raise err

    async def call(
        self, action: str, op: Op, fn: Callable[[], Awaitable[T]], quote: str | None = None
    ) -> T:
        """A ccxt call under the retry policy of ``op`` (see ``retryable``)."""
        retrying = AsyncRetrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, ExchangeError) and retryable(e, op)),
            before_sleep=lambda rs: self._log_retry(action, rs),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self.once(action, op, fn, quote)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _stop(self, rs: RetryCallState) -> bool:
        if rs.attempt_number >= self.attempts:
            return True
        exc = rs.outcome.exception() if rs.outcome is not None else None
        # A Retry-After longer than we are willing to block goes back to the caller,
        # whose own scheduler waits instead of this thread.
        return (
            isinstance(exc, RateLimited)
            and exc.retry_after_s is not None
            and exc.retry_after_s > self.max_wait_s
        )

    def _wait(self, rs: RetryCallState) -> float:
        delay = float(self._backoff(rs))
        exc = rs.outcome.exception() if rs.outcome is not None else None
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            delay = max(delay, exc.retry_after_s)
        return delay

    def _log_retry(self, action: str, rs: RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome is not None else None
        sleep = rs.next_action.sleep if rs.next_action is not None else 0.0
        self.stats.note_retry(action, sleep, isinstance(exc, RateLimited))
        log.warning(
            "%s %s failed (attempt %d/%d), retrying in %.2fs: %s",
            self.venue,
            action,
            rs.attempt_number,
            self.attempts,
            sleep,
            exc,
        )


class GraceWindow:
    """When each order was sent (keyed ``coid:...`` / ``id:...``), for ``grace_s``.

    With a zero window nothing is remembered and look-ups are asked once."""

    def __init__(self, venue: str, grace_s: float, base_s: float) -> None:
        self.venue = venue
        self.grace_s = max(grace_s, 0.0)
        self._first_delay_s = max(base_s, 0.05)
        self._sent: OrderedDict[str, float] = OrderedDict()

    def note_sent(self, key: str, at: float | None = None) -> float:
        """Note that an order was sent now (or ``at``); returns that time."""
        now = time.monotonic() if at is None else at
        if self.grace_s <= 0:
            return now
        self._sent[key] = now
        self._sent.move_to_end(key)
        horizon = time.monotonic() - self.grace_s
        while self._sent:
            first_key, first_at = next(iter(self._sent.items()))
            if first_at >= horizon:
                break
            del self._sent[first_key]
        return now

    async def lookup(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        """Run a look-up of the order ``key``; while it was sent less than the window
        ago, treat "not found" as "not visible yet" and ask again."""
        sent_at = self._sent.get(key)
        delay = self._first_delay_s
        while True:
            try:
                return await fetch()
            except OrderNotFound:
                if sent_at is None:
                    raise
                remaining = sent_at + self.grace_s - time.monotonic()
                if remaining <= 0:
                    raise
                log.info("%s: order not visible yet, asking again in %.2fs", self.venue, delay)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
