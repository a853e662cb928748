"""How a venue request is served: the route table's entries, the application's keys, reading
parameters the way Binance and MEXC do (query string over body), authenticating a signed
call, and the wrapper that turns a handler's result or WireError into the venue's answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from aiohttp import web

from fsmtrader_testing.simserver.binance import BinanceWire
from fsmtrader_testing.simserver.binance_requests import Params
from fsmtrader_testing.simserver.state import ServerState, WireError

DEFAULT_RECV_WINDOW_MS: Final = 5000

STATE: Final = web.AppKey("fsmtrader_simserver_state", ServerState)
WIRE: Final = web.AppKey("fsmtrader_simserver_wire", BinanceWire)
STOPPING: Final = web.AppKey("fsmtrader_simserver_stopping", asyncio.Event)
EFFECT: Final = web.RequestKey("fsmtrader_simserver_effect", str)  # a fault's effect kind

Handler = Callable[[web.Request, Params], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    signed: bool = False
    weight: int = 1


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def wire_response(exc: WireError) -> web.Response:
    if isinstance(exc.body, str):
        return web.Response(
            text=exc.body, status=exc.status, content_type="text/html", headers=exc.headers
        )
    return json_response(exc.body, exc.status, exc.headers)


async def read_params(request: web.Request) -> tuple[Params, str, str]:
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


def authenticate(
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


def endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        state, wire = request.app[STATE], request.app[WIRE]
        headers: dict[str, str] = {}
        if wire.name == "binance":
            used = state.add_weight(route.weight)
            headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        try:
            params, raw_query, raw_body = await read_params(request)
            if route.signed:
                authenticate(state, wire, request, params, raw_query, raw_body)
            result = await route.handler(request, params)
        except WireError as exc:
            exc.headers = {**headers, **exc.headers}
            raise
        return json_response(result, headers=headers)

    return handle


def ctx(request: web.Request) -> tuple[ServerState, BinanceWire]:
    """The server state and the venue's wire format of a request."""
    return request.app[STATE], request.app[WIRE]
