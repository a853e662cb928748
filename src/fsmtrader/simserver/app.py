"""The aiohttp application: a local spot exchange at Binance's (or MEXC's) own URL paths.

A real ccxt client with only its base URLs pointed here trades against a
:class:`SimExchange`, so ccxt's own signing, parsing and error mapping run for real.
Everything binds to the loopback interface only; ``/__sim/*`` (fault injection, state,
prices) answers loopback callers only and needs no signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

from aiohttp import web

from fsmtrader.clock import WallClock
from fsmtrader.errors import ExchangeError, OrderNotFound
from fsmtrader.exchange.simulated import SimExchange, SimParams
from fsmtrader.markets import to_decimal
from fsmtrader.simserver.binance import BinanceWire, Params
from fsmtrader.simserver.market import MarketSpec, PriceDriver, build_markets
from fsmtrader.simserver.mexc import MexcWire
from fsmtrader.simserver.state import (
    QUIRKS,
    Fault,
    OrderView,
    ServerState,
    WireError,
)

log = logging.getLogger(__name__)

LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_SYMBOLS: Final = ("BTC/USDT", "ETH/USDT")
DEFAULT_BALANCES: Final = {"USDT": "10000", "BTC": "0.5", "ETH": "5"}
DEFAULT_RECV_WINDOW_MS: Final = 5000
MINUTE_MS: Final = 60_000

STATE: Final = web.AppKey("fsmtrader_simserver_state", ServerState)
WIRE: Final = web.AppKey("fsmtrader_simserver_wire", BinanceWire)
STOPPING: Final = web.AppKey("fsmtrader_simserver_stopping", asyncio.Event)

Handler = Callable[[web.Request, Params], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    path: str
    handler: Handler
    signed: bool = False
    weight: int = 1


# ---------------------------------------------------------------------------- factory


def create_app(
    *,
    flavour: Literal["binance", "mexc"],
    api_key: str,
    api_secret: str,
    symbols: Iterable[str] = DEFAULT_SYMBOLS,
    balances: Mapping[str, Decimal | str | int | float] | None = None,
    seed: int = 0,
    speed: float = 60.0,
    quirks: Iterable[str] = frozenset(),
    recv_window_ms_max: int = 60_000,
    not_found_window_ms: int = 1500,
    markets_file: Path | None = None,
) -> web.Application:
    """Build the server. ``speed`` is simulated seconds per wall second for the price
    driver (0 freezes prices); ``quirks`` switch on MEXC's known misbehaviours;
    ``markets_file`` (a ccxt markets JSON) supplies raw Binance exchangeInfo entries,
    else the embedded copy of Binance's real filters is used."""
    if flavour not in ("binance", "mexc"):
        raise ValueError(f"flavour must be 'binance' or 'mexc', got {flavour!r}")
    if not api_key or not api_secret:
        raise ValueError("api_key and api_secret must not be empty")
    quirk_set = frozenset(quirks)
    if not quirk_set <= QUIRKS:
        raise ValueError(f"unknown quirks: {', '.join(sorted(quirk_set - QUIRKS))}")
    if quirk_set and flavour != "mexc":
        raise ValueError("quirks are MEXC behaviours; use flavour='mexc'")
    if recv_window_ms_max < 1 or not_found_window_ms < 0:
        raise ValueError("recv_window_ms_max must be >= 1 and not_found_window_ms >= 0")
    markets = build_markets(tuple(symbols), markets_file)
    wallet: dict[str, Decimal] = {}
    for asset, amount in (balances if balances is not None else DEFAULT_BALANCES).items():
        wallet[asset] = to_decimal(amount, f"balance of {asset}")
    for spec in markets.values():
        wallet.setdefault(spec.filters.base, Decimal(0))
        wallet.setdefault(spec.filters.quote, Decimal(0))
    clock = WallClock()
    sim = SimExchange(
        {s: spec.filters for s, spec in markets.items()},
        wallet,
        clock=clock,
        params=SimParams(
            seed=seed, depth_levels=20, depth_quote=Decimal(5000), name=f"simserver-{flavour}"
        ),
    )
    driver = PriceDriver(sim, markets, seed=seed, speed=speed, now_ms=clock.now_ms())
    state = ServerState(
        flavour=flavour,
        api_key=api_key,
        api_secret=api_secret,
        sim=sim,
        driver=driver,
        clock=clock,
        markets=markets,
        quirks=quirk_set,
        recv_window_ms_max=recv_window_ms_max,
        not_found_window_ms=not_found_window_ms,
    )
    app = web.Application(middlewares=[_error_middleware, _fault_middleware])
    app[STATE] = state
    app[WIRE] = MexcWire() if flavour == "mexc" else BinanceWire()
    app[STOPPING] = asyncio.Event()
    for route in _routes(flavour):
        app.router.add_route(route.method, route.path, _endpoint(route))
    app.router.add_get("/__sim/state", _sim_state)
    app.router.add_post("/__sim/fault", _sim_fault)
    app.router.add_delete("/__sim/fault", _sim_fault_clear)
    app.router.add_post("/__sim/price", _sim_price)
    app.cleanup_ctx.append(_price_loop)
    app.on_shutdown.append(_on_shutdown)
    return app


