"""Acceptance metrics of a paper session, from its own records (on the copy): orphaned
orders and reconcile differences (the product's two-way reconcile, look-ups only, over
the whole history), partial-fill PnL drift (the books against a recomputation from the
exchange's fills), critical errors in the audit, and the dashboard's push lag."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.clock import SimClock
from fsmtrader.control.lag_file import LAG_BAR_MS, read_lag_summary
from fsmtrader.errors import StoreError
from fsmtrader.exchange.types import TradeInfo
from fsmtrader.lookups_only import LookupsOnly
from fsmtrader.markets import MarketFilters
from fsmtrader.preflight.report import Criterion
from fsmtrader.preflight.statedir import DB_FILE, StateCopy
from fsmtrader.reconcile import Account, ReconcileReport, reconcile
from fsmtrader.reconcile.account import BASELINE_META, decode_outside, fees_elsewhere
from fsmtrader.session import open_sim_exchange
from fsmtrader.state.books import Books
from fsmtrader.state.delta import Snapshot
from fsmtrader.state.fill import BookedFill
from fsmtrader.store.sqlite import SqliteStore

__all__ = [
    "SessionRecords",
    "critical_errors",
    "dashboard_lag",
    "orphaned_orders",
    "pnl_drift",
    "read_records",
    "reconcile_copy",
]

ZERO = Decimal(0)
DRIFT_BAR_PCT = Decimal("0.1")
LAG_BAR_PCT = 95.0
MAX_LAG_MS = 700_000  # past any visibility lag a setting allows (600 s)
CRITICAL_ALERTS = ("error", "order_race", "foreign_answer", "stuck")


@dataclass
class SessionRecords:
    """The copy's books and audit, read once."""

    snap: Snapshot
    fills: list[BookedFill]
    audit: list[dict[str, Any]]

    def books(self, filters: dict[str, MarketFilters]) -> Books:
        records = {r.intent.intent_id: r for r in self.snap.orders}
        pf = self.snap.portfolio
        if pf is None:
            raise StoreError("the database holds no portfolio")
        return Books(records, pf, list(filters), filters)

    def after_all(self) -> int:
        """A time at which the exchange shows every order the books know."""
        created = [max(r.intent.created_ms, r.unknown_since or 0) for r in self.snap.orders]
        last = max([int(a.get("ts", 0)) for a in self.audit[-1:]], default=0)
        return max([*created, last], default=0) + MAX_LAG_MS


def read_records(copy: StateCopy) -> SessionRecords:
    store = SqliteStore(copy.work / DB_FILE, create=False)
    try:
        snap = store.load()
        fills = store.fills()
        audit = [json.loads(text) for _, text in store.audit_since(0)]
    finally:
        store.close()
    if snap.portfolio is None:
        raise StoreError(f"{copy.source}: the database holds no portfolio")
    return SessionRecords(snap, fills, audit)


def reconcile_copy(copy: StateCopy, rec: SessionRecords) -> ReconcileReport:
    """The product's reconcile over the whole history, the copy's exchange read only."""
    s, filters = copy.settings, copy.filters
    ex = open_sim_exchange(s, copy.work, filters, SimClock(rec.after_all()))
    try:
        pf = rec.snap.portfolio
        quote = pf.quote if pf is not None else s.market.quote
        outside = rec.snap.meta.get(BASELINE_META)
        account = Account(
            decode_outside(outside) if outside else {}, fees_elsewhere(rec.fills, filters, quote)
        )
        return reconcile(
            rec.books(filters),
            LookupsOnly(ex),
            now_ms=rec.after_all(),
            exact_balances=True,  # the simulated account is the bot's alone
            since=0,
            account=account,
            visibility_ms=s.exchange.window_ms,
        )
    finally:
        ex.close()


def orphaned_orders(rep: ReconcileReport) -> Criterion:
    """Orders on the exchange the books lack, and the books' orders it lacks; any other
    difference reconcile finds is a reason too (a mismatch halts a live bot)."""
    orphans = len(rep.orphaned_orders) + len(rep.missing_orders)
    reasons = [f"orphaned: {o}" for o in rep.orphaned_orders]
    reasons += [f"missing on the exchange: {o}" for o in rep.missing_orders]
    others = [
        *(f"unbooked fill: {f}" for f in rep.unbooked_fills),
        *(f"balance: {b}" for b in rep.balance_differences),
        *(f"booked fill not on the exchange: {f}" for f in rep.phantom_fills),
        *(f"filled amount: {f}" for f in rep.filled_differences),
        *(f"duplicate: {d}" for d in rep.duplicate_orders),
        *(f"reconcile could not read: {e}" for e in rep.errors),
    ]
    if rep.foreign_open_orders:  # the simulated account is the bot's alone
        others.append(f"{rep.foreign_open_orders} open order(s) the bot did not place")
    figure = f"{orphans} orphaned"
    if others:
        figure += f", {len(others)} other reconcile difference(s)"
    return Criterion(
        "orphaned orders",
        not (orphans or others),
        figure,
        "0 (reconcile, both ways)",
        reasons + others,
    )


def _fee_quote(t: TradeInfo, m: MarketFilters) -> Decimal:
    """A fill's fee in quote as the books value it (base at the fill's price; BNB: 0)."""
    if t.fee_currency == m.base:
        return t.fee * t.price
    if t.fee_currency and t.fee_currency != m.quote:
        return ZERO
    return t.fee


