"""The live exchange plug: Binance or MEXC spot through ccxt, behind our ``Exchange`` protocol.

This is the only module (with its helper :mod:`fsmtrader.exchange.ccxt_adapter.errors`) that
imports ccxt, so everything venue-specific stops here: the router sees Decimal
``OrderInfo`` / ``TradeInfo`` values and our error classes, never a ccxt dict or exception.

Why it is shaped the way it is:

* The engine core is synchronous. :class:`CcxtExchange` owns an asyncio loop in a daemon
  thread and runs :class:`AsyncCcxtExchange` coroutines on it; async callers can use the
  ``a*`` methods (``acreate_order`` ...) from any loop, or build an
  :class:`AsyncCcxtExchange` on their own loop.
* An order create is never blindly re-sent. It is retried by tenacity only when the request
  certainly did not execute (429/418, connection refused before sending). A timeout, a 5xx
  or an "execution status unknown" answer is raised at once as
  ``NetworkError(maybe_sent=True)``; the router then looks the order up by its
  clientOrderId. Reads and cancels are idempotent and are retried with backoff.
* Prices and amounts are sent exactly as the router quantized them. ccxt's
  ``amount_to_precision`` / ``price_to_precision`` would silently round an off-grid
  value, so they are used only as a check: if they would change a number the order is
  refused locally with ``InvalidOrder(reason="step"|"tick")``.
* Secrets never leave: ccxt is given its own logger whose filter scrubs the signed URL and
  the key header from its DEBUG lines, every error message is built from a redacted text,
  our errors are raised without the ccxt exception attached (no ``__cause__`` /
  ``__context__``), and no ``repr`` shows the key.

Venue quirks handled here:

* MEXC, ccxt issue 21614: an order just created may be answered "Order does not exist"
  for a moment. Look-ups (by id or clientOrderId) of an order this process created less
  than ``not_found_grace_ms`` ago are retried with backoff inside that window before
  ``OrderNotFound`` is raised.
* MEXC, ccxt issue 25003: a spot IOC may come back ``open`` like a GTC. It is reported as
  the venue says (status ``open``); the engine cancels it after its exit-IOC TTL.
* MEXC, ccxt issue 22104: no spot stop-limit orders. This adapter never sends stop or
  trigger orders at all: ``create_order`` accepts ``limit`` and ``market`` only.
* MEXC's create and cancel answers carry no order state: after such an answer the order
  is fetched once (within the grace window) so the router gets a real status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, TypeVar, cast

import ccxt.async_support as ccxt_async
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
)

from fsmtrader.errors import (
    ExchangeError,
    InvalidOrder,
    NetworkError,
    OrderNotFound,
    RateLimited,
)
from fsmtrader.exchange.ccxt_adapter.errors import (
    Op,
    RedactingFilter,
    Redactor,
    describe,
    map_error,
    retry_after_s,
    retryable,
)
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
from fsmtrader.markets import MarketFilters

log = logging.getLogger("fsmtrader.exchange.ccxt")

ExchangeId = Literal["binance", "mexc"]
Candle = tuple[int, float, float, float, float, float]

SUPPORTED: Final[tuple[ExchangeId, ...]] = ("binance", "mexc")
CLIENT_ID_MAX_LEN: Final[dict[str, int]] = {"binance": 36, "mexc": 32}
DEFAULT_NOT_FOUND_GRACE_MS: Final[dict[str, int]] = {"binance": 0, "mexc": 3000}
# Binance documents ^[.A-Z:/a-z0-9_-]{1,36}$; MEXC is no wider.
_CLIENT_ID_CHARS: Final = re.compile(r"^[A-Za-z0-9._:/-]+$")
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)
_STATUS: Final[dict[str, OrderStatus]] = {
    "open": "open",
    "closed": "closed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "expired": "canceled",  # an IOC that expired, possibly after a partial fill
    "rejected": "rejected",
    "canceling": "open",  # PENDING_CANCEL: not final yet
}
_BOOK_DEPTH: Final = 5

# ccxt options that keep it on spot, public endpoints for market data, and away from
# margin / futures / wallet (sapi) endpoints that would need extra permissions.
_BASE_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    "binance": {
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},
        "fetchMargins": False,  # else load_markets calls sapi margin/allPairs with the key
        "fetchCurrencies": False,  # sapi capital/config/getall: private, wallet permission
        "warnOnFetchOpenOrdersWithoutSymbol": False,  # reconcile lists all open orders
        "newOrderRespType": {"market": "FULL", "limit": "FULL"},  # fills in the answer
    },
    "mexc": {
        "defaultType": "spot",
        # Honoured by newer ccxt only; load_markets calls fetch_spot_markets directly.
        "fetchMarkets": {"types": {"spot": True, "swap": {"linear": False, "inverse": False}}},
    },
}

T = TypeVar("T")


def local_urls(exchange_id: ExchangeId, base_url: str) -> dict[str, Any]:
    """ccxt ``urls`` that send *every* API family of the venue to ``base_url`` (e.g. a
    local simulation server), keeping each endpoint's path. Nothing can then reach the
    real venue by accident, even an endpoint we never meant to call."""
    cls = getattr(ccxt_async, exchange_id)
    api = cls().describe()["urls"]["api"]
    base = base_url.rstrip("/")

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: rewrite(v) for k, v in node.items()}
        if isinstance(node, str) and "://" in node:
            rest = node.split("://", 1)[1]
            path = rest[rest.find("/") :] if "/" in rest else ""
            return base + path
        return node

    return {"api": rewrite(api)}


# --------------------------------------------------------------------------- conversions


def _plain(value: Decimal) -> str:
    """A Decimal as a plain string (never ``1E-7``): what goes on the wire."""
    return format(value, "f")


def _tidy(d: Decimal) -> Decimal:
    """Drop trailing zeros ("0.50000000" -> 0.5, "0E-8" -> 0) without going to an
    exponent form for whole numbers (100 stays 100, not 1E+2)."""
    if d == d.to_integral_value():
        return d.quantize(_ONE)
    return d.normalize()


def _dec(*candidates: Any) -> Decimal | None:
    """The first candidate that is a finite number, as Decimal. Strings (the venue's raw
    fields) are taken verbatim; floats go through their shortest repr."""
    for value in candidates:
        if value is None or isinstance(value, bool):
            continue
        try:
            if isinstance(value, Decimal):
                d = value
            elif isinstance(value, str | int):
                d = Decimal(value)
            else:
                d = Decimal(repr(float(value)))
        except (InvalidOperation, ValueError, TypeError):
            continue
        if d.is_finite():
            return _tidy(d)
    return None


def _dec0(*candidates: Any) -> Decimal:
    found = _dec(*candidates)
    return _ZERO if found is None else found


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class _Hint:
    """What we know about an order independently of the venue's answer: fills the gaps
    of terse answers (MEXC's create/cancel acknowledgements)."""

    symbol: str = ""
    side: Side | None = None
    amount: Decimal | None = None
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    client_order_id: str = ""
    order_type: OrderType | None = None
    order_id: str = ""


class _Incomplete(ValueError):
    """The venue's answer lacks a field we cannot guess (side, amount)."""


def order_from_ccxt(
    order: Mapping[str, Any], hint: _Hint | None = None, coid_of: Mapping[str, str] | None = None
) -> OrderInfo:
    """Convert a ccxt unified order to :class:`OrderInfo`, preferring the venue's raw
    strings (``info``) over ccxt's floats. Trades are kept only when every one of them has
    an id the router can de-duplicate against ``fetch_my_trades``; otherwise they are
    left empty and the router reads my-trades itself."""
    hint = hint or _Hint()
    info = _as_dict(order.get("info"))
    order_id = str(order.get("id") or info.get("orderId") or hint.order_id or "")
    # Binance's cancel answer has the cancel request's own id in clientOrderId and the
    # order's in origClientOrderId.
    coid = str(
        info.get("origClientOrderId")
        or order.get("clientOrderId")
        or hint.client_order_id
        or (coid_of or {}).get(order_id, "")
    )
    symbol = str(order.get("symbol") or hint.symbol)
    side_raw = str(order.get("side") or hint.side or "").lower()
    if side_raw not in ("buy", "sell"):
        raise _Incomplete(f"order {order_id}: no side in the answer")
    side = cast(Side, side_raw)
    amount = _dec(info.get("origQty"), order.get("amount"), hint.amount)
    if amount is None:
        raise _Incomplete(f"order {order_id}: no amount in the answer")
    raw_status = order.get("status")
    status: OrderStatus = _STATUS.get(str(raw_status).lower(), "open") if raw_status else "open"
    filled = _dec0(info.get("executedQty"), order.get("filled"))
    cost = _dec(info.get("cummulativeQuoteQty"), order.get("cost"))
    if cost is None or cost < 0:  # Binance reports -1 for some archived orders
        avg = _dec(order.get("average"))
        cost = filled * avg if avg is not None else _ZERO
    type_raw = str(order.get("type") or hint.order_type or "limit").lower()
    order_type: OrderType = "market" if type_raw == "market" else "limit"
    if order_type == "market":
        price = cost / filled if filled > 0 else _ZERO
    else:
        price = _dec0(info.get("price"), order.get("price"), hint.price)
    tif_raw = str(order.get("timeInForce") or hint.time_in_force or "").upper()
    tif: TimeInForce = "IOC" if tif_raw in ("IOC", "FOK") or order_type == "market" else "GTC"
    timestamp = int(_dec0(order.get("timestamp"), info.get("transactTime"), info.get("time")))

    trades: list[TradeInfo] = []
    raw_trades = order.get("trades") or []
    if raw_trades and all(isinstance(t, dict) and t.get("id") for t in raw_trades):
        trades = [
            trade_from_ccxt(
                t,
                order_id=order_id,
                client_order_id=coid,
                symbol=symbol,
                side=side,
                timestamp=timestamp,
            )
            for t in raw_trades
        ]
    fee, fee_currency = _order_fee(order, trades)
    return OrderInfo(
        id=order_id,
        client_order_id=coid,
        symbol=symbol,
        side=side,
        price=price,
        amount=amount,
        time_in_force=tif,
        status=status,
        timestamp=timestamp,
        filled=filled,
        cost=cost,
        fee=fee,
        fee_currency=fee_currency,
        trades=trades,
        order_type=order_type,
    )


def _order_fee(order: Mapping[str, Any], trades: list[TradeInfo]) -> tuple[Decimal, str]:
    currencies = {t.fee_currency for t in trades if t.fee}
    if trades and len(currencies) <= 1:
        return sum((t.fee for t in trades), _ZERO), next(iter(currencies), "")
    fee = _as_dict(order.get("fee"))
    cost = _dec(fee.get("cost"))
    if cost is not None:
        return cost, str(fee.get("currency") or "")
    return _ZERO, ""


def trade_from_ccxt(
    trade: Mapping[str, Any],
    *,
    order_id: str = "",
    client_order_id: str = "",
    symbol: str = "",
    side: Side | None = None,
    timestamp: int = 0,
    coid_of: Mapping[str, str] | None = None,
) -> TradeInfo:
    """Convert a ccxt unified trade (a my-trades row or a fill inside an order answer)."""
    info = _as_dict(trade.get("info"))
    oid = str(trade.get("order") or info.get("orderId") or order_id or "")
    side_raw = str(trade.get("side") or side or "").lower()
    if side_raw not in ("buy", "sell"):
        raise _Incomplete(f"trade {trade.get('id')}: no side")
    fee = _as_dict(trade.get("fee"))
    fee_cost = _dec0(info.get("commission"), fee.get("cost"))
    fee_currency = str(fee.get("currency") or info.get("commissionAsset") or "")
    return TradeInfo(
        id=str(trade.get("id") or info.get("id") or info.get("tradeId") or ""),
        order_id=oid,
        client_order_id=client_order_id
        or str(info.get("clientOrderId") or "")
        or (coid_of or {}).get(oid, ""),
        symbol=str(trade.get("symbol") or symbol),
        side=cast(Side, side_raw),
        price=_dec0(info.get("price"), trade.get("price")),
        amount=_dec0(info.get("qty"), trade.get("amount")),
        fee=fee_cost,
        fee_currency=fee_currency,
        timestamp=int(_dec0(trade.get("timestamp"), info.get("time"), timestamp)),
        maker=trade.get("takerOrMaker") == "maker" or info.get("isMaker") is True,
    )


def balances_from_ccxt(balance: Mapping[str, Any]) -> dict[str, Balance]:
    """Non-zero balances by unified currency code. Binance and MEXC both answer with
    ``balances: [{asset, free, locked}]`` strings, used when present."""
    out: dict[str, Balance] = {}
    free = _as_dict(balance.get("free"))
    used = _as_dict(balance.get("used"))
    raw_rows = _as_dict(balance.get("info")).get("balances")
    raw: dict[str, tuple[Decimal, Decimal]] = {}
    if isinstance(raw_rows, list):
        for row in raw_rows:
            if isinstance(row, dict) and row.get("asset"):
                raw[str(row["asset"])] = (_dec0(row.get("free")), _dec0(row.get("locked")))
    for code in set(free) | set(used):
        raw_free, raw_used = raw.get(code, (None, None))
        b = Balance(free=_dec0(raw_free, free.get(code)), used=_dec0(raw_used, used.get(code)))
        if b.total != 0:
            out[code] = b
    return out


# --------------------------------------------------------------------------- async core


class AsyncCcxtExchange:
    """The async implementation. Bound to the event loop it is first used on."""

    def __init__(
        self,
        exchange_id: ExchangeId,
        *,
        api_key: str | None,
        api_secret: str | None,
        urls: dict[str, Any] | None = None,
        timeout_ms: int = 10_000,
        not_found_grace_ms: int | None = None,
        retry_attempts: int = 4,
        retry_base_s: float = 0.2,
        options: dict[str, Any] | None = None,
        max_wait_s: float = 10.0,
    ) -> None:
        if exchange_id not in SUPPORTED:
            raise ValueError(f"exchange_id must be one of {SUPPORTED}, got {exchange_id!r}")
        if retry_attempts < 1:
            raise ValueError("retry_attempts must be >= 1")
        self.name: str = exchange_id
        self.exchange_id: ExchangeId = exchange_id
        if not_found_grace_ms is None:
            not_found_grace_ms = DEFAULT_NOT_FOUND_GRACE_MS[exchange_id]
        grace = not_found_grace_ms
        self._grace_s = max(grace, 0) / 1000
        self._attempts = retry_attempts
        self._base_s = max(retry_base_s, 0.0)
        self._max_wait_s = max_wait_s
        self._backoff = wait_exponential_jitter(
            multiplier=self._base_s, max=max_wait_s, jitter=self._base_s
        )
        self._redactor = Redactor([api_key, api_secret])
        self._authenticated = bool(api_key and api_secret)
        # ccxt logs every request (signed URL, key header) at DEBUG on the logger it is
        # given: give it one we scrub.
        self._wire_log = logging.getLogger(f"fsmtrader.exchange.ccxt.wire.{exchange_id}")
        self._log_filter = RedactingFilter(self._redactor)
        self._wire_log.addFilter(self._log_filter)
        config: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": int(timeout_ms),
            "logger": self._wire_log,
            "options": _deep_merge(_BASE_OPTIONS[exchange_id], options or {}),
            # load_markets must not call the private currencies endpoint.
            "has": {"fetchCurrencies": False},
        }
        if api_key:
            config["apiKey"] = api_key
        if api_secret:
            config["secret"] = api_secret
        if urls:
            config["urls"] = urls
        self._client: Any = getattr(ccxt_async, exchange_id)(config)
        self._markets_lock = asyncio.Lock()
        self._markets_loaded = False
        # clientOrderId / order id -> monotonic time we sent the create (the MEXC
        # not-found window); order id -> clientOrderId for my-trades rows.
        self._recent: OrderedDict[str, float] = OrderedDict()
        self._coid_of: OrderedDict[str, str] = OrderedDict()
        self._closed = False

    def describe_error(self, exc: BaseException) -> str:
        """A one-line, secret-free description of any exception."""
        return describe(exc, self._redactor)

    def __repr__(self) -> str:
        return (
            f"AsyncCcxtExchange({self.exchange_id!r}, "
            f"credentials={'set' if self._authenticated else 'none'})"
        )

    # ------------------------------------------------------------------ plumbing
    async def _once(
        self, action: str, op: Op, fn: Callable[[], Awaitable[T]], quote: str | None = None
    ) -> T:
        """One ccxt call; any failure comes out as our error with no ccxt exception
        attached (its text can carry the signed URL)."""
        try:
            return await fn()
        except ExchangeError:
            raise
        except Exception as exc:
            headers = getattr(self._client, "last_response_headers", None)
            err = map_error(
                exc,
                venue=self.exchange_id,
                op=op,
                action=action,
                redactor=self._redactor,
                retry_after=retry_after_s(headers if isinstance(headers, Mapping) else None),
                quote=quote,
            )
        raise err

    async def _call(
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
                return await self._once(action, op, fn, quote)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _stop(self, rs: RetryCallState) -> bool:
        if rs.attempt_number >= self._attempts:
            return True
        exc = rs.outcome.exception() if rs.outcome is not None else None
        # A Retry-After longer than we are willing to block goes back to the caller,
        # whose own scheduler waits instead of this thread.
        return (
            isinstance(exc, RateLimited)
            and exc.retry_after_s is not None
            and exc.retry_after_s > self._max_wait_s
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
        log.warning(
            "%s %s failed (attempt %d/%d), retrying in %.2fs: %s",
            self.exchange_id,
            action,
            rs.attempt_number,
            self._attempts,
            sleep,
            exc,
        )

    def _remember_sent(self, key: str, at: float | None = None) -> float:
        """Note that an order was sent now (for the not-found grace window)."""
        now = time.monotonic() if at is None else at
        if self._grace_s <= 0:
            return now
        self._recent[key] = now
        self._recent.move_to_end(key)
        horizon = time.monotonic() - self._grace_s
        while self._recent:
            first_key, first_at = next(iter(self._recent.items()))
            if first_at >= horizon:
                break
            del self._recent[first_key]
        return now

    def _sent_at(self, key: str) -> float | None:
        return self._recent.get(key)

    def _learn(self, info: OrderInfo) -> OrderInfo:
        if info.id and info.client_order_id:
            self._coid_of[info.id] = info.client_order_id
            self._coid_of.move_to_end(info.id)
            while len(self._coid_of) > 10_000:
                self._coid_of.popitem(last=False)
        return info

    async def _with_grace(self, sent_at: float | None, fetch: Callable[[], Awaitable[T]]) -> T:
        """Run a look-up; while the order was sent less than the grace window ago, treat
        "not found" as "not visible yet" (MEXC, ccxt issue 21614) and ask again."""
        delay = max(self._base_s, 0.05)
        while True:
            try:
                return await fetch()
            except OrderNotFound:
                if sent_at is None:
                    raise
                remaining = sent_at + self._grace_s - time.monotonic()
                if remaining <= 0:
                    raise
                log.info(
                    "%s: order not visible yet, asking again in %.2fs", self.exchange_id, delay
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)

    def _order(self, raw: Any, hint: _Hint, action: str) -> OrderInfo:
        if not isinstance(raw, dict):
            raise ExchangeError(f"{self.exchange_id} {action}: answer is not an order")
        try:
            return self._learn(order_from_ccxt(raw, hint, self._coid_of))
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

        The markets are fetched with ccxt's spot-only fetcher and installed with
        ``set_markets``: ccxt's ``load_markets`` would also call MEXC's contract API and
        Binance's private currency/margin endpoints.
        """
        async with self._markets_lock:
            return await self._load_markets_locked()

    async def _load_markets_locked(self) -> dict[str, MarketFilters]:
        client = self._client
        fetch = client.fetch_spot_markets if self.exchange_id == "mexc" else client.fetch_markets
        markets = await self._call("load_markets", Op.READ, fetch)
        spot = [m for m in markets if isinstance(m, dict) and m.get("spot")]
        client.set_markets(spot)
        self._markets_loaded = True
        out: dict[str, MarketFilters] = {}
        for m in spot:
            try:
                f = MarketFilters.from_ccxt(m)
            except ValueError as exc:
                log.warning("%s: market skipped: %s", self.exchange_id, exc)
                continue
            out[f.symbol] = f
        return out

    async def fetch_ticker(self, symbol: str) -> Ticker:
        """Bid/ask from the venue's 24h ticker (Binance/MEXC include the book top); if it
        lacks them, from the order book."""
        await self._ensure_markets()
        t = await self._call("fetch_ticker", Op.READ, lambda: self._client.fetch_ticker(symbol))
        info = _as_dict(t.get("info"))
        bid = _dec(info.get("bidPrice"), t.get("bid"))
        ask = _dec(info.get("askPrice"), t.get("ask"))
        if not bid or not ask:
            bid, _, ask, _ = await self.fetch_order_book_top(symbol)
        last = _dec(info.get("lastPrice"), t.get("last"), t.get("close")) or (bid + ask) / 2
        volume = _dec0(info.get("volume"), t.get("baseVolume"))
        ts = t.get("timestamp")
        return Ticker(
            symbol=symbol,
            timestamp=int(ts) if ts else int(time.time() * 1000),
            bid=bid,
            ask=ask,
            last=last,
            volume=volume,
        )

    async def fetch_order_book_top(self, symbol: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(bid, bid_qty, ask, ask_qty) of the best levels; zeros for an empty side."""
        await self._ensure_markets()
        book = await self._call(
            "fetch_order_book",
            Op.READ,
            lambda: self._client.fetch_order_book(symbol, _BOOK_DEPTH),
        )
        bids, asks = book.get("bids") or [], book.get("asks") or []
        bid, bid_qty = (_dec0(bids[0][0]), _dec0(bids[0][1])) if bids else (_ZERO, _ZERO)
        ask, ask_qty = (_dec0(asks[0][0]), _dec0(asks[0][1])) if asks else (_ZERO, _ZERO)
        return bid, bid_qty, ask, ask_qty

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        """Candles as (ts_ms, open, high, low, close, volume) for WARMUP backfill and
        download-data. Floats: these feed indicators, not money arithmetic."""
        await self._ensure_markets()
        rows = await self._call(
            "fetch_ohlcv",
            Op.READ,
            lambda: self._client.fetch_ohlcv(symbol, timeframe, since, limit),
        )
        out: list[Candle] = []
        for r in rows or []:
            if isinstance(r, list | tuple) and len(r) >= 6 and None not in r[:6]:
                out.append(
                    (int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))
                )
        return out

    async def fetch_balance(self) -> dict[str, Balance]:
        await self._ensure_markets()
        raw = await self._call("fetch_balance", Op.READ, lambda: self._client.fetch_balance())
        return balances_from_ccxt(raw)

    # ------------------------------------------------------------------ orders
    def _check_order(
        self,
        symbol: str,
        side: str,
        order_type: str,
        amount: Decimal,
        price: Decimal | None,
        time_in_force: str,
        client_order_id: str,
    ) -> None:
        """Local refusals: things the venue would refuse too, or that we never send."""
        where = f"{self.exchange_id} create_order {symbol}"
        if order_type not in ("limit", "market"):
            # Never stop / stop-limit / trigger orders (MEXC spot has none: ccxt #22104).
            raise InvalidOrder(f"{where}: order type {order_type!r} not supported", "order_type")
        if side not in ("buy", "sell"):
            raise InvalidOrder(f"{where}: side {side!r}", "side")
        if order_type == "market" and side != "sell":
            raise InvalidOrder(f"{where}: market buys are not sent", "market_buy_not_allowed")
        if time_in_force not in ("IOC", "GTC"):
            raise InvalidOrder(f"{where}: time in force {time_in_force!r}", "time_in_force")
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise InvalidOrder(f"{where}: amount {amount} must be > 0", "amount")
        if order_type == "limit" and (
            price is None or not isinstance(price, Decimal) or not price.is_finite() or price <= 0
        ):
            raise InvalidOrder(f"{where}: a limit order needs a price > 0", "price")
        limit = CLIENT_ID_MAX_LEN[self.exchange_id]
        if not client_order_id or len(client_order_id) > limit:
            raise InvalidOrder(
                f"{where}: clientOrderId must be 1..{limit} characters, got {len(client_order_id)}",
                "client_order_id",
            )
        if not _CLIENT_ID_CHARS.match(client_order_id):
            raise InvalidOrder(
                f"{where}: clientOrderId has characters outside [A-Za-z0-9._:/-]",
                "client_order_id",
            )

    def _check_grid(self, symbol: str, amount: Decimal, price: Decimal | None) -> None:
        """Refuse, rather than let ccxt round, an amount or price off the venue grid."""
        where = f"{self.exchange_id} create_order {symbol}"
        if symbol not in (self._client.markets or {}):
            raise InvalidOrder(f"{where}: unknown symbol", "symbol")
        checks: list[tuple[str, Decimal, Callable[[str, str], str]]] = [
            ("step", amount, self._client.amount_to_precision)
        ]
        if price is not None:
            checks.append(("tick", price, self._client.price_to_precision))
        for reason, value, to_precision in checks:
            try:
                rounded = _dec(to_precision(symbol, _plain(value)))
            except Exception as exc:  # BadSymbol, or rounds to zero (ccxt InvalidOrder)
                err = map_error(
                    exc,
                    venue=self.exchange_id,
                    op=Op.READ,
                    action="create_order",
                    redactor=self._redactor,
                )
                if not isinstance(err, InvalidOrder):
                    err = InvalidOrder(str(err), reason)
                elif err.reason == "invalid":
                    err.reason = reason
            else:
                if rounded == value:
                    continue
                err = InvalidOrder(
                    f"{where}: {'amount' if reason == 'step' else 'price'} {_plain(value)} "
                    f"is off the market grid (venue would take {rounded})",
                    reason,
                )
            raise err

    async def create_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        client_order_id: str,
    ) -> OrderInfo:
        """Place a limit (IOC/GTC) or market sell order under ``client_order_id``.

        Retried only while the request certainly did not execute; see the module doc.
        """
        self._check_order(symbol, side, order_type, amount, price, time_in_force, client_order_id)
        await self._ensure_markets()
        self._check_grid(symbol, amount, price if order_type == "limit" else None)
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if order_type == "limit":
            params["timeInForce"] = time_in_force
        # A market order must go without a price: with one, ccxt turns it into a
        # quote-amount (quoteOrderQty) order.
        wire_price = _plain(price) if order_type == "limit" and price is not None else None
        wire_amount = _plain(amount)
        sent_at = self._remember_sent(f"coid:{client_order_id}")
        raw = await self._call(
            "create_order",
            Op.CREATE,
            lambda: self._client.create_order(
                symbol, order_type, side, wire_amount, wire_price, dict(params)
            ),
            quote=self._quote_of(symbol),
        )
        hint = _Hint(
            symbol=symbol,
            side=side,
            amount=amount,
            price=price,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
            order_type=order_type,
        )
        try:
            info = self._order(raw, hint, "create_order")
        except ExchangeError as exc:
            # The venue accepted the order; only its answer is unreadable. Resolve it by
            # clientOrderId rather than risk a second order.
            raise NetworkError(f"{exc} (order placed; resolve by clientOrderId)") from None
        if info.id:
            self._remember_sent(f"id:{info.id}", at=sent_at)
        if isinstance(raw, dict) and raw.get("status") is None and info.id:
            # MEXC answers a create with an acknowledgement only: ask for the state.
            try:
                return await self.fetch_order(info.id, symbol)
            except ExchangeError as exc:
                log.info(
                    "%s: state of new order %s not readable yet (%s); reporting it open",
                    self.exchange_id,
                    client_order_id,
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
        hint = _Hint(symbol=symbol, order_id=order_id)
        for attempt in range(2):
            try:
                raw = await self._call(
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
                # MEXC answers a cancel without the final state: ask for it.
                try:
                    return await self.fetch_order(order_id, symbol)
                except ExchangeError as exc:
                    log.info("%s: state after cancel unknown: %s", self.exchange_id, exc)
            return info
        raise OrderNotFound(f"{self.exchange_id} cancel_order {order_id}: not cancelable")

    async def fetch_order(self, order_id: str, symbol: str) -> OrderInfo:
        await self._ensure_markets()
        raw = await self._with_grace(
            self._sent_at(f"id:{order_id}"),
            lambda: self._call(
                "fetch_order", Op.READ, lambda: self._client.fetch_order(order_id, symbol)
            ),
        )
        return self._order(raw, _Hint(symbol=symbol, order_id=order_id), "fetch_order")

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo:
        """Look an order up by our clientOrderId (ccxt's unified ``clientOrderId`` param:
        ``origClientOrderId`` on the wire for both venues)."""
        await self._ensure_markets()
        raw = await self._with_grace(
            self._sent_at(f"coid:{client_order_id}"),
            lambda: self._call(
                "fetch_order_by_client_id",
                Op.READ,
                lambda: self._client.fetch_order(None, symbol, {"clientOrderId": client_order_id}),
            ),
        )
        hint = _Hint(symbol=symbol, client_order_id=client_order_id)
        return self._order(raw, hint, "fetch_order_by_client_id")

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        """Open orders of one symbol or, with None, of the account (Binance allows it at
        a higher rate-limit weight; real MEXC may insist on a symbol)."""
        await self._ensure_markets()
        rows = await self._call(
            "fetch_open_orders", Op.READ, lambda: self._client.fetch_open_orders(symbol)
        )
        out: list[OrderInfo] = []
        for row in rows or []:
            try:
                out.append(self._order(row, _Hint(symbol=symbol or ""), "fetch_open_orders"))
            except ExchangeError as exc:
                log.warning("%s: open order skipped: %s", self.exchange_id, exc)
        return out

    async def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        """Our fills in ``symbol`` since ``since`` (ms), oldest first. The venue answers
        one page (500 on Binance/MEXC by default)."""
        await self._ensure_markets()
        rows = await self._call(
            "fetch_my_trades", Op.READ, lambda: self._client.fetch_my_trades(symbol, since)
        )
        out: list[TradeInfo] = []
        for row in rows or []:
            try:
                out.append(trade_from_ccxt(row, symbol=symbol, coid_of=self._coid_of))
            except (ValueError, TypeError, ArithmeticError) as exc:
                log.warning(
                    "%s: trade skipped: %s", self.exchange_id, describe(exc, self._redactor)
                )
        out.sort(key=lambda t: (t.timestamp, t.id))
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


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- sync facade


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
    """A private event loop driven by the calling thread itself: a synchronous caller
    (the engine) then pays no hand-off to another thread — two thread wake-ups per call,
    most of the adapter's overhead. Only for callers that are not on an event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def stop(self) -> None:
        if not self.loop.is_closed():
            self.loop.close()


class CcxtExchange:
    """Binance / MEXC spot for the synchronous engine (implements ``Exchange``).

    Every protocol method runs the async core on a private event loop thread and waits
    for it. The ``a*`` methods (``aload_markets``, ``acreate_order``, ...) do the same
    without blocking, for callers that live on another event loop.

    ``not_found_grace_ms`` defaults to the venue's quirk window (MEXC 3000 ms, Binance 0).
    ``retry_attempts`` counts all attempts of one call, the first included.
    """

    def __init__(
        self,
        exchange_id: ExchangeId,
        *,
        api_key: str | None,
        api_secret: str | None,
        urls: dict[str, Any] | None = None,
        timeout_ms: int = 10_000,
        not_found_grace_ms: int | None = None,
        retry_attempts: int = 4,
        retry_base_s: float = 0.2,
        options: dict[str, Any] | None = None,
        max_wait_s: float = 10.0,
        inline: bool = False,
    ) -> None:
        self.name: str = exchange_id
        self.exchange_id: ExchangeId = exchange_id
        # inline: the calling thread drives the loop (fastest, blocking calls only);
        # otherwise a loop thread serves the blocking methods and the a* methods alike.
        self._inline = _InlineLoop() if inline else None
        self._runner = None if inline else _LoopThread(f"ccxt-{exchange_id}")
        # Upper bound for one blocking call: every attempt timing out, every backoff at
        # its cap, plus the not-found window. Past it the call is abandoned as unknown.
        grace_ms = DEFAULT_NOT_FOUND_GRACE_MS.get(exchange_id, 0)
        if not_found_grace_ms is not None:
            grace_ms = not_found_grace_ms
        self._deadline_s = (
            retry_attempts * (timeout_ms / 1000 + max_wait_s) * 3 + grace_ms / 1000 + 5
        )
        self._closed = False

        async def build() -> AsyncCcxtExchange:
            # Built on the loop thread so ccxt binds its session and throttler to it.
            return AsyncCcxtExchange(
                exchange_id,
                api_key=api_key,
                api_secret=api_secret,
                urls=urls,
                timeout_ms=timeout_ms,
                not_found_grace_ms=not_found_grace_ms,
                retry_attempts=retry_attempts,
                retry_base_s=retry_base_s,
                options=options,
                max_wait_s=max_wait_s,
            )

        try:
            if self._inline is not None:
                self._core = self._inline.run(build(), 30)
            else:
                assert self._runner is not None
                self._core = self._runner.submit(build()).result(timeout=30)
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
        """The async implementation; only usable on this adapter's own loop."""
        return self._core

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise ExchangeError(f"{self.exchange_id}: adapter is closed")
        if self._inline is not None:
            try:
                return self._inline.run(coro, self._deadline_s)
            except TimeoutError:
                raise NetworkError(
                    f"{self.exchange_id}: call abandoned after {self._deadline_s:.0f}s",
                    maybe_sent=True,
                ) from None
        assert self._runner is not None
        if self._runner.is_loop_thread():
            coro.close()
            raise RuntimeError("blocking adapter call from its own event loop: use the a* methods")
        future = self._runner.submit(coro)
        try:
            return future.result(timeout=self._deadline_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise NetworkError(
                f"{self.exchange_id}: call abandoned after {self._deadline_s:.0f}s",
                maybe_sent=True,
            ) from None

    async def _arun(self, coro: Coroutine[Any, Any, T]) -> T:
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

    def order_book_top(self, symbol: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """Same as :meth:`fetch_order_book_top` (the simulated exchange's name)."""
        return self.fetch_order_book_top(symbol)

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
    ) -> OrderInfo:
        return self._run(
            self._core.create_order(
                symbol, side, order_type, amount, price, time_in_force, client_order_id
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

    # ------------------------------------------------------------------ async variants
    async def aload_markets(self) -> dict[str, MarketFilters]:
        return await self._arun(self._core.load_markets())

    async def afetch_ticker(self, symbol: str) -> Ticker:
        return await self._arun(self._core.fetch_ticker(symbol))

    async def afetch_order_book_top(self, symbol: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        return await self._arun(self._core.fetch_order_book_top(symbol))

    async def afetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        return await self._arun(self._core.fetch_ohlcv(symbol, timeframe, since, limit))

    async def afetch_balance(self) -> dict[str, Balance]:
        return await self._arun(self._core.fetch_balance())

    async def acreate_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        client_order_id: str,
    ) -> OrderInfo:
        return await self._arun(
            self._core.create_order(
                symbol, side, order_type, amount, price, time_in_force, client_order_id
            )
        )

    async def acancel_order(self, order_id: str, symbol: str) -> OrderInfo:
        return await self._arun(self._core.cancel_order(order_id, symbol))

    async def afetch_order(self, order_id: str, symbol: str) -> OrderInfo:
        return await self._arun(self._core.fetch_order(order_id, symbol))

    async def afetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo:
        return await self._arun(self._core.fetch_order_by_client_id(client_order_id, symbol))

    async def afetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        return await self._arun(self._core.fetch_open_orders(symbol))

    async def afetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        return await self._arun(self._core.fetch_my_trades(symbol, since))

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the ccxt client and stop the loop thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._inline is not None:
                self._inline.run(self._core.close(), 10)
            else:
                assert self._runner is not None
                self._runner.submit(self._core.close()).result(timeout=10)
        except Exception as exc:
            log.warning(
                "%s: close failed: %s", self.exchange_id, describe(exc, self._core._redactor)
            )
        finally:
            with contextlib.suppress(RuntimeError):
                self._stop_loop()

    def _stop_loop(self) -> None:
        if self._inline is not None:
            self._inline.stop()
        elif self._runner is not None:
            self._runner.stop()