def _routes(flavour: str) -> list[_Route]:
    common = [
        _Route("GET", "/api/v3/ping", _ping),
        _Route("GET", "/api/v3/time", _time),
        _Route("GET", "/api/v3/exchangeInfo", _exchange_info, weight=20),
        _Route("GET", "/api/v3/ticker/24hr", _ticker_24hr, weight=2),
        _Route("GET", "/api/v3/ticker/price", _ticker_price, weight=2),
        _Route("GET", "/api/v3/ticker/bookTicker", _book_ticker, weight=2),
        _Route("GET", "/api/v3/depth", _depth, weight=5),
        _Route("GET", "/api/v3/klines", _klines, weight=2),
        _Route("GET", "/api/v3/account", _account, signed=True, weight=20),
        _Route("POST", "/api/v3/order", _create_order, signed=True),
        _Route("POST", "/api/v3/order/test", _test_order, signed=True),
        _Route("GET", "/api/v3/order", _query_order, signed=True, weight=4),
        _Route("DELETE", "/api/v3/order", _cancel_order, signed=True),
        _Route("GET", "/api/v3/openOrders", _open_orders, signed=True, weight=6),
        _Route("DELETE", "/api/v3/openOrders", _cancel_all, signed=True),
        _Route("GET", "/api/v3/allOrders", _all_orders, signed=True, weight=20),
        _Route("GET", "/api/v3/myTrades", _my_trades, signed=True, weight=20),
    ]
    if flavour == "binance":
        return [
            *common,
            _Route("GET", "/api/v3/uiKlines", _klines, weight=2),
            _Route("GET", "/sapi/v1/capital/config/getall", _currencies, signed=True, weight=10),
            _Route("GET", "/sapi/v1/margin/allPairs", _empty_list, signed=True),
            _Route("GET", "/sapi/v1/margin/isolated/allPairs", _empty_list, signed=True),
            _Route("GET", "/fapi/v1/exchangeInfo", _no_derivatives),
            _Route("GET", "/dapi/v1/exchangeInfo", _no_derivatives),
        ]
    return [
        *common,
        _Route("GET", "/api/v3/capital/config/getall", _currencies, signed=True, weight=10),
        _Route("GET", "/api/v1/contract/detail", _no_contracts),
    ]


# ---------------------------------------------------------------------------- serving


def _check_host(host: str) -> None:
    if host not in LOCAL_HOSTS:
        raise ValueError(
            f"the simulated exchange binds to loopback only "
            f"({', '.join(sorted(LOCAL_HOSTS))}), not {host!r}"
        )


