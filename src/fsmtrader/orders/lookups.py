"""Finding out what happened to an order: refresh a live one, resolve an UNKNOWN one
(``resolution`` says where it looks and what absence proves), cancel (a cancel may turn
into a look-up), give up an unsent one only after one more look."""

from __future__ import annotations

import logging

from fsmtrader.errors import ExchangeError, OrderNotFound
from fsmtrader.exchange.types import OrderInfo
from fsmtrader.orders.resolution import OrderResolution
from fsmtrader.orders.states import OrderState
from fsmtrader.state.order import OrderRecord

log = logging.getLogger("fsmtrader.router")
S = OrderState


class OrderLookups(OrderResolution):
    """Exchange look-ups and cancels of orders already sent (or maybe sent)."""

    def refresh(self, intent_id: str) -> OrderRecord:
        """Fetch a live order's state from the exchange and book any new fills."""
        rec = self.records[intent_id]
        if rec.state in (S.SENT, S.PARTIAL):
            try:
                info = self.exchange.fetch_order(rec.order_id, rec.intent.symbol)
            except ExchangeError as exc:
                log.warning("refresh %s failed: %s", rec.client_order_id, exc)
                return rec
            self._absorb(rec, info, "fetch_order")
        elif rec.state is S.UNKNOWN:
            self._resolve(rec)
        return rec

    def cancel(self, intent_id: str) -> OrderRecord:
        """Cancel a live order. If it filled meanwhile, the fill is booked, not lost."""
        rec = self.records[intent_id]
        if not rec.done:
            rec.cancel_requested = True
            self.dirty.add(intent_id)
        if rec.state is S.UNKNOWN:
            self._resolve(rec)
        if rec.state in (S.RETRY, S.ERROR):
            self._abandon_unsent(rec)
            return rec
        if rec.state not in (S.SENT, S.PARTIAL):
            return rec
        info: OrderInfo | None
        self.before_send()
        try:
            info = self.exchange.cancel_order(rec.order_id, rec.intent.symbol)
        except OrderNotFound:
            info = self._fetch_quiet(rec)
        except Exception as exc:
            # The cancel may not have happened: keep asking until the order is over.
            log.warning("cancel %s failed: %s", rec.client_order_id, exc)
            self._set_due(rec, self.clock.now_ms() + self._backoff(max(rec.attempts, 1)))
            if not isinstance(exc, ExchangeError):
                raise
            return rec
        if info is None:
            self._set_due(rec, self.clock.now_ms() + self._backoff(max(rec.attempts, 1)))
            return rec
        if not self._is_ours(rec, info, "cancel_order"):  # flagged: never booked
            self._to_unknown(rec, "foreign_answer:cancel_order")
            return rec
        if info.status == "closed" and rec.state in (S.SENT, S.PARTIAL) and not _is_stop(rec):
            # It filled while we were cancelling: the fill is booked, and the race is
            # reported (a halt condition when configured).
            self.races += 1
            self.on_race(rec)
            self.bus.publish(
                {
                    "kind": "alert",
                    "ts": self.clock.now_ms(),
                    "alert": "order_race",
                    "symbol": rec.intent.symbol,
                    "intent_id": rec.intent.intent_id,
                    "decision_id": rec.intent.decision_id,
                    "detail": "filled while cancelling",
                }
            )
        self._absorb(rec, info, "cancel_order")
        return rec

    def _resolve(self, rec: OrderRecord) -> None:
        """Find an UNKNOWN order (see ``resolution``): book it if found; if not, look
        again while its window lasts, and conclude "never placed" only from a search of
        everywhere made after the window. An order the venue acknowledged (we hold its
        orderId) is never concluded absent: it is looked for until it is found."""
        now = self.clock.now_ms()
        try:
            info = self._find(rec, everywhere=now >= self._window_end(rec))
        except Exception as exc:
            self._set_due(rec, now + self._backoff(max(rec.attempts, 1)))
            log.warning("resolve %s failed: %s", rec.client_order_id, exc)
            if not isinstance(exc, ExchangeError):
                raise
            return
        if info is not None:
            self._absorb(rec, info, "resolve")
            if rec.cancel_requested and rec.live:
                self.cancel(rec.intent.intent_id)
        elif now < self._window_end(rec):
            self._set_due(rec, self._next_look(rec, now))
        elif rec.order_id:
            self._set_due(rec, now + self._backoff(max(rec.attempts, 1)))
        else:
            self._conclude_absent(rec, now)

    def _abandon_unsent(self, rec: OrderRecord) -> None:
        """Give up an order we believe was never placed, after one more look by
        clientOrderId: a venue may show a just-placed order late, and its fills must be
        booked, not lost. If the look-up itself fails, try again later."""
        if rec.state is S.ERROR:
            self._move(rec, S.RETRY, "cancel requested")
        try:
            info = self.exchange.fetch_order_by_client_id(rec.client_order_id, rec.intent.symbol)
        except OrderNotFound:
            self._settle_failed(rec, "canceled_before_send")
            return
        except ExchangeError as exc:
            log.warning("final look-up of %s failed: %s", rec.client_order_id, exc)
            self._set_due(rec, self.clock.now_ms() + self._backoff(max(rec.attempts, 1)))
            return
        self._absorb(rec, info, "fetch_order_by_client_id")
        if rec.live:
            self.cancel(rec.intent.intent_id)


def _is_stop(rec: OrderRecord) -> bool:
    """A protective stop filling as it is cancelled is the stop doing its job (the price
    fell through it), not a race to report."""
    return rec.intent.stop_price is not None
