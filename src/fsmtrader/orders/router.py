"""The order router: the only code that places, cancels or looks up orders.

One intent, one clientOrderId, at most one order on the exchange. Budget is reserved
before the exchange call and released on every path that does not fill. A lost answer
makes the order UNKNOWN: it is looked for, and concluded "never placed" only by a search
made after the venue's visibility window (docs/orders.md); it is never re-sent under a
new id. This module submits and sends, runs what is due and recovers after a restart;
resolution, look-ups, booking and the ledger live beside it.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from decimal import Decimal

from fsmtrader import failpoints
from fsmtrader.errors import (
    AuthenticationFailed,
    DuplicateOrder,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    RateLimited,
    required,
)
from fsmtrader.exchange.types import OrderInfo
from fsmtrader.markets import MarketFilters, ceil_to, preflight, q_price
from fsmtrader.orders.intent import Intent, client_order_id
from fsmtrader.orders.ledger import FAILED_STEP_RETRY_MS, RouterConfig, intent_terms
from fsmtrader.orders.lookups import OrderLookups
from fsmtrader.orders.states import OrderState
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import OrderExtra

__all__ = ["OrderRouter", "RouterConfig"]

log = logging.getLogger("fsmtrader.router")
BPS = Decimal(10_000)
S = OrderState


class OrderRouter(OrderLookups):
    """Submits intents and keeps every order moving until it is over."""

    def submit(self, intent: Intent, live_ask: Decimal | None = None) -> OrderRecord:
        """Reserve, check and send. The same intent submitted again returns its record.

        ``live_ask`` is the ask the caller just priced a buy with; without it the router
        asks the exchange (one more request) for its slippage guard."""
        existing = self.records.get(intent.intent_id)
        if existing is not None:
            self.duplicate_intents += 1
            return existing
        rec = OrderRecord(intent, client_order_id(intent.intent_id, self.cfg.client_id_len))
        self.records[intent.intent_id] = rec
        self._open.setdefault(intent.symbol, set()).add(intent.intent_id)
        self._emit(rec, S.NEW, intent.reason, extra=intent_terms(intent))
        if not self._prepare(rec, live_ask):
            return rec
        self._send(rec)
        return rec

    def run_due(
        self, now_ms: int, on_failure: Callable[[OrderRecord, Exception], None] | None = None
    ) -> list[OrderRecord]:
        """Run retries and UNKNOWN look-ups that are due; returns the records touched.

        A step that raises (not an exchange error: a fill that cannot be booked, a bug)
        leaves its record due again later, so it is never forgotten; ``on_failure`` gets
        it (the engine halts on a broken invariant) and the other records still run.
        Without ``on_failure`` the exception propagates."""
        touched = []
        while True:
            at = self._next_valid_due()
            if at is None or at > now_ms:
                break
            _, iid = heapq.heappop(self._due)
            rec = self.records[iid]
            rec.due_ms = None
            try:
                self._run_step(rec)
            except Exception as exc:
                if rec.due_ms is None and not rec.done:
                    self._set_due(rec, self.clock.now_ms() + FAILED_STEP_RETRY_MS)
                if on_failure is None:
                    raise
                on_failure(rec, exc)
                continue
            touched.append(rec)
        return touched

    def _run_step(self, rec: OrderRecord) -> None:
        iid = rec.intent.intent_id
        if rec.state is S.RETRY and rec.cancel_requested:
            self._abandon_unsent(rec)
        elif rec.state is S.RETRY:
            self._send(rec)
        elif rec.state is S.UNKNOWN:
            self._resolve(rec)
        elif rec.live and rec.cancel_requested:
            self.cancel(iid)  # an earlier cancel failed: try again
        elif rec.live:
            self.refresh(iid)  # fills the venue reported but we could not read yet

    def recover(self) -> list[OrderRecord]:
        """After a restart: every intent whose outcome is not known for sure is resolved
        as a maybe-sent order: an UNKNOWN one from its saved window, one whose send may
        have been under way when the process died from now (the venue may have taken it
        up to then); live orders are refreshed. Returns them."""
        touched = []
        for rec in self.open_records():
            if rec.state in (S.RESERVED, S.RETRY, S.ERROR):
                if rec.state is S.ERROR:
                    self._move(rec, S.RETRY, "restart")
                if rec.attempts == 0 and rec.state is S.RESERVED:
                    rec.attempts = 1  # the send may have happened: treat it as an attempt
                self._to_unknown(rec, "restart: outcome unknown")
                rec.due_ms = None
            if rec.state is S.UNKNOWN:
                self._resolve(rec)
            elif rec.state in (S.SENT, S.PARTIAL) and rec.cancel_requested:
                self.cancel(rec.intent.intent_id)
            elif rec.state in (S.SENT, S.PARTIAL):
                self.refresh(rec.intent.intent_id)
            touched.append(rec)
        return touched

    def _prepare(self, rec: OrderRecord, live_ask: Decimal | None = None) -> bool:
        """NEW -> RESERVED, or FAILED_FINAL as a ghost with its reason."""
        it = rec.intent
        f = self.filters.get(it.symbol)
        if f is None:
            return self._ghost(rec, "unknown_symbol")
        if it.order_type == "market":
            if it.side != "sell":
                return self._ghost(rec, "market_buy_not_allowed")
            pf = preflight(it.side, None, it.amount, f, ref_price=it.ref_price)
            if not pf.ok:
                return self._ghost(rec, pf.reason)
            price, amount = None, pf.amount
        else:
            price, guarded = self._guard_price(it, f, live_ask)
            budget = None
            if it.side == "buy" and it.budget is not None:
                budget = it.budget / (1 + self.cfg.fee_rate_for(it.symbol))
            pf = preflight(it.side, price, it.amount, f, budget=budget, ref_price=it.ref_price)
            if not pf.ok:
                return self._ghost(rec, pf.reason)
            price, amount = pf.price, pf.amount
            if guarded:
                rec.reason = "slippage_guard_applied"
            if pf.bumped:
                rec.reason = (rec.reason + " " if rec.reason else "") + "bumped_to_min_notional"
        if pf.capped:
            rec.reason = (rec.reason + " " if rec.reason else "") + "capped_to_max"
        rec.price, rec.amount = price, amount
        if it.side == "buy":
            need = (
                required(price, "a buy's limit price")
                * amount
                * (1 + self.cfg.fee_rate_for(it.symbol))
            )
            if not self.portfolio.reserve(it.intent_id, need):
                return self._ghost(rec, "insufficient_budget")
            rec.reserved = need
        else:
            if not self.portfolio.lock_for_sell(it.symbol, amount):
                return self._ghost(rec, "nothing_to_sell")
            rec.reserved = amount
        extra: OrderExtra = {"price": None if price is None else str(price), "amount": str(amount)}
        self._move(rec, S.RESERVED, rec.reason, extra)
        return True

    def _guard_price(
        self, it: Intent, f: MarketFilters, live_ask: Decimal | None = None
    ) -> tuple[Decimal, bool]:
        """Cap a buy's limit above its decision's reference (and the live ask); keep a
        sell's limit from going further below its reference than allowed."""
        price = required(it.limit_price, "a limit order's price")
        if it.side == "buy":
            cap = it.ref_price * (1 + it.max_slippage_bps / BPS)
            if live_ask is None:
                try:
                    live_ask = self.exchange.fetch_ticker(it.symbol).ask
                except ExchangeError:
                    live_ask = None
            if live_ask is not None:
                cap = min(cap, live_ask * (1 + self.cfg.slippage_guard_bps / BPS))
            capped = q_price(cap, f.tick_size)
            return (capped, True) if price > capped else (price, False)
        floor = ceil_to(it.ref_price * (1 - it.max_slippage_bps / BPS), f.tick_size)
        return (floor, True) if price < floor else (price, False)

    def _send(self, rec: OrderRecord) -> None:
        it = rec.intent
        rec.attempts += 1
        self.dirty.add(it.intent_id)
        self.before_send()
        failpoints.hit("after_intent_commit")
        try:
            info = self._create(rec)
        except DuplicateOrder:
            # An order with our id exists: it is ours. Adopt it, never send another.
            info_or_none = self._fetch_quiet(rec, by_client_id=True)
            if info_or_none is None:
                self._to_unknown(rec, "duplicate_but_not_found")
            else:
                self._absorb(rec, info_or_none, "fetch_order_by_client_id")
            return
        except InvalidOrder as exc:
            self.rejections[exc.reason] += 1
            self._fail(rec, f"invalid_order:{exc.reason}", ghost_reason=exc.reason)
            return
        except InsufficientFunds:
            self.rejections["insufficient_funds"] += 1
            self._fail(rec, "insufficient_funds", ghost_reason="insufficient_funds")
            return
        except AuthenticationFailed as exc:
            self.rejections["authentication"] += 1
            self._fail(rec, "authentication_failed", ghost_reason="authentication_failed")
            self.on_fatal(f"exchange refused our credentials: {exc}")
            return
        except NetworkError as exc:
            if exc.maybe_sent and not isinstance(exc, RateLimited):
                self._to_unknown(rec, f"lost_answer:{type(exc).__name__}")
                self._resolve(rec)
            else:
                self._error_then_retry(rec, f"{type(exc).__name__}: {exc}", exc)
            return
        except ExchangeError as exc:
            self._error_then_retry(rec, f"{type(exc).__name__}: {exc}", exc)
            return
        except Exception as exc:
            # Not an answer we understand (an adapter bug): the order may exist. Treat it
            # as a lost answer, so it is looked up by clientOrderId, then let it surface.
            self._to_unknown(rec, f"unexpected:{type(exc).__name__}")
            raise
        failpoints.hit("after_exchange_answer")
        self._absorb(rec, info, "create_order")

    def _create(self, rec: OrderRecord) -> OrderInfo:
        """The one create call. A stop price goes only with a stop-limit intent (the
        protective stop), on its tick, so every plain order is sent as before."""
        it = rec.intent
        args = (it.symbol, it.side, it.order_type, rec.amount, rec.price, it.time_in_force)
        if it.stop_price is None:
            return self.exchange.create_order(*args, rec.client_order_id)
        stop = q_price(it.stop_price, self.filters[it.symbol].tick_size)
        return self.exchange.create_order(*args, rec.client_order_id, stop)
