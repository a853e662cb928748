"""Translate ccxt exceptions into our error taxonomy, without leaking secrets.

The router decides retry / ghost / resolve-by-clientOrderId from the *class* of the error
it gets, so this module is where a venue's answer becomes a decision. It imports ccxt's
exception classes; the only other ccxt importer is the client (``client.py``), and no code
outside this package imports ccxt at all.

Two things make a direct ``except ccxt.X`` mapping wrong, which is why the venue's own
error code is read first:

* ccxt's tables are not uniform across venues. Binance ``-2011 Unknown order sent`` is
  ``OrderNotFound`` but MEXC's identical code is ``BadRequest``; MEXC ``-2013 Order does not
  exist`` is not in ccxt's MEXC table at all (plain ``ExchangeError``); Binance's
  ``-2010 Duplicate order sent.`` is a plain ``InvalidOrder`` and would become a ghost
  although the order exists and is ours.
* ccxt messages embed the request URL, whose query string carries the HMAC signature
  (and, for some venues, the key travels in headers that are logged at DEBUG). Every
  message we build goes through :class:`Redactor` first.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Final

import aiohttp
from ccxt.base import errors as cx

from fsmtrader.errors import (
    AuthenticationFailed,
    DuplicateOrder,
    ExchangeError,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    OrderNotFound,
    RateLimited,
)

MAX_MESSAGE_CHARS: Final = 400
_MIN_SECRET_LEN: Final = 4

# Venue codes whose answer explicitly says the execution status is unknown (Binance
# -1006 "unexpected response from the message bus", -1007 "timeout waiting for response
# from backend server"). An order create answered with one of these may exist.
UNKNOWN_STATUS_CODES: Final = frozenset({"-1006", "-1007"})
# "The order does not exist" on Binance (-2011 cancel, -2013 query) and MEXC (same codes).
NOT_FOUND_CODES: Final = frozenset({"-2011", "-2013"})

_NOT_FOUND_TEXT: Final = re.compile(
    r"order does not exist|unknown order|order not (?:found|exist)|no such order", re.I
)
_DUPLICATE_TEXT: Final = re.compile(
    r"duplicate (?:order|(?:new)?client ?order ?id)"
    r"|client ?order ?id[^.]{0,40}(?:already|exist|used|repeat|duplicat)"
    r"|(?:newclientorderid|clientorderid)[^.]{0,20}(?:duplicat|repeat)",
    re.I,
)
_INSUFFICIENT_TEXT: Final = re.compile(
    r"insufficient (?:balance|funds|position)|oversold|account has insufficient", re.I
)
# Refusals of the credentials that some venues file under a generic code (MEXC 10072
# "Api key info invalid" is a BadRequest in ccxt's table).
_AUTH_TEXT: Final = re.compile(
    r"api[- ]?key|signature for this request|signature verification|no authority", re.I
)
# MEXC 30002 says the same for min quantity and min notional; the unit tells them apart.
_MIN_VOLUME: Final = re.compile(
    r"minimum transaction volume cannot be less than\s*:?\s*[0-9.]+\s*([A-Za-z0-9]+)", re.I
)
_FILTER_TEXT: Final = re.compile(r"filter failure|PRICE_FILTER|LOT_SIZE|NOTIONAL", re.I)

# Order matters: MIN_NOTIONAL contains NOTIONAL, MARKET_LOT_SIZE contains LOT_SIZE. The
# codes are the simulator's (``simulated.validate``), so a ghost reads the same either way.
_REASONS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"PERCENT_PRICE", re.I), "percent_price"),
    (re.compile(r"MARKET_LOT_SIZE", re.I), "market_lot_size"),
    (re.compile(r"PRICE_FILTER|price precision|tick ?size", re.I), "tick"),
    (re.compile(r"LOT_SIZE|step ?size|amount decimal places|quantity precision", re.I), "step"),
    (
        re.compile(r"MIN_NOTIONAL|NOTIONAL|minimum transaction amount|min(?:imum)? notional", re.I),
        "min_notional",
    ),
    (
        re.compile(r"minimum transaction volume|quantity less than|min(?:imum)? qty", re.I),
        "min_qty",
    ),
    (re.compile(r"price exceeds|price is (?:higher|lower)", re.I), "price"),
    (re.compile(r"market is closed|trading (?:is )?disabled|suspended", re.I), "market_closed"),
)

# Query strings (signature, timestamp, recvWindow), key-bearing headers and signatures.
_URL_QUERY: Final = re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*")
_SIGNATURE: Final = re.compile(r"(signature\s*[=:]\s*['\"]?)[0-9A-Za-z+/=_-]+", re.I)
_KEY_HEADER: Final = re.compile(
    r"((?:X-MBX-APIKEY|X-MEXC-APIKEY|ApiKey|Signature)['\"]?\s*[:=]\s*['\"]?)[^'\",}\s]+",
    re.I,
)


class Op(Enum):
    """What kind of call failed; it decides what 'maybe sent' means."""

    READ = "read"  # idempotent look-ups: retried on any transport trouble
    CREATE = "create"  # never blindly re-sent: a lost answer means UNKNOWN
    CANCEL = "cancel"  # idempotent on the venue: a repeat answers 'unknown order'


class Redactor:
    """Removes secrets from any text before it reaches a message or a log line.

    Holds the key and secret only to be able to scrub them; its ``repr`` never shows them.
    """

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str | None]) -> None:
        found = {s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}
        # Longest first so a secret containing another is removed whole.
        self._secrets: tuple[str, ...] = tuple(sorted(found, key=len, reverse=True))

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._secrets)} secrets>)"

    def redact(self, text: str) -> str:
        out = text
        for secret in self._secrets:
            out = out.replace(secret, "<redacted>")
        out = _URL_QUERY.sub(r"\1?<redacted>", out)
        out = _SIGNATURE.sub(r"\1<redacted>", out)
        return _KEY_HEADER.sub(r"\1<redacted>", out)


class RedactingFilter(logging.Filter):
    """Scrubs ccxt's DEBUG request/response lines, which carry the signed URL and the
    key header. Attached to the logger we hand ccxt, so it runs before any handler."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: drop its args rather than risk a leak
            message = str(record.msg)
        clean = self._redactor.redact(message)
        if clean != message:
            record.msg = clean
            record.args = None
        return True


