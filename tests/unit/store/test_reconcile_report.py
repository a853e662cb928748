"""The reconcile report on disk: its findings are typed, its JSON keeps one shape (the
operator's tools read ``state/reconcile.json`` and ``fsmtrader reconcile --json``).

Issue 8 added the two-way findings (booked fills the exchange lacks, filled amounts,
duplicate orders), what reconcile booked (found fills, corrected orders), the look-back
and notes: new keys; every key the report had keeps its name and its shape."""

from __future__ import annotations

import json
from pathlib import Path

from fsmtrader.reconcile import (
    BalanceDifference,
    BookedFillMissing,
    CorrectedOrder,
    DuplicateOrder,
    FilledDifference,
    FillOfUnknownOrder,
    FoundFill,
    MissedFill,
    MissingOrder,
    OrphanedOrder,
    ReconcileReport,
    write_report,
)


def report() -> ReconcileReport:
    orphan: OrphanedOrder = {
        "client_order_id": "fsm-1",
        "order_id": "x-1",
        "symbol": "BTC/USDT",
        "side": "buy",
        "amount": "0.001",
        "price": "50000",
    }
    missing: MissingOrder = {"intent_id": "i-1", "client_order_id": "fsm-2", "detail": "gone"}
    unknown: FillOfUnknownOrder = {"trade_id": "t1", "order_id": "x-3", "detail": "unknown"}
    missed: MissedFill = {"trade_id": "t2", "intent_id": "i-2", "amount": "0.5"}
    diff: BalanceDifference = {"asset": "BTC", "exchange": "1", "ours": "0.9", "diff": "0.1"}
    phantom: BookedFillMissing = {"trade_id": "t9", "intent_id": "i-4", "order_id": "x-4"}
    filled: FilledDifference = {
        "intent_id": "i-4",
        "client_order_id": "fsm-4",
        "exchange": "0.1",
        "ours": "0.2",
    }
    dup: DuplicateOrder = {"intent_id": "i-5", "client_order_id": "fsm-5", "order_ids": ["5", "6"]}
    found: FoundFill = {
        "trade_id": "t3",
        "intent_id": "i-6",
        "order_id": "x-6",
        "amount": "0.2",
        "was": "FAILED_FINAL",
    }
    corrected: CorrectedOrder = {
        "intent_id": "i-6",
        "client_order_id": "fsm-6",
        "was": "FAILED_FINAL",
        "now": "RECONCILED",
    }
    return ReconcileReport(
        ts=7,
        exact_balances=True,
        orphaned_orders=[orphan],
        missing_orders=[missing],
        unbooked_fills=[unknown, missed],
        balance_differences=[diff],
        phantom_fills=[phantom],
        filled_differences=[filled],
        duplicate_orders=[dup],
        found_fills=[found],
        corrected_orders=[corrected],
        since=5,
        notes=["a note"],
        foreign_open_orders=2,
        errors=["balances unavailable: down"],
    )


EXPECTED = {
    "ts": 7,
    "exact_balances": True,
    "orphaned_orders": [
        {
            "client_order_id": "fsm-1",
            "order_id": "x-1",
            "symbol": "BTC/USDT",
            "side": "buy",
            "amount": "0.001",
            "price": "50000",
        }
    ],
    "missing_orders": [{"intent_id": "i-1", "client_order_id": "fsm-2", "detail": "gone"}],
    "unbooked_fills": [
        {"trade_id": "t1", "order_id": "x-3", "detail": "unknown"},
        {"trade_id": "t2", "intent_id": "i-2", "amount": "0.5"},
    ],
    "balance_differences": [{"asset": "BTC", "exchange": "1", "ours": "0.9", "diff": "0.1"}],
    "foreign_open_orders": 2,
    "recovered_intents": 0,
    "errors": ["balances unavailable: down"],
    "ok": False,
    "since": 5,
    "phantom_fills": [{"trade_id": "t9", "intent_id": "i-4", "order_id": "x-4"}],
    "filled_differences": [
        {"intent_id": "i-4", "client_order_id": "fsm-4", "exchange": "0.1", "ours": "0.2"}
    ],
    "duplicate_orders": [{"intent_id": "i-5", "client_order_id": "fsm-5", "order_ids": ["5", "6"]}],
    "found_fills": [
        {
            "trade_id": "t3",
            "intent_id": "i-6",
            "order_id": "x-6",
            "amount": "0.2",
            "was": "FAILED_FINAL",
        }
    ],
    "corrected_orders": [
        {"intent_id": "i-6", "client_order_id": "fsm-6", "was": "FAILED_FINAL", "now": "RECONCILED"}
    ],
    "notes": ["a note"],
}


def test_the_report_json_keeps_its_shape(tmp_path: Path) -> None:
    rep = report()
    assert rep.to_dict() == EXPECTED
    path = write_report(rep, tmp_path)
    assert path.read_text() == json.dumps(EXPECTED, indent=2, sort_keys=True) + "\n"
    assert (tmp_path / "reports" / "reconcile-7.json").read_text() == path.read_text()
    assert rep.summary() == (
        "reconcile MISMATCH: 1 orphaned order(s), 1 missing order(s), 2 unbooked fill(s), "
        "1 balance difference(s), 1 booked fill(s) the exchange does not have, "
        "1 filled amount difference(s), 1 duplicate order(s) for one intent, "
        "balances unavailable: down (booked 1 fill(s) found on the exchange, "
        "corrected 1 order(s))"
    )
    assert rep.halt_reason() == (
        rep.summary() + "; first: intent_id=i-5 client_order_id=fsm-5 order_ids=['5', '6']"
    )


def test_the_old_findings_keep_their_summary() -> None:
    """The four counts an operator has always read come first, in their words."""
    rep = ReconcileReport(ts=1, exact_balances=False, errors=["balances unavailable: down"])
    assert rep.summary() == (
        "reconcile MISMATCH: 0 orphaned order(s), 0 missing order(s), 0 unbooked fill(s), "
        "0 balance difference(s), balances unavailable: down"
    )
    assert ReconcileReport(ts=1, exact_balances=True).summary() == (
        "reconcile ok: books match the exchange"
    )
