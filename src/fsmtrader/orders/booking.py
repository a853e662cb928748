"""Booking what the exchange reports: new fills into the portfolio, the order's new
state, and the release of whatever an order that is over did not use."""

from __future__ import annotations

import logging
from decimal import Decimal

from fsmtrader.errors import ExchangeError, RateLimited
from fsmtrader.exchange.types import OrderInfo, TradeInfo
from fsmtrader.orders.ledger import FAILED_STEP_RETRY_MS, OrderLedger
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import split_fee
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import FillRecord

log = logging.getLogger("fsmtrader.router")
ZERO = Decimal(0)
S = OrderState


class FillBooking(OrderLedger):
    """Absorbs exchange answers into the records and the portfolio."""

    def _absorb(self, rec: OrderRecord, info: OrderInfo, where: str) -> None:
        """Book new fills and move the order to the state the exchange reports. An answer
        about another order (``where`` names the call) is refused: nothing is booked, it
        is flagged, and the order becomes UNKNOWN, to be found by its clientOrderId."""
        if not self._is_ours(rec, info, where):
            if rec.state is not S.UNKNOWN:
                self._to_unknown(rec, f"foreign_answer:{where}")
            return
        try:
            self._apply(rec, info)
        except Exception:
            # Not booked (a fill the books cannot take, which halts the engine): the
            # record is looked at again later, never forgotten.
            if not rec.done:
                self._set_due(rec, self.clock.now_ms() + FAILED_STEP_RETRY_MS)
            raise

    def _apply(self, rec: OrderRecord, info: OrderInfo) -> None:
        rec.order_id = info.id or rec.order_id
        rec.due_ms = None  # known now: no look-up pending
        trades = info.trades
        if info.filled > sum((t.amount for t in trades), ZERO):
            trades = self._trades_of(rec, info)
        new_fills = False
        for t in trades:
            if t.id in rec.seen_trades:
                continue
            self._book_fill(rec, t)  # raises before marking it seen if it cannot be booked
            rec.seen_trades.add(t.id)
            new_fills = True
        if rec.state in (S.RESERVED, S.RETRY, S.UNKNOWN):
            self._move(rec, S.SENT, "acknowledged")
        if info.filled > rec.filled:
            # The venue says more filled than the fills we could read (my-trades failed or
            # lags): never finalise on that, or the fill would be lost. Look again soon.
            if rec.filled > 0 and (new_fills or rec.state is not S.PARTIAL):
                self._move(rec, S.PARTIAL, "fills not readable yet")
            self._set_due(rec, self.clock.now_ms() + self._backoff(1))
            return
        if info.status == "open":
            if rec.filled > 0 and (new_fills or rec.state is not S.PARTIAL):
                self._move(rec, S.PARTIAL, "open")
            return
        target = S.FILLED if info.status == "closed" else S.CANCELED
        self._move(rec, target, info.status)
        self._settle(rec)

    def _book_fill(self, rec: OrderRecord, t: TradeInfo) -> None:
        it = rec.intent
        f = self.filters[it.symbol]
        if it.side == "buy":
            self.portfolio.apply_buy_fill(it.intent_id, it.decision_id, t, f.base)
        else:
            self.portfolio.apply_sell_fill(t, f.base)
        fee_q, _ = split_fee(t, f.base, f.quote)
        self.dirty.add(it.intent_id)
        rec.filled += t.amount
        rec.cost += t.price * t.amount
        rec.fee_quote += fee_q
        fill: FillRecord = {
            "kind": "fill",
            "ts": t.timestamp,
            "intent_id": it.intent_id,
            "decision_id": it.decision_id,
            "symbol": it.symbol,
            "side": it.side,
            "trade_id": t.id,
            "order_id": t.order_id,
            "price": str(t.price),
            "amount": str(t.amount),
            "fee": str(t.fee),
            "fee_currency": t.fee_currency,
            "mode": it.mode,
        }
        if self.keep_fills:
            self.fills.append(fill)
        self.bus.publish(fill)

    def _settle(self, rec: OrderRecord) -> None:
        """The order is over on the exchange: release what it did not use."""
        it = rec.intent
        if it.side == "buy":
            self.portfolio.release(it.intent_id)
        else:
            self.portfolio.unlock_sell(it.symbol, rec.reserved - rec.filled)
            if rec.filled > 0:
                self.portfolio.note_sell_leg(it.symbol)
        self.portfolio.check()
        self._move(rec, S.RECONCILED, "")

    def _settle_unsent(self, rec: OrderRecord) -> None:
        it = rec.intent
        if it.side == "buy":
            self.portfolio.release(it.intent_id)
        else:
            self.portfolio.unlock_sell(it.symbol, rec.reserved)
        rec.due_ms = None
        self.portfolio.check()

    def _settle_failed(self, rec: OrderRecord, reason: str) -> None:
        self._move(rec, S.FAILED_FINAL, reason)
        self._settle_unsent(rec)

    def _fail(self, rec: OrderRecord, reason: str, ghost_reason: str) -> None:
        self._move(rec, S.ERROR, reason)
        self._settle_failed(rec, reason)
        self._record_ghost(rec, ghost_reason)

    def _error_then_retry(self, rec: OrderRecord, reason: str, exc: ExchangeError) -> None:
        self._move(rec, S.ERROR, reason)
        if rec.attempts > self.cfg.max_retries:
            self._settle_failed(rec, "retries_exhausted")
            return
        delay = self._backoff(rec.attempts)
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            delay = max(delay, int(exc.retry_after_s * 1000))
        self._move(rec, S.RETRY, f"backoff_ms={delay}")
        self._set_due(rec, self.clock.now_ms() + delay)

    def _to_unknown(self, rec: OrderRecord, reason: str) -> None:
        """Outcome unknown: a look-up by clientOrderId is always scheduled, so an UNKNOWN
        order can never be forgotten (``_resolve`` reschedules or clears it). Its window
        starts now: the venue took the create, if at all, before the call ended (a client
        may sit on a request before sending it: the call's start proves nothing)."""
        now = self.clock.now_ms()
        rec.unknown_since = now
        self._move(rec, S.UNKNOWN, reason)
        self._set_due(rec, now + self._backoff(1))

    def _is_ours(self, rec: OrderRecord, info: OrderInfo, where: str) -> bool:
        """Whether an answer is about this record's order: its clientOrderId, its orderId
        once we know it, and fills of that order only. If not, it is flagged."""
        ours = info.client_order_id == rec.client_order_id
        ours = ours and (not rec.order_id or info.id == rec.order_id)
        ours = ours and all(t.order_id in ("", info.id) for t in info.trades)
        if not ours:
            self._flag_foreign(rec, f"{where} answered {info.client_order_id!r} / {info.id!r}")
        return ours

    def _flag_foreign(self, rec: OrderRecord, detail: str) -> None:
        """An answer about another order: our books and the venue disagree on who is who,
        so nothing is booked from it and new entries stop until a person looks."""
        it = rec.intent
        detail = f"{detail} for {rec.client_order_id!r} / {rec.order_id!r}"
        log.error("foreign answer: %s", detail)
        self.bus.publish(
            {
                "kind": "alert",
                "ts": self.clock.now_ms(),
                "alert": "foreign_answer",
                "symbol": it.symbol,
                "intent_id": it.intent_id,
                "decision_id": it.decision_id,
                "detail": detail,
            }
        )
        self.on_fatal(f"foreign exchange answer: {detail}")
