"""Binance spot v3 errors: ``{"code": -1013, "msg": "..."}`` with Binance's HTTP statuses,
as ccxt's ``binance.handle_errors`` maps them; :class:`MexcWire` overrides the codes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Final

from fsmtrader.errors import (
    DuplicateOrder,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
)
from fsmtrader_testing.simserver.market import MarketSpec
from fsmtrader_testing.simserver.state import ServerState, WireError, WouldTake

#: The answers that differ between flavours only in code and words: name -> (code,
#: message, HTTP status); ``{fields}`` in a message are filled in by the caller.
BINANCE_ERRORS: Final[Mapping[str, tuple[int, str, int]]] = {
    "missing_key": (-2014, "API-key format invalid.", 401),
    "bad_key": (-2015, "Invalid API-key, IP, or permissions for action.", 401),
    "mandatory": (
        -1102,
        "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
        400,
    ),
    "illegal": (
        -1100,
        "Illegal characters found in parameter '{name}'; legal range is '{legal}'.",
        400,
    ),
    "not_required": (-1106, "Parameter '{name}' sent when not required.", 400),
    "bad_signature": (-1022, "Signature for this request is not valid.", 400),
    "timestamp_ahead": (
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
        400,
    ),
    "timestamp_late": (-1021, "Timestamp for this request is outside of the recvWindow.", 400),
    "bad_recv_window": (-1131, "recvWindow must be less than {max_ms}.", 400),
    "bad_symbol": (-1121, "Invalid symbol.", 400),
    "bad_interval": (-1120, "Invalid interval.", 400),
}


# The simulator's rejection reason -> the filter Binance names in its -1013 message.
_FILTER_FAILURES: Final = {
    "tick": "PRICE_FILTER",
    "price": "PRICE_FILTER",
    "min_price": "PRICE_FILTER",
    "max_price": "PRICE_FILTER",
    "step": "LOT_SIZE",
    "min_qty": "LOT_SIZE",
    "max_qty": "LOT_SIZE",
    "amount": "LOT_SIZE",
    "min_notional": "NOTIONAL",
    "max_notional": "NOTIONAL",
    "percent_price": "PERCENT_PRICE_BY_SIDE",
    "market_lot_size": "MARKET_LOT_SIZE",
}


class BinanceErrors:
    """Every error answer the server gives, in Binance's words."""

    client_id_re: ClassVar[re.Pattern[str]]  # its pattern is named when a client id is refused
    errors: ClassVar[Mapping[str, tuple[int, str, int]]] = BINANCE_ERRORS

    def err(
        self, code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> WireError:
        return WireError(status, {"code": code, "msg": msg}, headers)

    def missing_key(self) -> WireError:
        return self.plain_error("missing_key")

    def bad_key(self) -> WireError:
        return self.plain_error("bad_key")

    def mandatory(self, name: str) -> WireError:
        return self.plain_error("mandatory", name=name)

    def illegal(self, name: str, legal: str) -> WireError:
        return self.plain_error("illegal", name=name, legal=legal)

    def not_required(self, name: str) -> WireError:
        return self.plain_error("not_required", name=name)

    def bad_signature(self) -> WireError:
        return self.plain_error("bad_signature")

    def bad_timestamp(self, ahead: bool) -> WireError:
        return self.plain_error("timestamp_ahead" if ahead else "timestamp_late")

    def bad_recv_window(self, max_ms: int) -> WireError:
        return self.plain_error("bad_recv_window", max_ms=max_ms)

    def bad_symbol(self) -> WireError:
        return self.plain_error("bad_symbol")

    def bad_interval(self) -> WireError:
        return self.plain_error("bad_interval")

    def plain_error(self, what: str, /, **fields: object) -> WireError:
        """The flavour's answer ``what`` from its :attr:`errors` table."""
        code, message, status = self.errors[what]
        return self.err(code, message.format(**fields), status)

    def rate_limited(self, retry_after_s: float, ban: bool, now_ms: int) -> WireError:
        headers = {"Retry-After": str(max(0, round(retry_after_s)))}
        if ban:
            until = now_ms + int(retry_after_s * 1000)
            return self.err(
                -1003,
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
                418,
                headers,
            )
        return self.err(
            -1003,
            "Too much request weight used; current limit is 6000 request weight per 1 "
            "MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
            429,
            headers,
        )

    def timed_out(self) -> WireError:
        """Binance's "send status unknown": the client cannot know whether it happened."""
        return self.err(
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; "
            "execution status unknown.",
            503,
        )

    def unavailable(self) -> WireError:
        """A gateway outage: HTML, not JSON, as a CDN in front of the API answers."""
        return WireError(
            503,
            "<html><head><title>503 Service Temporarily Unavailable</title></head>"
            "<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>",
        )

    def unsupported_type(self, wire_type: str, state: ServerState) -> WireError:
        if wire_type.startswith("STOP_LOSS"):
            return self.err(-1013, "Stop loss orders are not supported for this symbol.")
        if wire_type.startswith("TAKE_PROFIT"):
            return self.err(-1013, "Take profit orders are not supported for this symbol.")
        return self.err(-1116, "Invalid orderType.")

    def domain_error(
        self, exc: ExchangeError, op: str, spec: MarketSpec | None, side: str | None = None
    ) -> WireError:
        """A matching-engine error as Binance says it. ``op`` is create, query or cancel;
        ``side`` (buy/sell) is known for a create."""
        if isinstance(exc, WouldTake):
            return self.err(-2010, "Order would immediately match and take.")
        if isinstance(exc, OrderNotFound):
            if op == "cancel":
                return self.err(-2011, "Unknown order sent.")
            return self.err(-2013, "Order does not exist.")
        if isinstance(exc, DuplicateOrder):
            return self.err(-2010, "Duplicate order sent.")
        if isinstance(exc, InsufficientFunds):
            return self.err(-2010, "Account has insufficient balance for requested action.")
        if isinstance(exc, InvalidOrder):
            reason = exc.reason
            failure = _FILTER_FAILURES.get(reason)
            if failure is not None:
                return self.err(-1013, f"Filter failure: {failure}")
            if reason == "symbol":
                return self.bad_symbol()
            if reason == "market_buy":
                return self.err(-1014, "Unsupported order combination.")
            if reason == "would_trigger":  # a stop at or above the last price
                return self.err(-2010, "Order would trigger immediately.")
            if reason == "client_order_id":
                return self.illegal("newClientOrderId", self.client_id_re.pattern)
            return self.err(-1013, f"Invalid order: {exc}")
        return self.err(-1000, "An unknown error occurred while processing the request.", 500)
