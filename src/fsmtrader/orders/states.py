"""The order state machine per intent, as a table of allowed moves."""

from __future__ import annotations

from enum import StrEnum

from fsmtrader.errors import IllegalOrderTransition


class OrderState(StrEnum):
    NEW = "NEW"
    RESERVED = "RESERVED"
    SENT = "SENT"
    PARTIAL = "PARTIAL"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"  # sent, answer lost: resolved by clientOrderId, never re-sent blind
    RETRY = "RETRY"
    FAILED_FINAL = "FAILED_FINAL"
    RECONCILED = "RECONCILED"


S = OrderState
ORDER_TABLE: dict[OrderState, frozenset[OrderState]] = {
    S.NEW: frozenset({S.RESERVED, S.FAILED_FINAL}),
    S.RESERVED: frozenset({S.SENT, S.ERROR, S.UNKNOWN}),
    S.SENT: frozenset({S.SENT, S.PARTIAL, S.FILLED, S.CANCELED, S.UNKNOWN}),
    S.PARTIAL: frozenset({S.PARTIAL, S.FILLED, S.CANCELED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.SENT, S.PARTIAL, S.FILLED, S.CANCELED, S.RETRY, S.UNKNOWN}),
    S.ERROR: frozenset({S.RETRY, S.FAILED_FINAL}),
    S.RETRY: frozenset({S.SENT, S.ERROR, S.UNKNOWN, S.FAILED_FINAL}),
    S.FILLED: frozenset({S.RECONCILED}),
    S.CANCELED: frozenset({S.RECONCILED}),
    # Only reconcile takes these (orders/found.py): an order given up as never sent that
    # the exchange shows executed is booked as what it was, then RECONCILED.
    S.FAILED_FINAL: frozenset({S.FILLED, S.CANCELED}),
    S.RECONCILED: frozenset(),
}
TERMINAL: frozenset[OrderState] = frozenset({S.FAILED_FINAL, S.RECONCILED})
# States in which an order may be live on the exchange.
LIVE: frozenset[OrderState] = frozenset({S.SENT, S.PARTIAL, S.UNKNOWN})


def check_move(src: OrderState, dst: OrderState) -> None:
    if dst not in ORDER_TABLE[src]:
        raise IllegalOrderTransition(f"order cannot go {src} -> {dst}")
