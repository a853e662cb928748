"""An Intent is a decision to place one order, fixed before anything is sent.

Its id is derived from the decision that caused it and the leg number, so the same signal
delivered twice produces the same intent_id (and the router places one order), and its
clientOrderId is derived from the intent_id, so the exchange itself can tell us whether
an order for it exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import NotRequired, TypedDict

from fsmtrader.exchange.types import OrderType, TimeInForce
from fsmtrader.markets import Side

CLIENT_ID_PREFIX = "fsm"


class IntentFields(TypedDict):
    """An intent as saved and published (Decimals as exact text)."""

    intent_id: str
    decision_id: str
    symbol: str
    side: str
    amount: str
    limit_price: str | None
    ref_price: str
    max_slippage_bps: str
    time_in_force: str
    leg: int
    created_ms: int
    reason: str
    budget: str | None
    stop_price: NotRequired[str]  # only a stop-limit's (the protective stop)
    mode: NotRequired[str]  # absent in rows saved before per-symbol modes


# Our cap, not a venue's: it must fit every venue profile (exchange/ccxt_adapter/venues.py,
# the strictest is MEXC's 32; a test checks it), and the domain does not import adapters.
DEFAULT_CLIENT_ID_LEN = 32


def make_decision_id(symbol: str, ts_ms: int, kind: str) -> str:
    """Readable and deterministic: the same signal at the same bar gives the same id."""
    return f"{symbol.replace('/', '')}-{ts_ms}-{kind}"


def make_intent_id(decision_id: str, side: Side, leg: int) -> str:
    digest = hashlib.sha256(f"{decision_id}|{side}|{leg}".encode()).hexdigest()
    return digest[:24]


def client_order_id(intent_id: str, max_len: int = DEFAULT_CLIENT_ID_LEN) -> str:
    coid = f"{CLIENT_ID_PREFIX}{intent_id}"
    if len(coid) > max_len:
        coid = coid[:max_len]
    return coid


@dataclass(frozen=True, slots=True)
class Intent:
    intent_id: str
    decision_id: str
    symbol: str
    side: Side
    amount: Decimal
    limit_price: Decimal | None  # None only for a market sell
    ref_price: Decimal  # price the decision was made at (slippage guard anchor)
    max_slippage_bps: Decimal
    time_in_force: TimeInForce
    leg: int
    created_ms: int
    reason: str = ""
    budget: Decimal | None = None  # quote a buy may spend (min_notional bump limit)
    # A stop-limit sell (the protective stop, engine/protect.py): rests untriggered on the
    # venue until its last price falls to this, then sells as a limit at ``limit_price``.
    stop_price: Decimal | None = None
    # where it executes: "paper" (simulator) or "live" (venue); "" in a row saved before
    # per-symbol modes (the session adopts it as the mode its kind always had)
    mode: str = ""

    @classmethod
    def create(
        cls,
        *,
        decision_id: str,
        symbol: str,
        side: Side,
        amount: Decimal,
        limit_price: Decimal | None,
        ref_price: Decimal,
        max_slippage_bps: Decimal,
        time_in_force: TimeInForce,
        leg: int,
        created_ms: int,
        reason: str = "",
        budget: Decimal | None = None,
        stop_price: Decimal | None = None,
        mode: str = "",
    ) -> Intent:
        return cls(
            intent_id=make_intent_id(decision_id, side, leg),
            decision_id=decision_id,
            symbol=symbol,
            side=side,
            amount=amount,
            limit_price=limit_price,
            ref_price=ref_price,
            max_slippage_bps=max_slippage_bps,
            time_in_force=time_in_force,
            leg=leg,
            created_ms=created_ms,
            reason=reason,
            budget=budget,
            stop_price=stop_price,
            mode=mode,
        )

    @property
    def order_type(self) -> OrderType:
        return "market" if self.limit_price is None else "limit"

    def to_record(self) -> IntentFields:
        out: IntentFields = {
            "intent_id": self.intent_id,
            "decision_id": self.decision_id,
            "symbol": self.symbol,
            "side": self.side,
            "amount": str(self.amount),
            "limit_price": None if self.limit_price is None else str(self.limit_price),
            "ref_price": str(self.ref_price),
            "max_slippage_bps": str(self.max_slippage_bps),
            "time_in_force": self.time_in_force,
            "leg": self.leg,
            "created_ms": self.created_ms,
            "reason": self.reason,
            "budget": None if self.budget is None else str(self.budget),
            "mode": self.mode,
        }
        if self.stop_price is not None:  # absent otherwise: plain intents read as before
            out["stop_price"] = str(self.stop_price)
        return out
