"""The counters the committed records drive (one job: count what the audit trail holds).

Incremented only from the committed records the feed hands over, so they agree with the
audit trail record for record; the engine thread's share is a few dictionary look-ups
per record. Orders, fills and trades are counted per mode (observe, paper, live: the
record's own ``mode``, "" for a record from before per-symbol modes), so a canary's
live figures stand apart from its paper ones. ``control.metrics`` registers them with
the scrape-time gauges.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from fsmtrader.orders.states import OrderState

PREFIX = "fsmtrader_"
# How the router's rejections read in an order record's reason (orders/router.py
# ``_send``): the move to ERROR of an order the venue refused.
_REJECTION_PREFIX = "invalid_order:"
_REJECTIONS = {
    "insufficient_funds": "insufficient_funds",
    "authentication_failed": "authentication",
}
_FINAL_VIA_RECONCILED = (OrderState.FILLED.value, OrderState.CANCELED.value)


class Counts:
    """One counter family: its values by label values (mutated under the owner's lock)."""

    __slots__ = ("doc", "labels", "name", "values")

    def __init__(self, name: str, doc: str, labels: Sequence[str] = ()) -> None:
        self.name, self.doc, self.labels = PREFIX + name, doc, list(labels)
        self.values: dict[tuple[str, ...], float] = {} if labels else {(): 0.0}

    def inc(self, *key: str, by: float = 1.0) -> None:
        self.values[key] = self.values.get(key, 0.0) + by

    def family(self, values: Mapping[tuple[str, ...], float]) -> Metric:
        fam = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for key, v in sorted(values.items()):
            fam.add_metric(list(key), v)
        return fam


class RecordCounters:
    """The counters the committed records drive: incremented in the engine thread, copied
    by the scrape under one short lock (``collect``)."""

    def __init__(self) -> None:
        c = Counts
        self.lock = threading.Lock()
        self.records = c("records", "Committed records by kind.", ["kind"])
        self.transitions = c("transitions", "Phase transitions.", ["from", "to", "event"])
        self.rejected = c("rejected_events", "Events the phase table refused.", ["phase", "event"])
        self.order_moves = c("order_moves", "Order state moves.", ["from", "to", "mode"])
        self.final = c(
            "orders_final",
            "Orders that ended: FAILED_FINAL when given up, FILLED or CANCELED when settled "
            "(RECONCILED). The router's FAILED_FINAL count is this minus "
            "orders_found_after_given_up_total.",
            ["state", "mode"],
        )
        self.found_after = c(
            "orders_found_after_given_up",
            "Orders given up (FAILED_FINAL) that reconcile found executed, by what they were.",
            ["state", "mode"],
        )
        self.unknown = c("orders_unknown", "Orders whose outcome became unknown (answer lost).")
        self.rejections = c("order_rejections", "Orders the exchange refused.", ["reason", "mode"])
        self.ghosts = c("ghosts", "Ghost orders (intents that never traded).", ["reason", "mode"])
        self.fills = c("fills", "Fills booked.", ["side", "mode"])
        self.fill_quote = c("fills_quote", "Quote value of the fills booked.", ["side", "mode"])
        self.found_fills = c("found_fills", "Fills reconcile found on the exchange and booked.")
        self.trades = c("trades", "Closed trades by exit reason.", ["exit_reason", "mode"])
        self.trade_pnl = c(
            "trade_pnl_quote",
            "Realised PnL of the closed trades since the bot started, gains and losses apart "
            "(sign: gain or loss; the net is gain minus loss).",
            ["sign", "mode"],
        )
        self.observed = c("observed", "Entries observe mode audited instead of placing.")
        self.alerts = c("alerts", "Alerts by kind.", ["alert"])
        self.halts = c("halts", "Entry halts.")
        self.resumes = c("resumes", "Halts lifted.")
        self.controls = c("controls", "Controls run.", ["action", "result"])
        self.errors = c("observe_errors", "Records metrics could not count (logged).")
        self.last_ms = 0.0
        self.all = [v for v in vars(self).values() if isinstance(v, Counts)]

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            copies = [(c, dict(c.values)) for c in self.all]
            last_ms = self.last_ms
        for c, values in copies:
            yield c.family(values)
        yield gauge(
            "last_commit_timestamp_seconds",
            "Wall clock of the last commit that published records (0: none yet).",
            last_ms / 1000,
        )

    def count(self, r: Mapping[str, Any]) -> None:
        kind = str(r.get("kind", ""))
        self.records.inc(kind)
        if kind == "phase":
            self.transitions.inc(r["from"], r["to"], r["event"])
        elif kind == "order":
            self._order(r)
        elif kind == "fill":
            mode = str(r.get("mode", ""))
            self.fills.inc(r["side"], mode)
            value = float(Decimal(r["price"]) * Decimal(r["amount"]))
            self.fill_quote.inc(r["side"], mode, by=value)
        elif kind == "rejected_event":
            self.rejected.inc(r["phase"], r["event"])
        elif kind == "trade":
            mode, pnl = str(r.get("mode", "")), Decimal(r["realized_pnl"])
            self.trades.inc(r["exit_reason"], mode)
            self.trade_pnl.inc("gain" if pnl >= 0 else "loss", mode, by=float(abs(pnl)))
        elif kind == "observed":
            self.observed.inc()
        elif kind == "found_fill":
            self.found_fills.inc()
        elif kind == "alert":
            self.alerts.inc(r["alert"])
        elif kind == "halt":
            self.halts.inc()
        elif kind == "resume":
            self.resumes.inc()
        elif kind == "control":
            self.controls.inc(r["action"], str(r.get("result", "")))

    def _order(self, r: Mapping[str, Any]) -> None:
        """Counted as the router counts (orders/ledger.py ``_move``, booking.py ``_fail``)."""
        state, src, reason = r["state"], r["from"] or "", r["reason"] or ""
        mode = str(r.get("mode", ""))
        self.order_moves.inc(src, state, mode)
        if state == OrderState.UNKNOWN and src != OrderState.UNKNOWN:
            self.unknown.inc()
        elif state == OrderState.RECONCILED and src in _FINAL_VIA_RECONCILED:
            self.final.inc(src, mode)
        elif src == OrderState.FAILED_FINAL:  # reconcile: it executed after all
            self.found_after.inc(state, mode)
        elif state == OrderState.ERROR:
            rejection = _rejection(reason)
            if rejection is not None:
                self.rejections.inc(rejection, mode)
        elif state == OrderState.FAILED_FINAL:
            self.final.inc(state, mode)
            ghost = _ghost_reason(src, reason)
            if ghost is not None:
                self.ghosts.inc(ghost, mode)


def _rejection(reason: str) -> str | None:
    """The router's rejection key of an ERROR move's reason, if the venue refused it."""
    if reason.startswith(_REJECTION_PREFIX):
        return reason[len(_REJECTION_PREFIX) :]
    return _REJECTIONS.get(reason)


def _ghost_reason(src: str, reason: str) -> str | None:
    """A ghost: given up before it was sent (``ghost:<why>``), or refused by the venue
    (ERROR -> FAILED_FINAL with the rejection's reason); None for any other give-up."""
    if reason.startswith("ghost:"):
        return reason[len("ghost:") :]
    if src != OrderState.ERROR:
        return None
    if reason.startswith(_REJECTION_PREFIX):
        return reason[len(_REJECTION_PREFIX) :]
    return reason if reason in _REJECTIONS else None


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, value=value)