def _recomputed(legs: list[TradeInfo], m: MarketFilters) -> tuple[Decimal, Decimal]:
    """(realised PnL, buy cost) of one trade from its exchange fills: proceeds net of
    fees less the cost basis (fees included) of what was sold."""
    buys = [t for t in legs if t.side == "buy"]
    sells = [t for t in legs if t.side == "sell"]
    bought = sum((t.amount - (t.fee if t.fee_currency == m.base else ZERO) for t in buys), ZERO)
    sold = sum((t.amount for t in sells), ZERO)
    cost = sum((t.price * t.amount for t in buys), ZERO)
    basis = cost + sum((t.fee for t in buys if t.fee_currency == m.quote), ZERO)
    proceeds = sum((t.price * t.amount - _fee_quote(t, m) for t in sells), ZERO)
    return proceeds - (basis * sold / bought if bought else ZERO), cost


def pnl_drift(
    rec: SessionRecords, rep: ReconcileReport, filters: dict[str, MarketFilters]
) -> Criterion:
    """Each closed trade's booked PnL, and the books' total realised PnL, against the
    recomputation from the exchange's fills, as a share of the money the trade bought."""
    pf = rec.snap.portfolio
    if pf is None:
        return Criterion("partial-fill PnL drift", False, "n/a", "< 0.1 %", ["no portfolio"])
    decision_of = {r.intent.intent_id: r.intent.decision_id for r in rec.snap.orders}
    per: dict[str, list[TradeInfo]] = defaultdict(list)
    for iid, trades in rep.evidence.trades.items():
        per[decision_of[iid]] += trades
    worst, reasons = ZERO, []
    total_pnl, total_cost = ZERO, ZERO
    for tr in pf.trades:
        pnl, cost = _recomputed(per.get(tr.decision_id, []), filters[tr.symbol])
        total_pnl += pnl
        total_cost += cost
        pct = abs(tr.realized_pnl - pnl) / cost * 100 if cost else Decimal(100)
        worst = max(worst, pct)
        if pct >= DRIFT_BAR_PCT:
            reasons.append(
                f"{tr.decision_id}: booked PnL {tr.realized_pnl} != {pnl} from the exchange's "
                f"fills ({pct:.4f} % of its cost {cost:.8f})"
            )
    total_pct = abs(pf.realized_pnl - total_pnl) / total_cost * 100 if total_cost else ZERO
    if not total_cost and pf.realized_pnl:
        total_pct = Decimal(100)
    if total_pct >= DRIFT_BAR_PCT:
        reasons.append(
            f"realised PnL {pf.realized_pnl} != {total_pnl} recomputed from the exchange's "
            f"fills ({total_pct:.4f} % of the cost {total_cost:.8f})"
        )
    worst = max(worst, total_pct)
    partial = sum(1 for trades in per.values() if len([t for t in trades if t.side == "buy"]) > 1)
    figure = f"{worst:.6f} % over {len(pf.trades)} trade(s) ({partial} with several buy fills)"
    return Criterion("partial-fill PnL drift", not reasons, figure, "< 0.1 % of cost", reasons)


def critical_errors(rec: SessionRecords) -> Criterion:
    """ERROR phases, halts (a loss breaker or the kill switch is the safety net working,
    not an error), error/race/stuck alerts, events no table row takes."""
    reasons = []
    for a in rec.audit:
        kind = a.get("kind")
        if kind == "phase" and a.get("to") == "ERROR":
            reasons.append(f"{a.get('symbol')} entered ERROR at {a.get('ts')}: {a.get('reason')}")
        elif kind == "halt" and not str(a.get("reason", "")).startswith(
            ("breaker: ", "kill switch")
        ):
            reasons.append(f"halt at {a.get('ts')}: {a.get('reason')}")
        elif kind == "alert" and a.get("alert") in CRITICAL_ALERTS:
            reasons.append(f"{a.get('alert')} alert on {a.get('symbol')}: {a.get('detail')}")
        elif kind == "rejected_event":
            reasons.append(
                f"{a.get('symbol')}: event {a.get('event')} rejected in {a.get('phase')}"
            )
    halted = rec.snap.meta.get("halted", "")
    if halted and not halted.startswith(("breaker: ", "kill switch")):
        reasons.append(f"the session is halted: {halted}")
    figure = f"{len(reasons)} in {len(rec.audit)} audit records"
    return Criterion("critical errors", not reasons, figure, "0", reasons[:20])


def dashboard_lag(state_dir: Path, smoke_lag_pct: float | None) -> Criterion:
    """Share of pushes a dashboard saw within 200 ms: the session's own measurement
    (push_lag.json), else smoke scenario E's figure when it was measured."""
    bar = f"> {LAG_BAR_PCT:g} % within {LAG_BAR_MS:g} ms"
    summary = read_lag_summary(state_dir)
    if summary is not None and summary.samples:
        pct = summary.within_pct
        figure = (
            f"{pct:.2f} % of {summary.samples} pushes within {LAG_BAR_MS:g} ms "
            f"(max {summary.max_ms:.0f} ms; the session's dashboard)"
        )
        ok = pct > LAG_BAR_PCT
        return Criterion("dashboard lag", ok, figure, bar, [] if ok else [f"only {pct:.2f} %"])
    if smoke_lag_pct is not None:
        ok = smoke_lag_pct > LAG_BAR_PCT
        figure = (
            f"{smoke_lag_pct:.2f} % within {LAG_BAR_MS:g} ms "
            "(smoke scenario E; none measured in the session)"
        )
        return Criterion(
            "dashboard lag", ok, figure, bar, [] if ok else [f"only {smoke_lag_pct:.2f} %"]
        )
    return Criterion(
        "dashboard lag",
        False,
        "not measured",
        bar,
        [
            "no dashboard measured the push lag in this session (no push_lag.json): run it "
            "with [api] enabled and the dashboard open, or include smoke scenario E"
        ],
    )
