"""The records published on the bus, one type per ``kind``.

They are plain dicts at run time (the audit trail is their canonical JSON), typed here so
every publisher is checked and every reader can narrow a ``Record`` on ``r["kind"]``.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from fsmtrader.portfolio import TradeFields

# "from" is a keyword, so records with that key use the functional syntax.
PhaseRecord = TypedDict(
    "PhaseRecord",
    {
        "kind": Literal["phase"],
        "ts": int,
        "symbol": str,
        "seq": int,
        "from": str,
        "event": str,
        "to": str,
        "action": str,
        "decision_id": str,
        "reason": str,
    },
)


class ObservedRecord(TypedDict):
    """The buy an observed symbol would have placed (``engine.observe``; Decimals as
    exact text); ``reason`` says how it was priced, or why the router would have refused
    it (``ghost: ...``)."""

    kind: Literal["observed"]
    ts: int
    symbol: str
    decision_id: str
    side: Literal["buy"]
    price: str
    amount: str
    notional: str
    reason: str


class RejectedEventRecord(TypedDict):
    kind: Literal["rejected_event"]
    ts: int
    symbol: str
    phase: str
    event: str


class PositionRecord(TypedDict):
    kind: Literal["position"]
    ts: int
    symbol: str
    decision_id: str
    qty: str
    avg_entry: str
    fees: str


class TradeRecord(TradeFields):
    kind: Literal["trade"]
    ts: int
    mode: NotRequired[str]  # observe, paper or live (absent before per-symbol modes)


class AlertRecord(TypedDict):
    kind: Literal["alert"]
    ts: int
    symbol: str
    alert: str
    detail: str
    error_count: NotRequired[int]
    intent_id: NotRequired[str]
    decision_id: NotRequired[str]


class ResumeRecord(TypedDict):
    kind: Literal["resume"]
    ts: int
    was: str


class HaltRecord(TypedDict):
    kind: Literal["halt"]
    ts: int
    reason: str


class ControlRecord(TypedDict):
    """A person steered the bot (stop entries, resume, force exit, recover, reconcile):
    who asked, what, and what came of it."""

    kind: Literal["control"]
    ts: int
    action: str
    who: str
    symbol: str
    result: int
    message: str


class BreakerRecord(TypedDict):
    """A loss breaker crossed (``action`` "halt", with its setting and figures) or was
    re-armed from the current figures after a person lifted its halt ("rearm")."""

    kind: Literal["breaker"]
    ts: int
    action: str
    breaker: str
    reason: str
    figures: dict[str, str]


class KillSwitchRecord(TypedDict):
    """The STOP file stopped entries, exited a position (``symbol``), or its removal
    lifted the stop it made."""

    kind: Literal["kill_switch"]
    ts: int
    action: str
    command: str
    file: str
    message: str
    symbol: NotRequired[str]


class OrderExtra(TypedDict, total=False):
    """What an order event adds when it has it: the intent's terms on the first event,
    price and amount once reserved."""

    price: str | None
    amount: str
    limit_price: str | None
    ref_price: str
    max_slippage_bps: str
    time_in_force: str
    leg: int
    created_ms: int
    budget: str | None
    stop_price: str


_OrderBase = TypedDict(
    "_OrderBase",
    {
        "kind": Literal["order"],
        "ts": int,
        "intent_id": str,
        "decision_id": str,
        "client_order_id": str,
        "symbol": str,
        "side": str,
        "state": str,
        "from": str | None,
        "attempt": int,
        "order_id": str,
        "filled": str,
        "avg_price": str | None,
        "fee": str,
        "reason": str,
        "mode": str,
    },
)


class OrderEvent(_OrderBase, OrderExtra):
    """An order moved to ``state`` (from ``from``)."""


class FillRecord(TypedDict):
    kind: Literal["fill"]
    ts: int
    intent_id: str
    decision_id: str
    symbol: str
    side: str
    trade_id: str
    order_id: str
    price: str
    amount: str
    fee: str
    fee_currency: str
    mode: NotRequired[str]  # the order's (absent before per-symbol modes)


class FoundFillRecord(TypedDict):
    """Reconcile found this fill on the exchange and booked it (its ``fill`` record comes
    just before): an order the books had given up (``was`` FAILED_FINAL) or had not read
    to the end really executed."""

    kind: Literal["found_fill"]
    ts: int
    intent_id: str
    decision_id: str
    client_order_id: str
    symbol: str
    side: str
    trade_id: str
    order_id: str
    amount: str
    was: str
    reason: str


Record = (
    ObservedRecord
    | PhaseRecord
    | RejectedEventRecord
    | PositionRecord
    | TradeRecord
    | AlertRecord
    | ResumeRecord
    | HaltRecord
    | ControlRecord
    | BreakerRecord
    | KillSwitchRecord
    | OrderEvent
    | FillRecord
    | FoundFillRecord
)
