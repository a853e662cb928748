"""The aiohttp application: a local spot exchange at Binance's (or MEXC's) own URL paths.

A real ccxt client with only its base URLs pointed here trades against a
:class:`SimExchange`, so ccxt's own signing, parsing and error mapping run for real.
Everything binds to the loopback interface only; ``/__sim/*`` (fault injection, state,
prices) answers loopback callers only and needs no signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

from aiohttp import web

from fsmtrader.clock import Clock
from fsmtrader.exchange.simulated import SIM_VENUES, SimExchange, SimParams, SimVenue
from fsmtrader.exchange.simulated.venue import BNB, FEE_ASSETS, FeeAsset
from fsmtrader.markets import to_decimal
from fsmtrader_testing.simserver.binance import BinanceWire
from fsmtrader_testing.simserver.chaos import RandomFaults
from fsmtrader_testing.simserver.endpoints import routes
from fsmtrader_testing.simserver.host_clock import HostClock
from fsmtrader_testing.simserver.market import MarketSpec, PriceDriver, build_markets
from fsmtrader_testing.simserver.mexc import MexcWire
from fsmtrader_testing.simserver.routing import (
    EFFECT,
    STATE,
    STOPPING,
    WIRE,
    endpoint,
    json_response,
    read_params,
    wire_response,
)
from fsmtrader_testing.simserver.state import (
    EFFECTS,
    QUIRKS,
    Fault,
    ServerState,
    WireError,
)

log = logging.getLogger(__name__)

LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_SYMBOLS: Final = ("BTC/USDT", "ETH/USDT")
DEFAULT_BALANCES: Final = {"USDT": "10000", "BTC": "0.5", "ETH": "5"}
DEFAULT_BNB: Final = "10"


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
    visibility_lag_ms: int | None = None,
    fee_asset: FeeAsset = "quote",
    bnb_price: Decimal | None = None,
    fault_rate: float = 0.0,
    fault_seed: int = 0,
    fault_kinds: Iterable[str] | None = None,
) -> web.Application:
    """Build the server. ``speed`` is simulated seconds per wall second for the price
    driver (0 freezes prices); ``quirks`` switch on MEXC's known misbehaviours;
    ``markets_file`` (a ccxt markets JSON) supplies raw Binance exchangeInfo entries,
    else the embedded copy of Binance's real filters is used.

    The matching engine follows the flavour's venue profile (:func:`server_venue`):
    ``visibility_lag_ms`` (default: MEXC's ``not_found_window_ms`` under the
    ``order_not_found_after_create`` quirk, else 0), ``fee_asset`` (quote, received or
    bnb; a BNB balance is added to the default wallet). ``fault_rate`` > 0 gives each
    signed trading request that probability of a random fault of ``fault_kinds``
    (default: every kind the flavour has), reproducibly for ``fault_seed``."""
    quirk_set = frozenset(quirks)
    _check_options(flavour, api_key, api_secret, quirk_set, recv_window_ms_max, not_found_window_ms)
    venue = server_venue(
        flavour, quirk_set, not_found_window_ms, visibility_lag_ms, fee_asset, bnb_price
    )
    chaos = RandomFaults.build(fault_rate, fault_seed, fault_kinds, flavour)
    markets = build_markets(tuple(symbols), markets_file)
    clock = HostClock()
    sim = _matching_engine(flavour, markets, _wallet(markets, balances, venue), clock, seed, venue)
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
        chaos=chaos,
    )
    return _application(state)


def _matching_engine(
    flavour: str,
    markets: Mapping[str, MarketSpec],
    wallet: Mapping[str, Decimal],
    clock: Clock,
    seed: int,
    venue: SimVenue,
) -> SimExchange:
    """The simulated exchange behind the wire: a deeper book than the default one, and
    every filter the flavour's exchangeInfo states enforced (what a client reads is what
    the matching engine checks)."""
    params = SimParams(
        seed=seed, depth_levels=20, depth_quote=Decimal(5000), name=f"simserver-{flavour}"
    )
    wire = MexcWire() if flavour == "mexc" else BinanceWire()
    return SimExchange(
        {s: wire.enforced_filters(spec) for s, spec in markets.items()},
        wallet,
        clock=clock,
        params=replace(params, venue=venue),
    )


def server_venue(
    flavour: str,
    quirks: frozenset[str],
    not_found_window_ms: int,
    visibility_lag_ms: int | None,
    fee_asset: str,
    bnb_price: Decimal | None,
) -> SimVenue:
    """The flavour's venue profile with the server's options: the MEXC quirks switch
    its behaviours on one by one (a test of one quirk sees only that one)."""
    if fee_asset not in FEE_ASSETS:
        raise ValueError(f"fee_asset must be one of {', '.join(FEE_ASSETS)}, got {fee_asset!r}")
    if visibility_lag_ms is not None and (
        not isinstance(visibility_lag_ms, int) or visibility_lag_ms < 0
    ):
        raise ValueError(f"visibility_lag_ms must be an integer >= 0, got {visibility_lag_ms!r}")
    lag = visibility_lag_ms
    if lag is None:
        lag = not_found_window_ms if "order_not_found_after_create" in quirks else 0
    base = SIM_VENUES[flavour]
    return replace(
        base,
        visibility_lag_ms=lag,
        ioc_returns_open="ioc_returns_open" in quirks,
        stop_orders=base.stop_orders and "no_stop_limit" not in quirks,
    ).with_fee_asset(fee_asset, bnb_price)


def _check_options(
    flavour: str,
    api_key: str,
    api_secret: str,
    quirks: frozenset[str],
    recv_window_ms_max: int,
    not_found_window_ms: int,
) -> None:
    if flavour not in ("binance", "mexc"):
        raise ValueError(f"flavour must be 'binance' or 'mexc', got {flavour!r}")
    if not api_key or not api_secret:
        raise ValueError("api_key and api_secret must not be empty")
    if not quirks <= QUIRKS:
        raise ValueError(f"unknown quirks: {', '.join(sorted(quirks - QUIRKS))}")
    if quirks and flavour != "mexc":
        raise ValueError("quirks are MEXC behaviours; use flavour='mexc'")
    if recv_window_ms_max < 1 or not_found_window_ms < 0:
        raise ValueError("recv_window_ms_max must be >= 1 and not_found_window_ms >= 0")


def _wallet(
    markets: Mapping[str, MarketSpec],
    balances: Mapping[str, Decimal | str | int | float] | None,
    venue: SimVenue,
) -> dict[str, Decimal]:
    """The account's starting balances, with every market's assets present (at 0), and
    BNB to pay fees with when the venue charges them in BNB and no balances were given."""
    wallet: dict[str, Decimal] = {}
    if balances is None:
        balances = dict(DEFAULT_BALANCES)
        if venue.fee_asset == "bnb":
            balances[BNB] = DEFAULT_BNB
    for asset, amount in balances.items():
        wallet[asset] = to_decimal(amount, f"balance of {asset}")
    for spec in markets.values():
        wallet.setdefault(spec.filters.base, Decimal(0))
        wallet.setdefault(spec.filters.quote, Decimal(0))
    return wallet


def _application(state: ServerState) -> web.Application:
    """The aiohttp app of ``state``: the venue's routes, ``/__sim/*``, the price loop."""
    app = web.Application(middlewares=[_error_middleware, _fault_middleware])
    app[STATE] = state
    app[WIRE] = MexcWire() if state.flavour == "mexc" else BinanceWire()
    app[STOPPING] = asyncio.Event()
    for route in routes(state.flavour):
        app.router.add_route(route.method, route.path, endpoint(route))
    app.router.add_get("/__sim/state", _sim_state)
    app.router.add_post("/__sim/fault", _sim_fault)
    app.router.add_delete("/__sim/fault", _sim_fault_clear)
    app.router.add_post("/__sim/fault-rate", _sim_fault_rate)
    app.router.add_post("/__sim/price", _sim_price)
    app.cleanup_ctx.append(_price_loop)
    app.on_shutdown.append(_on_shutdown)
    return app


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
    visibility_lag_ms: int | None = None,
    fee_asset: FeeAsset = "quote",
    fault_rate: float = 0.0,
    fault_seed: int = 0,
    fault_kinds: Iterable[str] | None = None,
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
            visibility_lag_ms=visibility_lag_ms,
            fee_asset=fee_asset,
            fault_rate=fault_rate,
            fault_seed=fault_seed,
            fault_kinds=fault_kinds,
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


