"""The protective stop: a resting stop-limit sell (Binance spot STOP_LOSS_LIMIT) below a
held position at its stop-loss, or at its trailing stop once that is higher, so the
position is guarded while the bot is down. Off unless ``protect.enabled``
(``EnginePolicy.protect``); pure decisions, the shell runs what they return.

- ``sync_stop`` places it when a position opens or the symbol comes back to it, for all
  that is held, through the router as an intent of its own (the position's decision id,
  as every order of the trade carries it, and its own leg from the symbol's sell legs:
  its own intent id and clientOrderId, written ahead and found after a crash), and
  replaces it (a cancel, then a new one once the cancel has settled: never
  two resting) when the trailing stop rose by ``min_move_bps`` or more than it covers is
  held. One that cannot be placed (below the venue's minimum, a stop the last price is
  already under) is not placed, and an ``alert`` record says why.
- ``cancel_before_sell``: an exit's first sell waits for the stop's cancel to settle (the
  venue locks its base: the sell would be refused).
- ``stop_news``: its fills are sells like any other (the router books them); once it
  sold the position, STOP_FILLED records the trade with the exit reason
  ``protective_stop``. A partial fill only shrinks the position.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial

from fsmtrader.engine.commands import (
    Cancel,
    Command,
    Count,
    Decision,
    Fire,
    Place,
    Publish,
    Then,
    decide,
)
from fsmtrader.engine.policy import EnginePolicy, ProtectPolicy
from fsmtrader.engine.view import SymbolView
from fsmtrader.fsm.phases import Event, Phase
from fsmtrader.markets import preflight, q_price
from fsmtrader.orders.intent import Intent
from fsmtrader.portfolio import Position
from fsmtrader.state.records import AlertRecord
from fsmtrader.state.symbol import SymbolState
from fsmtrader.strategy import ExitState

PROTECTIVE_STOP = "protective_stop"  # the exit reason of a trade the stop closed
# A live bar is one polled ticker (high = low = close): a wick between two polls can fill
# the venue's stop unseen, so a resting stop is asked about at least this often.
STOP_REFRESH_MS = 60_000
BPS = Decimal(10_000)
ZERO = Decimal(0)
E = Event


def stop_level(ex: ExitState, tick: Decimal) -> Decimal:
    """Where the stop rests: the stop-loss, or the trailing stop once it is armed and
    higher; on the tick, rounded down."""
    level = ex.sl_px
    if ex.trail_active:
        level = max(level, ex.peak * ex.trail_factor)
    return q_price(Decimal(repr(level)), tick)


def limit_of(stop: Decimal, pp: ProtectPolicy, tick: Decimal) -> Decimal:
    """The stop's limit: ``limit_offset_bps`` below it (room to fill in a fall)."""
    return q_price(stop * (1 - pp.limit_offset_bps / BPS), tick)


def sync(ts: int, *, trail: bool = False) -> Then:
    """``sync_stop`` at ``ts``, decided when the shell reaches it."""
    return Then(partial(sync_stop, ts, trail=trail), "protect: sync")


def sync_stop(
    ts: int, st: SymbolState, v: SymbolView, p: EnginePolicy, *, trail: bool = False
) -> Decision:
    """Place the stop if none rests, replace it if it is too low or covers too little.
    ``trail``: called on a new peak, where a stop that cannot be placed is not
    reported again (it was when the position opened)."""
    pp, pos, ex = p.protect, v.position, st.exit
    if pp is None or st.phase is not Phase.POSITION or pos is None or ex is None:
        return decide()
    stops = v.protective_stops
    if pos.qty <= 0 or any(r.cancel_requested for r in stops):
        return decide()  # nothing to guard, or a replaced stop is still being cancelled
    want = stop_level(ex, v.filters.tick_size)
    if not stops:
        return place_stop(ts, st, v, pp, want, report=not trail, mode=p.mode(st.symbol))
    cur = stops[0]
    old = cur.intent.stop_price or ZERO
    rose = want >= old * (1 + pp.min_move_bps / BPS)
    limit = limit_of(want, pp, v.filters.tick_size)
    uncovered = pos.sellable > 0 and preflight("sell", limit, pos.sellable, v.filters).ok
    if not (rose or uncovered) or not cur.live:
        return decide()
    news = Then(partial(stop_news, ts), "protect: replaced")
    return decide(Cancel(cur.intent.intent_id), news)


