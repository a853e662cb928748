"""Order and trade history pages (``allOrders``, ``myTrades``) under the venue's rules.

Why: a client that proves an order absent from history, or maps fills after a restart,
must page like it would on the venue: at most ``limit`` rows a request, a time window of
at most 24 h on Binance (error -1127 otherwise), ``orderId``/``fromId`` cursors, MEXC's
24 h default window and 7-day horizon. The rules are the matching engine's venue
profile (:class:`~fsmtrader.exchange.simulated.venue.HistoryRules`), not branches on
the flavour's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from fsmtrader.exchange.simulated import HistoryRules
from fsmtrader.exchange.types import TradeInfo
from fsmtrader_testing.simserver.binance import BinanceWire
from fsmtrader_testing.simserver.binance_requests import Params
from fsmtrader_testing.simserver.state import OrderView, ServerState

_R = TypeVar("_R")


def _window(
    wire: BinanceWire, params: Params, rules: HistoryRules, now: int
) -> tuple[int | None, int | None]:
    """The request's (start, end), checked and completed by the venue's rules."""
    start = wire.int_param(params, "startTime")
    end = wire.int_param(params, "endTime")
    if start is not None and end is not None:
        if end < start:
            raise wire.err(-1127, "startTime must be before endTime.")
        if rules.max_window_ms is not None and end - start > rules.max_window_ms:
            hours = rules.max_window_ms // 3_600_000
            raise wire.err(-1127, f"More than {hours} hours between startTime and endTime.")
    elif end is not None and rules.max_window_ms is not None:
        start = end - rules.max_window_ms  # an end alone: the window that ends there
    if start is None and end is None and rules.default_window_ms is not None:
        start = now - rules.default_window_ms  # MEXC: the last 24 h by default
    if rules.max_age_ms is not None:
        horizon = now - rules.max_age_ms  # MEXC: nothing older is served
        start = horizon if start is None else max(start, horizon)
    return start, end


def _page(rows: Sequence[_R], limit: int, forward: bool) -> list[_R]:
    """A cursor or a start time pages forward from it; otherwise the most recent."""
    return list(rows[:limit] if forward else rows[-limit:] if limit else [])


def order_page(
    state: ServerState, wire: BinanceWire, params: Params, symbol: str
) -> list[OrderView]:
    """``GET /api/v3/allOrders``: orders with id >= ``orderId``, or in the window."""
    rules = state.sim.venue.history
    limit = wire.limit_param(params, rules.orders_limit_default, rules.orders_limit_max)
    start, end = _window(wire, params, rules, state.now_ms())
    views = state.all_orders(symbol)
    from_raw = params.get("orderId")
    floor = None
    if from_raw:
        wire_id = wire.parse_order_id(from_raw)
        meta = state.orders.get(wire_id)
        if meta is not None:
            floor = int(meta.sim_id)
        elif wire_id.isdigit():  # Binance: ids are numbers, a cursor need not be an order
            floor = int(wire_id)
        else:
            floor = _past_every_order(state)
        views = [v for v in views if int(v.meta.sim_id) >= floor]
    views = _in_window(views, lambda v: v.meta.created_ms, start, end)
    return _page(views, limit, floor is not None or start is not None)


def trade_page(
    state: ServerState, wire: BinanceWire, params: Params, symbol: str
) -> list[TradeInfo]:
    """``GET /api/v3/myTrades``: fills of one order, from ``fromId``, or in the window."""
    rules = state.sim.venue.history
    limit = wire.limit_param(params, rules.trades_limit_default, rules.trades_limit_max)
    from_id = wire.int_param(params, "fromId") if rules.trade_cursor else None
    if from_id is not None and (params.get("startTime") or params.get("endTime")):
        raise wire.err(-1128, "Combination of optional parameters invalid.")
    start, end = _window(wire, params, rules, state.now_ms())
    trades = state.trades(symbol)
    order_raw = params.get("orderId")
    if order_raw:
        meta = state.orders.get(wire.parse_order_id(order_raw))
        trades = [t for t in trades if meta is not None and t.order_id == meta.sim_id]
    if from_id is not None:
        trades = [t for t in trades if trade_number(t) >= from_id]
    trades = _in_window(trades, lambda t: t.timestamp, start, end)
    return _page(trades, limit, from_id is not None or start is not None)


def _in_window(
    rows: list[_R], at: Callable[[_R], int], start: int | None, end: int | None
) -> list[_R]:
    return [r for r in rows if (start is None or at(r) >= start) and (end is None or at(r) <= end)]


def _past_every_order(state: ServerState) -> int:
    """An ``orderId`` cursor the venue never issued: past every order (an empty page)."""
    return max((int(m.sim_id) for m in state.orders.values()), default=0) + 1


def trade_number(t: TradeInfo) -> int:
    """The trade's id as the wire shows it (``t12`` is trade 12)."""
    return int(t.id.lstrip("t"))