@web.middleware
async def _error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """WireError -> the venue's error answer; a bug -> a 500 in the venue's shape."""
    try:
        return await handler(request)
    except WireError as exc:
        return wire_response(exc)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("simserver: unexpected error on %s %s", request.method, request.path)
        wire = request.app[WIRE]
        return wire_response(
            wire.err(-1000, "An unknown error occurred while processing the request.", 500)
        )


@web.middleware
async def _fault_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Apply a queued fault to the next matching request, or a random one drawn at the
    server's fault rate (:mod:`.chaos`)."""
    if request.path.startswith("/__sim/"):
        return await handler(request)
    state, wire = request.app[STATE], request.app[WIRE]
    fault = state.take_fault(request.method, request.path)
    if fault is None:
        return await handler(request)
    kind = fault.kind
    if kind in EFFECTS:  # the request runs, differently (the handler reads EFFECT)
        request[EFFECT] = kind
        return await handler(request)
    if kind in ("rate_limit", "ban"):
        raise wire.rate_limited(fault.retry_after_s, kind == "ban", state.now_ms())
    if kind == "unavailable":
        raise wire.unavailable()
    if kind == "error":
        code = fault.code if fault.code is not None else -1000
        msg = fault.msg or "An unknown error occurred while processing the request."
        raise wire.err(code, msg, fault.status)
    if kind == "reject":
        params, _, _ = await read_params(request)
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


