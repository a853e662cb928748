"""Reconciliation: compare our books with what the exchange says, both ways, and explain
every difference or report it. ``checks`` compares (read-only), ``balances`` holds the
balance rule, ``account`` the outside holdings it needs, ``report`` the typed findings;
``fsmtrader.orders.found`` books what is explainable."""

from fsmtrader.reconcile.account import Account
from fsmtrader.reconcile.checks import RECENT_MS, lookback, reconcile
from fsmtrader.reconcile.report import (
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

__all__ = [
    "RECENT_MS",
    "Account",
    "BalanceDifference",
    "BookedFillMissing",
    "CorrectedOrder",
    "DuplicateOrder",
    "FillOfUnknownOrder",
    "FilledDifference",
    "FoundFill",
    "MissedFill",
    "MissingOrder",
    "OrphanedOrder",
    "ReconcileReport",
    "lookback",
    "reconcile",
    "write_report",
]
