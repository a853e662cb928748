"""The venue's REST endpoints (public market data and signed trading calls) and the route
table of each flavour: what a real ccxt client calls, answered from the SimExchange."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any, Final

from aiohttp import web

from fsmtrader.errors import ExchangeError, OrderNotFound
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader_testing.simserver.binance_requests import Params
from fsmtrader_testing.simserver.history import order_page, trade_page
from fsmtrader_testing.simserver.market import MarketSpec
from fsmtrader_testing.simserver.routing import EFFECT, STATE, Route, ctx
from fsmtrader_testing.simserver.state import ServerState

MINUTE_MS: Final = 60_000
LAG_SPIKE_MS: Final = 5_000  # how long a queued lag spike hides a new order


def routes(flavour: str) -> list[Route]:
    """Every venue endpoint of ``flavour``: the shared Binance-style API plus its own."""
    common = [
        Route("GET", "/api/v3/ping", _ping),
        Route("GET", "/api/v3/time", _time),
        Route("GET", "/api/v3/exchangeInfo", _exchange_info, weight=20),
        Route("GET", "/api/v3/ticker/24hr", _ticker_24hr, weight=2),
        Route("GET", "/api/v3/ticker/price", _ticker_price, weight=2),
        Route("GET", "/api/v3/ticker/bookTicker", _book_ticker, weight=2),
        Route("GET", "/api/v3/depth", _depth, weight=5),
        Route("GET", "/api/v3/klines", _klines, weight=2),
        Route("GET", "/api/v3/account", _account, signed=True, weight=20),
        Route("POST", "/api/v3/order", _create_order, signed=True),
        Route("POST", "/api/v3/order/test", _test_order, signed=True),
        Route("GET", "/api/v3/order", _query_order, signed=True, weight=4),
        Route("DELETE", "/api/v3/order", _cancel_order, signed=True),
        Route("GET", "/api/v3/openOrders", _open_orders, signed=True, weight=6),
        Route("DELETE", "/api/v3/openOrders", _cancel_all, signed=True),
        Route("GET", "/api/v3/allOrders", _all_orders, signed=True, weight=20),
        Route("GET", "/api/v3/myTrades", _my_trades, signed=True, weight=20),
    ]
    if flavour == "binance":
        return [
            *common,
            Route("GET", "/api/v3/uiKlines", _klines, weight=2),
            Route("GET", "/sapi/v1/capital/config/getall", _currencies, signed=True, weight=10),
            Route("GET", "/sapi/v1/margin/allPairs", _empty_list, signed=True),
            Route("GET", "/sapi/v1/margin/isolated/allPairs", _empty_list, signed=True),
            Route("GET", "/fapi/v1/exchangeInfo", _no_derivatives),
            Route("GET", "/dapi/v1/exchangeInfo", _no_derivatives),
        ]
    return [
        *common,
        Route("GET", "/api/v3/capital/config/getall", _currencies, signed=True, weight=10),
        Route("GET", "/api/v1/contract/detail", _no_contracts),
    ]


# ---------------------------------------------------------------------------- public


async def _ping(request: web.Request, params: Params) -> Any:
    return {}


async def _time(request: web.Request, params: Params) -> Any:
    return {"serverTime": request.app[STATE].now_ms()}


async def _exchange_info(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    specs = wire.symbols_param(params, state) or list(state.markets.values())
    return wire.exchange_info(state, specs)


def _book(state: ServerState, spec: MarketSpec) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return state.sim.order_book_top(spec.symbol)


async def _ticker_24hr(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    specs = wire.symbols_param(params, state)
    now = state.now_ms()

    def one(spec: MarketSpec) -> dict[str, Any]:
        stats = state.driver.day_stats(spec.symbol, now)
        last = state.driver.last_price(spec.symbol)
        return wire.ticker_24hr(spec, stats, _book(state, spec), last, now)

    if params.get("symbol") and specs:
        return one(specs[0])
    return [one(s) for s in (specs or state.markets.values())]


async def _ticker_price(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    specs = wire.symbols_param(params, state)
    rows = [
        wire.price_ticker(s, state.driver.last_price(s.symbol))
        for s in (specs or state.markets.values())
    ]
    return rows[0] if params.get("symbol") else rows


async def _book_ticker(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    specs = wire.symbols_param(params, state)
    rows = [wire.book_ticker(s, _book(state, s)) for s in (specs or state.markets.values())]
    return rows[0] if params.get("symbol") else rows


async def _depth(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    spec = wire.symbol_of(params, state)
    limit = wire.limit_param(params, 100, 5000)
    bids, asks = _levels(state.sim, spec.symbol, limit)
    return wire.depth(state.now_ms(), bids, asks)


def _levels(
    sim: SimExchange, symbol: str, limit: int
) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """The matching engine's current book (levels with liquidity left), best first.

    The depth shown is the depth that fills: the SimExchange's per-bar book."""
    bid, bid_qty, ask, ask_qty = sim.order_book_top(symbol)
    bids, asks = sim.depth(symbol)
    return bids[:limit] or [(bid, bid_qty)], asks[:limit] or [(ask, ask_qty)]