# ---------------------------------------------------------------------------- /__sim


def _local_only(request: web.Request) -> None:
    if request.remote not in ("127.0.0.1", "::1"):
        raise web.HTTPForbidden(text="/__sim is available to loopback callers only")


def _sim_error(message: str) -> web.Response:
    return json_response({"error": message}, 400)


async def _sim_state(request: web.Request) -> web.StreamResponse:
    """The test oracle: every order by client id, balances, prices, counters."""
    _local_only(request)
    return json_response(request.app[STATE].snapshot())


async def _sim_fault(request: web.Request) -> web.StreamResponse:
    """Queue a fault: {"endpoint": "POST /api/v3/order", "kind": ..., "times": 1, ...}."""
    _local_only(request)
    try:
        fault = Fault.from_json(await request.json())
    except ValueError as exc:
        return _sim_error(str(exc))
    state = request.app[STATE]
    state.faults.append(fault)
    return json_response({"ok": True, "pending": len(state.faults)})


async def _sim_fault_clear(request: web.Request) -> web.StreamResponse:
    _local_only(request)
    state = request.app[STATE]
    cleared = len(state.faults)
    state.faults.clear()
    return json_response({"ok": True, "cleared": cleared})


async def _sim_fault_rate(request: web.Request) -> web.StreamResponse:
    """{"rate": r} sets the random fault rate: 0 ends the faults before the crash
    torture's checked run (the draws go on, so a seed still replays)."""
    _local_only(request)
    chaos, data = request.app[STATE].chaos, await request.json()
    rate = data.get("rate") if isinstance(data, dict) else None
    top = 1 if chaos is not None else 0
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= top:
        return _sim_error("rate must be a number in [0, 1] (0 if started without faults)")
    if chaos is not None:
        chaos.rate = float(rate)
    return json_response({"ok": True, "fault_rate": float(rate)})


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
    return json_response(
        {
            "symbol": spec.symbol,
            "last": state.driver.last_price(spec.symbol),
            "bid": str(bid),
            "ask": str(ask),
        }
    )
