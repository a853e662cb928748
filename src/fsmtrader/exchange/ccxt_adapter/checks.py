"""What the adapter refuses to send: orders the venue would refuse too, or that we never
send at all. A local refusal is an ``InvalidOrder`` with a reason, and no request.

Prices and amounts go out exactly as the router quantized them. ccxt's
``amount_to_precision`` / ``price_to_precision`` would silently round an off-grid value,
so they are used only as a check: if they would change a number the order is refused
with ``InvalidOrder(reason="step"|"tick")``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from fsmtrader.errors import InvalidOrder
from fsmtrader.exchange.ccxt_adapter.convert import decimal_of, wire
from fsmtrader.exchange.ccxt_adapter.errors import Op, Redactor, map_error
from fsmtrader.exchange.ccxt_adapter.venues import VenueProfile

# Binance documents ^[.A-Z:/a-z0-9_-]{1,36}$; MEXC is no wider.
_CLIENT_ID_CHARS: Final = re.compile(r"^[A-Za-z0-9._:/-]+$")


def check_order(
    venue: VenueProfile,
    where: str,
    side: str,
    order_type: str,
    amount: Decimal,
    price: Decimal | None,
    time_in_force: str,
    stop_price: Decimal | None = None,
) -> None:
    """The order's shape: type, side, time in force, a positive amount and limit price,
    and a stop price only as a limit GTC sell on a venue with stop orders.
    ``where`` prefixes the message ("binance create_order BTC/USDT")."""
    if stop_price is not None:
        if not venue.stop_orders:
            raise InvalidOrder(f"{where}: {venue.id} has no spot stop orders", "order_type")
        if side != "sell" or order_type != "limit" or time_in_force != "GTC":
            raise InvalidOrder(f"{where}: a stop-limit must be a limit GTC sell", "order_type")
        if not isinstance(stop_price, Decimal) or not stop_price.is_finite() or stop_price <= 0:
            raise InvalidOrder(f"{where}: stop price {stop_price} must be > 0", "price")
    if order_type not in venue.order_types:
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


def check_client_order_id(venue: VenueProfile, where: str, client_order_id: str) -> None:
    """Length within the venue's limit, characters within what both venues accept."""
    limit = venue.client_id_max_len
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


def check_grid(
    client: Any,
    venue: VenueProfile,
    where: str,
    symbol: str,
    amount: Decimal,
    price: Decimal | None,
    redactor: Redactor,
) -> None:
    """Refuse, rather than let ccxt round, an amount or price off the venue grid.
    ``client`` is the ccxt client with its markets loaded."""
    if symbol not in (client.markets or {}):
        raise InvalidOrder(f"{where}: unknown symbol", "symbol")
    checks: list[tuple[str, Decimal, Callable[[str, str], str]]] = [
        ("step", amount, client.amount_to_precision)
    ]
    if price is not None:
        checks.append(("tick", price, client.price_to_precision))
    for reason, value, to_precision in checks:
        try:
            rounded = decimal_of(to_precision(symbol, wire(value)))
        except Exception as exc:  # BadSymbol, or rounds to zero (ccxt InvalidOrder)
            err = map_error(
                exc, venue=venue.id, op=Op.READ, action="create_order", redactor=redactor
            )
            if not isinstance(err, InvalidOrder):
                err = InvalidOrder(str(err), reason)
            elif err.reason == "invalid":
                err.reason = reason
        else:
            if rounded == value:
                continue
            err = InvalidOrder(
                f"{where}: {'amount' if reason == 'step' else 'price'} {wire(value)} "
                f"is off the market grid (venue would take {rounded})",
                reason,
            )
        raise err