async def _klines(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    spec = wire.symbol_of(params, state)
    interval = params.get("interval")
    if not interval:
        raise wire.mandatory("interval")
    minutes = wire.intervals.get(interval)
    if minutes is None:
        raise wire.bad_interval()
    start = wire.int_param(params, "startTime")
    end = wire.int_param(params, "endTime")
    if end is not None and wire.kline_end_exclusive:
        end -= 1
    limit = wire.limit_param(params, 500, wire.kline_max)
    interval_ms = minutes * MINUTE_MS
    rows = state.driver.klines(
        spec.symbol, interval_ms, start_ms=start, end_ms=end, limit=limit, now_ms=state.now_ms()
    )
    return [wire.kline_row(k, interval_ms) for k in rows]


async def _no_derivatives(request: web.Request, params: Params) -> Any:
    """fapi/dapi exchangeInfo: a spot-only venue lists no futures."""
    now = request.app[STATE].now_ms()
    return {
        "timezone": "UTC",
        "serverTime": now,
        "rateLimits": [],
        "exchangeFilters": [],
        "assets": [],
        "symbols": [],
    }


async def _no_contracts(request: web.Request, params: Params) -> Any:
    """MEXC contract/detail: a spot-only venue lists no contracts."""
    return {"success": True, "code": 0, "data": []}


async def _empty_list(request: web.Request, params: Params) -> Any:
    return []


# ---------------------------------------------------------------------------- signed


async def _account(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    return wire.account(state.sim.fetch_balance(), state.now_ms())


async def _currencies(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    assets = sorted({a for s in state.markets.values() for a in (s.filters.base, s.filters.quote)})
    return wire.currencies(assets)


async def _create_order(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    new = wire.parse_new_order(params, state)
    effect = request.get(EFFECT)
    if effect == "lag_spike" and state.chaos is not None:
        new = replace(new, hidden_ms=state.chaos.spike_ms)
    elif effect == "lag_spike":
        new = replace(new, hidden_ms=LAG_SPIKE_MS)
    elif effect == "ioc_open" and new.time_in_force == "IOC" and new.order_type == "limit":
        new = replace(new, time_in_force="GTC")  # MEXC: it rests, reported as sent
    try:
        view = state.place(new, wire.wire_order_id)
    except ExchangeError as exc:
        raise wire.domain_error(exc, "create", state.markets[new.symbol], new.side) from None
    return wire.order_created(view, new.resp_type)


async def _test_order(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    wire.parse_new_order(params, state)
    return {}


async def _query_order(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    spec = wire.symbol_of(params, state)
    wire_id, cid = wire.order_ref(params)
    try:
        view = state.query(spec.symbol, wire_id, cid)
    except ExchangeError as exc:
        raise wire.domain_error(exc, "query", spec) from None
    return wire.order_queried(view)


def _cancel_id(state: ServerState, params: Params) -> str:
    return params.get("newClientOrderId") or f"cancel{state.now_ms()}"


async def _cancel_order(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    spec = wire.symbol_of(params, state)
    wire_id, cid = wire.order_ref(params)
    try:
        view = state.cancel(spec.symbol, wire_id, cid, race=request.get(EFFECT) == "cancel_race")
    except ExchangeError as exc:
        raise wire.domain_error(exc, "cancel", spec) from None
    return wire.order_canceled(view, _cancel_id(state, params))


async def _cancel_all(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    spec = wire.symbol_of(params, state)
    done: list[dict[str, Any]] = []
    for view in state.open_orders(spec.symbol):
        try:
            canceled = state.cancel(spec.symbol, view.meta.wire_id, None)
        except ExchangeError:
            continue  # filled meanwhile
        done.append(wire.order_canceled(canceled, _cancel_id(state, params)))
    if not done:
        raise wire.domain_error(OrderNotFound("no open orders"), "cancel", spec)
    return done


async def _open_orders(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    symbol = wire.symbol_of(params, state).symbol if params.get("symbol") else None
    return [wire.order_queried(v) for v in state.open_orders(symbol)]


async def _all_orders(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    spec = wire.symbol_of(params, state)
    return [wire.order_queried(v) for v in order_page(state, wire, params, spec.symbol)]


async def _my_trades(request: web.Request, params: Params) -> Any:
    state, wire = ctx(request)
    spec = wire.symbol_of(params, state)
    trades = trade_page(state, wire, params, spec.symbol)
    return [wire.trade(t, state.view_of(t.order_id, t.symbol)) for t in trades]