def place_stop(
    ts: int,
    st: SymbolState,
    v: SymbolView,
    pp: ProtectPolicy,
    stop: Decimal,
    *,
    report: bool,
    mode: str = "",
) -> Decision:
    """A new stop for everything held and not locked, or the reason there is none."""
    pos, f = v.position, v.filters
    if pos is None:
        return decide()
    limit = limit_of(stop, pp, f.tick_size)
    ticker = v.quote
    pf = preflight("sell", limit, pos.sellable, f) if limit > 0 else None
    why = ""
    if pf is None or stop <= 0:
        why = f"no stop level ({stop})"
    elif ticker is not None and ticker.last <= stop:
        why = f"last price {ticker.last} at or below the stop {stop}: it would trigger at once"
    elif not pf.ok:
        why = f"{pos.sellable} at {limit}: {pf.reason}"
    if why or pf is None:
        return _skipped(ts, st.symbol, why) if report else decide()
    intent = Intent.create(
        decision_id=pos.decision_id,  # the entry caused it: the trade's fills share it
        symbol=st.symbol,
        side="sell",
        amount=pf.amount,
        limit_price=limit,
        ref_price=limit,  # the router's sell floor: exactly the limit
        max_slippage_bps=ZERO,
        time_in_force="GTC",
        leg=st.sell_leg,
        created_ms=ts,
        reason=f"protective stop at {stop}",
        stop_price=stop,
        mode=mode,  # the symbol's, like its other orders
    )
    return decide(Place(intent), sell_leg=st.sell_leg + 1)


def _skipped(ts: int, symbol: str, why: str) -> Decision:
    record: AlertRecord = {
        "kind": "alert",
        "ts": ts,
        "symbol": symbol,
        "alert": "protect_skipped",
        "detail": f"no protective stop: {why}",
    }
    return decide(Count("protect_skipped"), Publish(record))


def stop_news(ts: int, st: SymbolState, v: SymbolView, p: EnginePolicy) -> Decision:
    """News of the stop (a poll, a restart, its cancel): the trade is over if it sold the
    position, else the stop is kept in step with what is held."""
    if st.phase is not Phase.POSITION:
        return decide()  # an exit in progress, or ERROR: it comes back through POSITION
    if sold_by_stop(v):
        return closed_by_stop(v)
    return sync_stop(ts, st, v, p)


def sold_by_stop(v: SymbolView) -> bool:
    """The stop is over, it sold, and what is left is not worth a sell (dust)."""
    pos = v.position
    if pos is None or pos.sold_qty <= 0 or v.protective_stops:
        return False
    return pos.qty <= 0 or not preflight("sell", _price(v, pos), pos.qty, v.filters).ok


def closed_by_stop(v: SymbolView) -> Decision:
    pos = v.position
    sold = pos.sold_qty if pos is not None else ZERO
    left = pos.qty if pos is not None else ZERO
    reason = f"protective stop sold {sold}, dust {left}"
    return decide(Fire(E.STOP_FILLED, reason), exit_reason=PROTECTIVE_STOP)


def cancel_before_sell(v: SymbolView, then: Then) -> Decision:
    """Cancel every stop not over, then ``then`` (decided once the cancels answered)."""
    cancels: list[Command] = [Cancel(r.intent.intent_id) for r in v.protective_stops]
    return decide(*cancels, then)


def after_cancel(v: SymbolView) -> Decision | None:
    """After the cancel before a sell: wait if it has not settled (the base is still
    locked on the venue), close the trade if the stop sold everything, else None (sell)."""
    if v.protective_stops:
        return decide(Fire(E.SELL_BLOCKED, "the protective stop's cancel has not settled"))
    if sold_by_stop(v):
        return closed_by_stop(v)
    return None


def poll_due(v: SymbolView, low: float, stale: bool = False) -> str | None:
    """The stop to ask the venue about: a bar's low reached its stop, so it may have
    triggered and filled (the venue tells nobody), or it was last asked about
    ``STOP_REFRESH_MS`` ago (``stale``: a wick the bars did not show)."""
    for rec in v.protective_stops:
        stop = rec.intent.stop_price
        if stop is not None and rec.live and (stale or low <= stop):
            return rec.intent.intent_id
    return None


def _price(v: SymbolView, pos: Position) -> Decimal:
    ticker = v.quote
    return ticker.bid if ticker is not None else pos.avg_entry
