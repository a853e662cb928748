"""Finding an order whose create may have executed (UNKNOWN), and what its absence may
prove. The rules are in docs/orders.md; in short: inside the venue's visibility window
(from the end of the order's last send) a "not found" proves nothing; after it, the order is looked
for by clientOrderId, among the open orders and in the history since the intent was made,
and only if all three lack it is it absent. A buy absent after its window is sent again
under the same clientOrderId; a sell is given up, and the exit decides anew."""

from __future__ import annotations

from fsmtrader.errors import OrderNotFound
from fsmtrader.exchange.types import OrderInfo
from fsmtrader.orders.booking import FillBooking
from fsmtrader.orders.states import OrderState
from fsmtrader.state.order import OrderRecord

S = OrderState
# Our clock against the venue's: Binance refuses a request stamped more than its
# recvWindow (60 s at most) away from its own time, so an order it stamped lies within
# that of our write-ahead time. The history is read from this much before the intent.
HISTORY_MARGIN_MS = 60_000


class OrderResolution(FillBooking):
    """Where to look for a maybe-sent order, and what to do when it is not anywhere."""

    def _window_end(self, rec: OrderRecord) -> int:
        """Until when "not found" may mean "not visible yet"."""
        start = rec.unknown_since if rec.unknown_since is not None else self.clock.now_ms()
        return start + self.cfg.visibility_window_ms

    def _next_look(self, rec: OrderRecord, now: int) -> int:
        """Inside the window: look again after as long as we have waited (a few look-ups
        per window), and once more exactly when it ends."""
        end = self._window_end(rec)
        waited = now - (rec.unknown_since if rec.unknown_since is not None else now)
        return min(end, now + max(self.cfg.backoff_ms, waited, 1))

    def _find(self, rec: OrderRecord, everywhere: bool) -> OrderInfo | None:
        """Our order by clientOrderId; with ``everywhere`` (the window is over) also among
        the open orders and in the order history. Raises what a look-up raises (other
        than "not found"); an answer about another order is flagged and passed over."""
        it = rec.intent
        try:
            info = self.exchange.fetch_order_by_client_id(rec.client_order_id, it.symbol)
        except OrderNotFound:
            pass
        else:
            if self._is_ours(rec, info, "fetch_order_by_client_id"):
                return info
        if not everywhere:
            return None
        found = self._ours_among(rec, self.exchange.fetch_open_orders(it.symbol), "open orders")
        if found is None:
            history = self.exchange.fetch_orders(it.symbol, it.created_ms - HISTORY_MARGIN_MS)
            found = self._ours_among(rec, history, "fetch_orders")
        return found

    def _ours_among(self, rec: OrderRecord, infos: list[OrderInfo], where: str) -> OrderInfo | None:
        """The first (oldest) order under our clientOrderId. Two of them mean an intent
        was sent twice (by an older version, or by someone else with our ids): flagged,
        since the other one's fills are not this record's to book."""
        mine = [i for i in infos if i.client_order_id == rec.client_order_id]
        if len(mine) > 1:
            ids = ", ".join(i.id for i in mine)
            self._flag_foreign(rec, f"{where}: {len(mine)} orders ({ids}) under one id")
        for info in mine:
            if self._is_ours(rec, info, where):
                return info
        return None

    def _conclude_absent(self, rec: OrderRecord, now: int) -> None:
        """The whole window is over and no look-up has the order: it was never placed.
        A buy is sent again (same clientOrderId); a sell, or any order a cancel was asked
        for, is given up and its reservation released."""
        self._move(rec, S.RETRY, "not_on_exchange")
        if rec.cancel_requested:
            self._settle_failed(rec, "canceled_before_send")
        elif rec.intent.side == "sell":
            self._settle_failed(rec, "sell_not_on_exchange")
        elif rec.attempts > self.cfg.max_retries:
            self._settle_failed(rec, "retries_exhausted")
        else:
            self._set_due(rec, now + self._backoff(rec.attempts))
