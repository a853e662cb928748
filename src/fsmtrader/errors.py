"""Every error fsmtrader raises on purpose, under one base.

The exchange taxonomy: the router decides retry / ghost / resolve-by-fetch from the
*class* of an error, so every exchange (simulated or ccxt-backed) raises these and nothing
else. The books and the store raise theirs here too, so no layer imports another just to
catch an error. Messages never carry secrets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def required(value: T | None, what: str) -> T:
    """``value``, which our own logic guarantees is there: an explicit error if it is not
    (an ``assert`` would vanish under ``python -O``)."""
    if value is None:
        raise RuntimeError(f"internal error: {what} is missing")
    return value


class FsmTraderError(Exception):
    """Base of every error fsmtrader raises on purpose."""


class ConfigError(FsmTraderError):
    """A setting is missing or out of range; the message names it."""


class DataError(FsmTraderError):
    """Input data (CSV, markets file) is malformed; the message names file and line."""


class StoreError(FsmTraderError):
    """The state database cannot be used; the message says why and what to do."""


class CommitFailed(BaseException):
    """The state could not be written (disk full, an I/O error): trading stops now.

    A BaseException, like SystemExit, on purpose: the handlers that park one symbol or
    retry one order catch ``Exception``, and none of them may carry on trading with
    books the disk no longer holds. The message names the file and the cause."""


class PortfolioError(FsmTraderError):
    """A change that would break an invariant (negative cash, over-release, ...)."""


class IllegalOrderTransition(FsmTraderError):
    """An order move the order table does not allow."""


class Rejected(FsmTraderError):
    """An event with no row for the current phase."""


class ExchangeError(FsmTraderError):
    """Anything the exchange answered with, or failed to answer."""


class InvalidOrder(ExchangeError):
    """The exchange refused the order's parameters. Never retried: becomes a ghost.

    ``reason`` is a short machine code: tick, step, min_qty, min_notional, price, ...
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class AuthenticationFailed(ExchangeError):
    """The venue refused our key or signature (or its permissions). Never retried: the bot
    halts new entries and says so."""


class InsufficientFunds(ExchangeError):
    """Not enough free balance for the order."""


class DuplicateOrder(ExchangeError):
    """An order with this clientOrderId already exists: resolve it by fetching, never resend."""


class OrderNotFound(ExchangeError):
    """The exchange does not know the order (yet, or any more)."""


class NetworkError(ExchangeError):
    """Transport failure. ``maybe_sent`` says the request may have reached the exchange.

    A failure with maybe_sent=True makes the order's outcome UNKNOWN: it is resolved by
    fetching by clientOrderId, never by a blind re-send under a new id.
    """

    def __init__(self, message: str, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class RateLimited(NetworkError):
    """HTTP 429 / 418: back off; ``retry_after_s`` when the exchange said so."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message, maybe_sent=False)
        self.retry_after_s = retry_after_s


class ExchangeUnavailable(NetworkError):
    """Maintenance or 5xx."""


def read_json(
    path: Path, *, missing: str, bad: str, error: type[FsmTraderError] = DataError
) -> Any:
    """A JSON file's value, for files a user names: one line, never a traceback, when it
    is absent (``missing``) or unreadable or not JSON (``bad``, with the reason)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(missing) from None
    except (OSError, ValueError) as exc:
        raise error(f"{bad} ({exc})") from None
