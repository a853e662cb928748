"""The reconcile report: one typed row per finding, the summary line an operator reads,
and the JSON on disk (``state/reconcile.json``; ``fsmtrader reconcile --json`` prints the
same dict). Amounts are exact decimal text.

What reconcile saw on the exchange (orders and fills by intent) rides along as evidence
for the code that books what is explainable (``orders/found.py``); it is not reported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from fsmtrader.exchange.types import OrderInfo, TradeInfo


class OrphanedOrder(TypedDict):
    """An exchange order with our clientOrderId prefix that the books cannot place (no
    intent by clientOrderId or order id), open or over."""

    client_order_id: str
    order_id: str
    symbol: str
    side: str
    amount: str
    price: str


class MissingOrder(TypedDict):
    """The books and the exchange disagree on whether an order is live (or exists)."""

    intent_id: str
    client_order_id: str
    detail: str


class FillOfUnknownOrder(TypedDict):
    """A fill of an order of ours that the books do not hold."""

    trade_id: str
    order_id: str
    detail: str


class MissedFill(TypedDict):
    """A fill of one of our intents that the books have not booked."""

    trade_id: str
    intent_id: str
    amount: str


class BookedFillMissing(TypedDict):
    """A fill the books booked that the exchange does not have for that order."""

    trade_id: str
    intent_id: str
    order_id: str


class FilledDifference(TypedDict):
    """The exchange's filled amount of an intent's order(s) differs from the books', and
    the fills that are missing on either side do not explain it."""

    intent_id: str
    client_order_id: str
    exchange: str
    ours: str


class DuplicateOrder(TypedDict):
    """More than one exchange order for one intent (a reused clientOrderId)."""

    intent_id: str
    client_order_id: str
    order_ids: list[str]


class BalanceDifference(TypedDict):
    """``ours`` is what the books account for: the bot's holdings, plus the account's
    outside holdings recorded at the session's first start, less fees paid in assets the
    books do not hold (BNB)."""

    asset: str
    exchange: str
    ours: str
    diff: str


class FoundFill(TypedDict):
    """A fill found on the exchange for a known intent and booked by reconcile."""

    trade_id: str
    intent_id: str
    order_id: str
    amount: str
    was: str  # the intent's state in the books before


class CorrectedOrder(TypedDict):
    """An intent whose state reconcile corrected from the exchange's answer."""

    intent_id: str
    client_order_id: str
    was: str
    now: str


@dataclass
class Evidence:
    """What the exchange holds for each intent reconcile matched (by intent_id)."""

    orders: dict[str, list[OrderInfo]] = field(default_factory=dict)
    trades: dict[str, list[TradeInfo]] = field(default_factory=dict)


@dataclass
class ReconcileReport:
    ts: int
    exact_balances: bool
    since: int = 0  # the look-back: exchange orders and fills from here on were read
    orphaned_orders: list[OrphanedOrder] = field(default_factory=list)
    missing_orders: list[MissingOrder] = field(default_factory=list)
    unbooked_fills: list[FillOfUnknownOrder | MissedFill] = field(default_factory=list)
    balance_differences: list[BalanceDifference] = field(default_factory=list)
    phantom_fills: list[BookedFillMissing] = field(default_factory=list)
    filled_differences: list[FilledDifference] = field(default_factory=list)
    duplicate_orders: list[DuplicateOrder] = field(default_factory=list)
    found_fills: list[FoundFill] = field(default_factory=list)
    corrected_orders: list[CorrectedOrder] = field(default_factory=list)
    foreign_open_orders: int = 0
    recovered_intents: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evidence: Evidence = field(default_factory=Evidence, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Nothing left that the books cannot explain (what was booked is not a mismatch)."""
        return not (self._differences() or self.errors)

    def _differences(self) -> bool:
        return bool(
            self.orphaned_orders
            or self.missing_orders
            or self.unbooked_fills
            or self.balance_differences
            or self.phantom_fills
            or self.filled_differences
            or self.duplicate_orders
        )

    @property
    def incomplete(self) -> bool:
        """Only reads failed: nothing was found, and nothing was proven either."""
        return bool(self.errors) and not self._differences()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "evidence"}
        d["ok"] = self.ok
        copy: dict[str, Any] = json.loads(json.dumps(d))  # a deep copy in JSON's types
        return copy

    def summary(self) -> str:
        booked = ""
        if self.found_fills or self.corrected_orders:
            booked = (
                f" (booked {len(self.found_fills)} fill(s) found on the exchange, "
                f"corrected {len(self.corrected_orders)} order(s))"
            )
        if self.ok:
            return "reconcile ok: books match the exchange" + booked
        parts = [
            f"{len(self.orphaned_orders)} orphaned order(s)",
            f"{len(self.missing_orders)} missing order(s)",
            f"{len(self.unbooked_fills)} unbooked fill(s)",
            f"{len(self.balance_differences)} balance difference(s)",
        ]
        for rows, what in (
            (self.phantom_fills, "booked fill(s) the exchange does not have"),
            (self.filled_differences, "filled amount difference(s)"),
            (self.duplicate_orders, "duplicate order(s) for one intent"),
        ):
            if rows:
                parts.append(f"{len(rows)} {what}")
        parts += self.errors
        return "reconcile MISMATCH: " + ", ".join(parts) + booked

    def halt_reason(self) -> str:
        """The summary and the first finding spelled out: a halt says what was found."""
        return self.summary() + self._first()

    def _first(self) -> str:
        for rows in (
            self.duplicate_orders,
            self.orphaned_orders,
            self.missing_orders,
            self.unbooked_fills,
            self.phantom_fills,
            self.filled_differences,
            self.balance_differences,
        ):
            if rows:
                row = rows[0]
                return "; first: " + " ".join(f"{k}={v}" for k, v in row.items())
        return ""


def write_report(rep: ReconcileReport, state_dir: Path) -> Path:
    """reconcile.json (latest) plus a timestamped copy, each written atomically."""
    folder = state_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(rep.to_dict(), indent=2, sort_keys=True) + "\n"
    dated = folder / f"reconcile-{rep.ts}.json"
    for path in (dated, state_dir / "reconcile.json"):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return state_dir / "reconcile.json"