def venue_error(text: str) -> tuple[str | None, str | None]:
    """The venue's ``(code, msg)`` from a ccxt message such as
    ``binance {"code":-2010,"msg":"Duplicate order sent."}``; (None, None) if absent."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            body, _ = decoder.raw_decode(text, start)
        except ValueError:
            body = None
        if isinstance(body, dict) and ("code" in body or "msg" in body or "message" in body):
            code = body.get("code")
            msg = body.get("msg", body.get("message"))
            return (None if code is None else str(code), None if msg is None else str(msg))
        start = text.find("{", start + 1)
    return None, None


def invalid_reason(text: str, quote: str | None = None) -> str:
    """A short machine code for an order rejection (tick, step, min_notional, ...).
    ``quote`` (the market's quote currency) disambiguates MEXC's minimum-volume text."""
    volume = _MIN_VOLUME.search(text)
    if volume is not None:
        return "min_notional" if quote and volume.group(1).upper() == quote.upper() else "min_qty"
    for pattern, reason in _REASONS:
        if pattern.search(text):
            return reason
    return "invalid"


def retry_after_s(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), if any."""
    if not headers:
        return None
    value = None
    for key, val in headers.items():
        if str(key).lower() == "retry-after":
            value = str(val).strip()
            break
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _connect_failed(exc: BaseException) -> bool:
    """True when the failure provably happened before a byte was sent: DNS failure or
    the TCP/TLS connect itself failed (connection refused)."""
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, aiohttp.ClientConnectorError | socket.gaierror)


def describe(exc: BaseException, redactor: Redactor) -> str:
    """A safe one-line description: ccxt class, venue code and message, or scrubbed text."""
    text = str(exc)
    code, msg = venue_error(text)
    if code is not None or msg is not None:
        detail = f"code={code} msg={msg}" if code is not None else f"msg={msg}"
    else:
        detail = text
    detail = redactor.redact(" ".join(detail.split()))
    if len(detail) > MAX_MESSAGE_CHARS:
        detail = detail[:MAX_MESSAGE_CHARS] + "..."
    return f"{type(exc).__name__}: {detail}"


@dataclass(frozen=True, slots=True)
class _Failure:
    """One failed ccxt call, read once: what the mapping rules look at."""

    exc: BaseException
    op: Op
    code: str | None  # the venue's own error code, when its answer carries one
    probe: str  # the venue's message (or the whole text): what the text rules search
    where: str
    what: str  # the secret-free description
    retry_after: float | None
    quote: str | None

    @property
    def message(self) -> str:
        return f"{self.where}: {self.what}"


def map_error(
    exc: BaseException,
    *,
    venue: str,
    op: Op,
    action: str,
    redactor: Redactor,
    retry_after: float | None = None,
    quote: str | None = None,
) -> ExchangeError:
    """Our error for a failed ccxt call. ``action`` names the adapter method (for the
    message); ``retry_after`` comes from the last response's headers; ``quote`` is the
    order's quote currency when known.

    The rules run in order and the first that matches decides: the venue's verdict on
    the order, then refusals of the request, then transport trouble.
    """
    text = str(exc)
    code, msg = venue_error(text)
    failure = _Failure(
        exc=exc,
        op=op,
        code=code,
        probe=msg if msg is not None else text,
        where=f"{venue} {action}",
        what=describe(exc, redactor),
        retry_after=retry_after,
        quote=quote,
    )
    if not isinstance(exc, cx.BaseError):
        # A failure inside ccxt's own parsing or our conversion. For a create the request
        # may have been answered with success before it broke: treat the outcome as unknown.
        if op is Op.CREATE:
            return NetworkError(f"{failure.message} (outcome unknown)", maybe_sent=True)
        return ExchangeError(failure.message)
    return (
        _order_verdict(failure)
        or _request_refused(failure)
        or _transport_failure(failure)
        or _unclassified(failure)
    )