async def start_server(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``host:port`` (0 picks a free port); returns the runner (call
    ``await runner.cleanup()`` to stop) and the bound port."""
    _check_host(host)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = int(runner.addresses[0][1])
    return runner, bound


def serve(
    *,
    flavour: Literal["binance", "mexc"],
    api_key: str,
    api_secret: str,
    host: str = "127.0.0.1",
    port: int = 8765,
    symbols: Iterable[str] = DEFAULT_SYMBOLS,
    balances: Mapping[str, Decimal | str | int | float] | None = None,
    seed: int = 0,
    speed: float = 60.0,
    quirks: Iterable[str] = frozenset(),
    markets_file: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run the server until SIGINT/SIGTERM (the ``fsmtrader sim-server`` command).
    ``on_ready`` receives the base URL once the port is bound."""
    _check_host(host)

    async def main() -> None:
        app = create_app(
            flavour=flavour,
            api_key=api_key,
            api_secret=api_secret,
            symbols=symbols,
            balances=balances,
            seed=seed,
            speed=speed,
            quirks=quirks,
            markets_file=markets_file,
        )
        runner, bound = await start_server(app, host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # non-Unix
                loop.add_signal_handler(sig, stop.set)
        shown = f"[{host}]" if ":" in host else host
        if on_ready is not None:
            on_ready(f"http://{shown}:{bound}")
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C during shutdown
        asyncio.run(main())


async def _price_loop(app: web.Application) -> AsyncIterator[None]:
    """Move prices in the background for the app's lifetime."""
    state = app[STATE]
    task: asyncio.Task[None] | None = None
    if state.driver.speed > 0:
        interval = min(1.0, max(0.02, 60.0 / state.driver.speed))

        async def run() -> None:
            while True:
                try:
                    state.driver.advance(state.now_ms())
                except Exception:  # a driver bug must not kill the server
                    log.exception("price driver failed")
                await asyncio.sleep(interval)

        task = asyncio.create_task(run())
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _on_shutdown(app: web.Application) -> None:
    app[STOPPING].set()  # ends stalled "timeout" answers at once


# ---------------------------------------------------------------------------- plumbing


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _wire_response(exc: WireError) -> web.Response:
    if isinstance(exc.body, str):
        return web.Response(
            text=exc.body, status=exc.status, content_type="text/html", headers=exc.headers
        )
    return _json(exc.body, exc.status, exc.headers)


@web.middleware
async def _error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """WireError -> the venue's error answer; a bug -> a 500 in the venue's shape."""
    try:
        return await handler(request)
    except WireError as exc:
        return _wire_response(exc)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("simserver: unexpected error on %s %s", request.method, request.path)
        wire = request.app[WIRE]
        return _wire_response(
            wire.err(-1000, "An unknown error occurred while processing the request.", 500)
        )


@web.middleware
async def _fault_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Apply an injected fault to the next matching request."""
    if request.path.startswith("/__sim/"):
        return await handler(request)
    state, wire = request.app[STATE], request.app[WIRE]
    fault = state.take_fault(request.method, request.path)
    if fault is None:
        return await handler(request)
    kind = fault.kind
    if kind in ("rate_limit", "ban"):
        raise wire.rate_limited(fault.retry_after_s, kind == "ban", state.now_ms())
    if kind == "unavailable":
        raise wire.unavailable()
    if kind == "error":
        code = fault.code if fault.code is not None else -1000
        msg = fault.msg or "An unknown error occurred while processing the request."
        raise wire.err(code, msg, fault.status)
    if kind == "reject":
        params, _, _ = await _read_params(request)
        spec = state.market_by_id(params.get("symbol", "").upper())
        op = {"POST": "create", "DELETE": "cancel"}.get(request.method, "query")
        side = (params.get("side") or "").lower() or None
        raise wire.domain_error(fault.domain_error(), op, spec, side)
    if kind == "timeout_after":
        # it happens (or is refused); either way the client never learns the outcome
        with contextlib.suppress(WireError):
            await handler(request)
    await _stall(request.app, fault.delay_s)
    raise wire.timed_out()


async def _stall(app: web.Application, seconds: float) -> None:
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(app[STOPPING].wait(), timeout=seconds)


async def _read_params(request: web.Request) -> tuple[Params, str, str]:
    """All parameters (query string wins over body, as on Binance and MEXC), plus the
    raw query string and raw body the signature covers."""
    raw_query = request.rel_url.raw_query_string
    raw_body = await request.text() if request.can_read_body else ""
    params: Params = {}
    if raw_body:
        if request.content_type == "application/json":
            try:
                data = json.loads(raw_body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                params.update({str(k): _scalar(v) for k, v in data.items()})
        else:
            params.update(parse_qsl(raw_body, keep_blank_values=True))
    params.update(parse_qsl(raw_query, keep_blank_values=True))
    return params, raw_query, raw_body


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _without_signature(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if p and not p.startswith("signature="))


def _authenticate(
    state: ServerState,
    wire: BinanceWire,
    request: web.Request,
    params: Params,
    raw_query: str,
    raw_body: str,
) -> None:
    """API key header, then HMAC-SHA256 over query string + body (signature removed),
    then the timestamp against recvWindow, as Binance and MEXC check them."""
    key = request.headers.get(wire.key_header)
    if not key:
        raise wire.missing_key()
    if not hmac.compare_digest(key.encode(), state.api_key.encode()):
        raise wire.bad_key()
    signature = params.get("signature")
    if not signature:
        raise wire.mandatory("signature")
    ts_raw = params.get("timestamp")
    if not ts_raw:
        raise wire.mandatory("timestamp")
    if not ts_raw.isdigit():
        raise wire.illegal("timestamp", r"^[0-9]{1,20}$")
    rw_raw = params.get("recvWindow")
    recv_window = DEFAULT_RECV_WINDOW_MS
    if rw_raw:
        if not rw_raw.isdigit():
            raise wire.illegal("recvWindow", r"^[0-9]{1,20}$")
        recv_window = int(rw_raw)
        if recv_window > state.recv_window_ms_max:
            raise wire.bad_recv_window(state.recv_window_ms_max)
    total = _without_signature(raw_query) + _without_signature(raw_body)
    expected = hmac.new(state.api_secret.encode(), total.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise wire.bad_signature()
    now = state.now_ms()
    ts = int(ts_raw)
    if ts >= now + 1000:
        raise wire.bad_timestamp(ahead=True)
    if now - ts > recv_window:
        raise wire.bad_timestamp(ahead=False)


def _endpoint(route: _Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        state, wire = request.app[STATE], request.app[WIRE]
        headers: dict[str, str] = {}
        if wire.name == "binance":
            used = state.add_weight(route.weight)
            headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        try:
            params, raw_query, raw_body = await _read_params(request)
            if route.signed:
                _authenticate(state, wire, request, params, raw_query, raw_body)
            result = await route.handler(request, params)
        except WireError as exc:
            exc.headers = {**headers, **exc.headers}
            raise
        return _json(result, headers=headers)

    return handle


def _ctx(request: web.Request) -> tuple[ServerState, BinanceWire]:
    return request.app[STATE], request.app[WIRE]


# ---------------------------------------------------------------------------- public


async def _ping(request: web.Request, params: Params) -> Any:
    return {}


async def _time(request: web.Request, params: Params) -> Any:
    return {"serverTime": request.app[STATE].now_ms()}


async def _exchange_info(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
    specs = wire.symbols_param(params, state) or list(state.markets.values())
    return wire.exchange_info(state, specs)


def _book(state: ServerState, spec: MarketSpec) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return state.sim.order_book_top(spec.symbol)


async def _ticker_24hr(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
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
    state, wire = _ctx(request)
    specs = wire.symbols_param(params, state)
    rows = [
        wire.price_ticker(s, state.driver.last_price(s.symbol))
        for s in (specs or state.markets.values())
    ]
    return rows[0] if params.get("symbol") else rows


async def _book_ticker(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
    specs = wire.symbols_param(params, state)
    rows = [wire.book_ticker(s, _book(state, s)) for s in (specs or state.markets.values())]
    return rows[0] if params.get("symbol") else rows


async def _depth(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
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
    state, wire = _ctx(request)
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
    state, wire = _ctx(request)
    return wire.account(state.sim.fetch_balance(), state.now_ms())


async def _currencies(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
    assets = sorted({a for s in state.markets.values() for a in (s.filters.base, s.filters.quote)})
    return wire.currencies(assets)


async def _create_order(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
    new = wire.parse_new_order(params, state)
    try:
        view = state.place(new, wire.wire_order_id)
    except ExchangeError as exc:
        raise wire.domain_error(exc, "create", state.markets[new.symbol], new.side) from None
    return wire.order_created(view, new.resp_type)


async def _test_order(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
    wire.parse_new_order(params, state)
    return {}


async def _query_order(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
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
    state, wire = _ctx(request)
    spec = wire.symbol_of(params, state)
    wire_id, cid = wire.order_ref(params)
    try:
        view = state.cancel(spec.symbol, wire_id, cid)
    except ExchangeError as exc:
        raise wire.domain_error(exc, "cancel", spec) from None
    return wire.order_canceled(view, _cancel_id(state, params))


async def _cancel_all(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
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
    state, wire = _ctx(request)
    symbol = wire.symbol_of(params, state).symbol if params.get("symbol") else None
    return [wire.order_queried(v) for v in state.open_orders(symbol)]


async def _all_orders(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
    spec = wire.symbol_of(params, state)
    from_id = params.get("orderId")
    start = wire.int_param(params, "startTime")
    end = wire.int_param(params, "endTime")
    limit = wire.limit_param(params, 500, 1000)
    views = state.all_orders(spec.symbol)
    if from_id:
        meta = state.orders.get(wire.parse_order_id(from_id))
        floor = int(meta.sim_id) if meta else 0
        views = [v for v in views if int(v.meta.sim_id) >= floor]
    if start is not None:
        views = [v for v in views if v.meta.created_ms >= start]
    if end is not None:
        views = [v for v in views if v.meta.created_ms <= end]
    picked = views[:limit] if (from_id or start is not None) else views[-limit:]
    return [wire.order_queried(v) for v in picked]


async def _my_trades(request: web.Request, params: Params) -> Any:
    state, wire = _ctx(request)
    spec = wire.symbol_of(params, state)
    start = wire.int_param(params, "startTime")
    end = wire.int_param(params, "endTime")
    from_id = wire.int_param(params, "fromId")
    limit = wire.limit_param(params, 500, 1000)
    trades = state.sim.fetch_my_trades(spec.symbol, start)
    order_raw = params.get("orderId")
    if order_raw:
        meta = state.orders.get(wire.parse_order_id(order_raw))
        trades = [t for t in trades if meta is not None and t.order_id == meta.sim_id]
    if end is not None:
        trades = [t for t in trades if t.timestamp <= end]
    if from_id is not None:
        trades = [t for t in trades if int(t.id.lstrip("t")) >= from_id]
    forward = from_id is not None or start is not None
    picked = trades[:limit] if forward else trades[-limit:]
    rows = []
    for t in picked:
        meta = state.by_sim_id.get(t.order_id)
        view = OrderView(meta, state.sim.fetch_order(t.order_id, t.symbol)) if meta else None
        rows.append(wire.trade(t, view))
    return rows


# ---------------------------------------------------------------------------- /__sim


def _local_only(request: web.Request) -> None:
    if request.remote not in ("127.0.0.1", "::1"):
        raise web.HTTPForbidden(text="/__sim is available to loopback callers only")


def _sim_error(message: str) -> web.Response:
    return _json({"error": message}, 400)


async def _sim_state(request: web.Request) -> web.StreamResponse:
    """The test oracle: every order by client id, balances, prices, counters."""
    _local_only(request)
    return _json(request.app[STATE].snapshot())


async def _sim_fault(request: web.Request) -> web.StreamResponse:
    """Queue a fault: {"endpoint": "POST /api/v3/order", "kind": ..., "times": 1, ...}."""
    _local_only(request)
    try:
        fault = Fault.from_json(await request.json())
    except ValueError as exc:
        return _sim_error(str(exc))
    state = request.app[STATE]
    state.faults.append(fault)
    return _json({"ok": True, "pending": len(state.faults)})


async def _sim_fault_clear(request: web.Request) -> web.StreamResponse:
    _local_only(request)
    state = request.app[STATE]
    cleared = len(state.faults)
    state.faults.clear()
    return _json({"ok": True, "cleared": cleared})


async def _sim_price(request: web.Request) -> web.StreamResponse:
    """Set a price now: {"symbol": "BTC/USDT", "price": "50000", "high"?, "low"?,
    "hold": true}. ``hold`` false without a price releases a held symbol."""
    _local_only(request)
    state = request.app[STATE]
    try:
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        raw_symbol = str(data.get("symbol", ""))
        spec = state.markets.get(raw_symbol) or state.market_by_id(raw_symbol.upper())
        if spec is None:
            raise ValueError(f"unknown symbol {raw_symbol!r}")
        hold = data.get("hold", True)
        if not isinstance(hold, bool):
            raise ValueError("hold must be true or false")
        if data.get("price") is None:
            if hold:
                raise ValueError("price is required unless hold is false")
            state.driver.release(spec.symbol)
        else:
            price = float(to_decimal(data["price"], "price"))
            high = float(to_decimal(data["high"], "high")) if "high" in data else None
            low = float(to_decimal(data["low"], "low")) if "low" in data else None
            if price <= 0 or (low is not None and low <= 0):
                raise ValueError("prices must be > 0")
            state.driver.set_price(
                spec.symbol, price, state.now_ms(), high=high, low=low, hold=hold
            )
    except ValueError as exc:
        return _sim_error(str(exc))
    bid, _, ask, _ = state.sim.order_book_top(spec.symbol)
    return _json(
        {
            "symbol": spec.symbol,
            "last": state.driver.last_price(spec.symbol),
            "bid": str(bid),
            "ask": str(ask),
        }
    )
