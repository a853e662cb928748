"""Booking what reconcile found: the explainable differences between the books and the
exchange become booked fills and corrected order states, through the router's own
booking path, each found fill with a ``found_fill`` audit record.

Explainable: one exchange order for a known intent, whose fills the books lack (also an
intent the books settled FAILED_FINAL or canceled-before-send: it executed after all), or
which the books hold live while the exchange has closed it. Everything else (an order the
books cannot place, a duplicate, a booked fill the exchange lacks, a balance difference,
a fill the portfolio cannot take) is left for the report: it halts entries.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal

from fsmtrader.errors import PortfolioError
from fsmtrader.exchange.types import OrderInfo, TradeInfo
from fsmtrader.orders.booking import FillBooking
from fsmtrader.orders.states import OrderState
from fsmtrader.reconcile.report import ReconcileReport
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import FoundFillRecord

log = logging.getLogger("fsmtrader.reconcile")
S = OrderState
ZERO = Decimal(0)
REASON = "found by reconcile"


def book_found(router: FillBooking, rep: ReconcileReport) -> list[OrderRecord]:
    """Book every explainable difference ``rep`` holds evidence of; returns the records
    changed (their symbols need the news). Idempotent: a fill is booked once, by id."""
    changed = []
    for iid, orders in sorted(rep.evidence.orders.items()):
        rec = router.records[iid]
        if len(orders) != 1:
            continue  # a duplicate: not ours to explain
        info = orders[0]
        trades = rep.evidence.trades.get(iid, [])
        new = [t for t in trades if t.id not in rec.seen_trades]
        was, booked_before = rec.state, set(rec.seen_trades)
        try:
            if rec.done:
                if not new or info.status == "open" or not _adopt_over(router, rec, info, new):
                    continue
            elif rec.state is not S.NEW and (new or info.status != "open" or not rec.live):
                _absorb_found(router, rec, info, trades)
            else:
                continue
        except PortfolioError as exc:
            log.error("cannot book what reconcile found for %s: %s", rec.client_order_id, exc)
            continue
        _report(router, rep, rec, was, booked_before)
        changed.append(rec)
    return changed


def _absorb_found(
    router: FillBooking, rec: OrderRecord, info: OrderInfo, trades: list[TradeInfo]
) -> None:
    """An order not over in the books: absorb the exchange's answer as a look-up would."""
    if rec.state is S.ERROR:
        router._move(rec, S.RETRY, REASON)
    router._absorb(rec, replace(info, trades=list(trades)), "reconcile")


def _adopt_over(
    router: FillBooking, rec: OrderRecord, info: OrderInfo, new: list[TradeInfo]
) -> bool:
    """An order over in the books (given up, or settled short of its fills): book the
    missing fills, and an order given up as FAILED_FINAL as what it was. False, with
    nothing changed, when the portfolio cannot take them."""
    it, pf = rec.intent, router.portfolio
    f = router.filters[it.symbol]
    if it.side == "buy":
        spend = sum((pf.buy_spend(t, f.base) for t in new), ZERO)
        if spend > pf.cash + pf.reserved.get(it.intent_id, ZERO):
            return False
    elif not pf.lock_for_sell(it.symbol, sum((t.amount for t in new), ZERO)):
        return False
    given_up = rec.state is S.FAILED_FINAL
    rec.order_id = info.id
    for t in new:  # fills first, as ``_absorb`` does: the move's record then carries them
        router._book_fill(rec, t)
        rec.seen_trades.add(t.id)
    if given_up:
        router.final_states[S.FAILED_FINAL.value] -= 1  # it was not final after all
        router._move(rec, S.FILLED if info.status == "closed" else S.CANCELED, REASON)
    if it.side == "buy":
        pf.release(it.intent_id)
    elif given_up:
        pf.note_sell_leg(it.symbol)
    pf.check()
    if given_up:
        router._move(rec, S.RECONCILED, REASON)
    return True


def _report(
    router: FillBooking, rep: ReconcileReport, rec: OrderRecord, was: S, before: set[str]
) -> None:
    it = rec.intent
    if rec.state is not was:
        rep.corrected_orders.append(
            {
                "intent_id": it.intent_id,
                "client_order_id": rec.client_order_id,
                "was": was.value,
                "now": rec.state.value,
            }
        )
    trades = {t.id: t for t in rep.evidence.trades.get(it.intent_id, [])}
    for trade_id in sorted(rec.seen_trades - before):
        t = trades.get(trade_id)
        amount = str(t.amount) if t is not None else ""
        order_id = t.order_id if t is not None else rec.order_id
        rep.found_fills.append(
            {
                "trade_id": trade_id,
                "intent_id": it.intent_id,
                "order_id": order_id,
                "amount": amount,
                "was": was.value,
            }
        )
        record: FoundFillRecord = {
            "kind": "found_fill",
            "ts": router.clock.now_ms(),
            "intent_id": it.intent_id,
            "decision_id": it.decision_id,
            "client_order_id": rec.client_order_id,
            "symbol": it.symbol,
            "side": it.side,
            "trade_id": trade_id,
            "order_id": order_id,
            "amount": amount,
            "was": was.value,
            "reason": REASON,
        }
        router.bus.publish(record)