def _unclassified(f: _Failure) -> ExchangeError:
    """An error the venue gave no class for (MEXC's -1000 "unknown error" is a plain
    ccxt ExchangeError). A read is idempotent and nothing said the request was wrong, so
    it counts as the venue's trouble and is retried; anything else is reported as is."""
    if f.op is Op.READ:
        return ExchangeUnavailable(f"{f.message} (unclassified)", maybe_sent=False)
    return ExchangeError(f.message)


def _order_verdict(f: _Failure) -> ExchangeError | None:
    """What the venue said about the order itself (exists, unknown, funds, filters)."""
    exc, message = f.exc, f.message
    # Checked before the class: ccxt calls Binance's duplicate a plain InvalidOrder.
    if isinstance(exc, cx.DuplicateOrderId) or _DUPLICATE_TEXT.search(f.probe):
        return DuplicateOrder(message)
    if f.code in UNKNOWN_STATUS_CODES:
        return NetworkError(f"{message} (execution status unknown)", maybe_sent=True)
    if (
        isinstance(exc, cx.OrderNotFound)
        or f.code in NOT_FOUND_CODES
        or _NOT_FOUND_TEXT.search(f.probe)
    ):
        return OrderNotFound(message)
    if isinstance(exc, cx.InsufficientFunds) or _INSUFFICIENT_TEXT.search(f.probe):
        return InsufficientFunds(message)
    if isinstance(exc, cx.DDoSProtection | cx.RateLimitExceeded):
        return RateLimited(message, retry_after_s=f.retry_after)
    if isinstance(exc, cx.InvalidOrder):
        return InvalidOrder(message, reason=invalid_reason(f.probe, f.quote))
    if isinstance(exc, cx.BadSymbol):
        if f.op is Op.CREATE:
            return InvalidOrder(message, reason="symbol")
        return ExchangeError(message)
    if isinstance(exc, cx.MarketClosed):
        return InvalidOrder(message, reason="market_closed")
    return None


def _request_refused(f: _Failure) -> ExchangeError | None:
    """A definite refusal of the request (credentials, parameters, clock): nothing ran."""
    exc, message = f.exc, f.message
    if isinstance(exc, cx.AuthenticationError) or (
        isinstance(exc, cx.BadRequest) and _AUTH_TEXT.search(f.probe)
    ):
        # Not retryable and not an order problem: the credentials or permissions are wrong.
        return AuthenticationFailed(f"{f.where}: authentication refused: {f.what}")
    if isinstance(exc, cx.BadRequest):
        if f.op is Op.CREATE or _FILTER_TEXT.search(f.probe):
            return InvalidOrder(message, reason=invalid_reason(f.probe, f.quote))
        return ExchangeError(message)
    if isinstance(exc, cx.InvalidNonce):
        # recvWindow / timestamp refusal: a definite answer, nothing executed.
        return NetworkError(f"{message} (clock skew?)", maybe_sent=False)
    return None


def _transport_failure(f: _Failure) -> ExchangeError | None:
    """No usable answer: whether the request may have run decides ``maybe_sent``."""
    exc, message = f.exc, f.message
    if isinstance(exc, cx.RequestTimeout):
        return NetworkError(message, maybe_sent=True)
    if isinstance(exc, cx.OnMaintenance):
        return ExchangeUnavailable(message, maybe_sent=False)
    if isinstance(exc, cx.ExchangeNotAvailable):
        if _connect_failed(exc):
            return NetworkError(f"{message} (connect failed, not sent)", maybe_sent=False)
        # HTTP 5xx or a connection dropped mid-request: the venue may have acted on it.
        return ExchangeUnavailable(message, maybe_sent=True)
    if isinstance(exc, cx.NetworkError):
        return NetworkError(message, maybe_sent=not _connect_failed(exc))
    if isinstance(exc, cx.BadResponse | cx.OperationFailed):
        # An answer we cannot read, or a venue-side "unknown error": for a create the
        # order may exist.
        return ExchangeUnavailable(message, maybe_sent=f.op is not Op.READ)
    return None


def retryable(err: ExchangeError, op: Op) -> bool:
    """Whether the adapter itself may try the same request again.

    Reads and cancels are idempotent: any transport trouble is retried. A create is
    retried only when the request certainly did not execute: a rate-limit refusal or a
    connection that failed before sending. A timeout or an unknown-status answer goes
    straight back to the router, which resolves the order by its clientOrderId.
    """
    if not isinstance(err, NetworkError):
        return False
    if op is not Op.CREATE:
        return True
    if isinstance(err, RateLimited):
        return True
    return not err.maybe_sent and not isinstance(err, ExchangeUnavailable)
