"""The reconcile report on disk: its findings are typed, its JSON keeps one shape (the
operator's tools read ``state/reconcile.json`` and ``fsmtrader reconcile --json``)."""

from __future__ import annotations

import json
from pathlib import Path

from fsmtrader.reconcile import (
    BalanceDifference,
    FillOfUnknownOrder,
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
    return ReconcileReport(
        ts=7,
        exact_balances=True,
        orphaned_orders=[orphan],
        missing_orders=[missing],
        unbooked_fills=[unknown, missed],
        balance_differences=[diff],
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
}


def test_the_report_json_keeps_its_shape(tmp_path: Path) -> None:
    rep = report()
    assert rep.to_dict() == EXPECTED
    path = write_report(rep, tmp_path)
    assert path.read_text() == json.dumps(EXPECTED, indent=2, sort_keys=True) + "\n"
    assert (tmp_path / "reports" / "reconcile-7.json").read_text() == path.read_text()
    assert rep.summary() == (
        "reconcile MISMATCH: 1 orphaned order(s), 1 missing order(s), 2 unbooked fill(s), "
        "1 balance difference(s), balances unavailable: down"
    )
