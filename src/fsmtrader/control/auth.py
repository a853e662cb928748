"""The bearer token on every request, as a pure ASGI middleware: nothing the app serves —
routes, the OpenAPI schema, 404s, the push stream — is reachable without it.

Only the dashboard page ``/`` also takes the token once as ``?token=`` (a browser cannot
set a header when following a link); the page then keeps it in memory. Without a valid
token ``/`` answers a tiny HTML form that asks for it. The token is compared in constant
time and never appears in a response, a log line or an exception.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

DASHBOARD = "/"
REFUSED = "missing or wrong bearer token (Authorization: Bearer <token>)"
UNAUTHORIZED = {"ok": False, "message": REFUSED, "detail": REFUSED}
LOGIN_FORM = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fsmtrader</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; margin: 3em">
<h1>fsmtrader</h1>
<p>This bot's dashboard needs its API token.</p>
<form method="get" action="/">
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Open</button>
</form></body></html>
"""


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison (a timing side channel must not reveal a prefix)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return rest.strip()
    return None


def query_token(query_string: bytes) -> str | None:
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == "token":
            return value
    return None


class BearerAuth:
    """ASGI middleware: a request without the right token gets 401 (JSON, or the form on
    ``/``) with ``WWW-Authenticate: Bearer``, and ``on_failure(path)`` counts it."""

    def __init__(self, app: ASGIApp, *, token: str, on_failure: Callable[[str], None]) -> None:
        if not token:
            raise ValueError("BearerAuth: the token is empty")
        self.app = app
        self._token = token
        self._on_failure = on_failure  # Metrics.auth_failure keeps its path labels bounded

    def __repr__(self) -> str:  # never the token
        return "BearerAuth(token=<hidden>)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        given = bearer(scope.get("headers", []))
        if path == DASHBOARD and given is None:
            given = query_token(scope.get("query_string", b""))
        if token_matches(given, self._token):
            await self.app(scope, receive, send)
            return
        self._on_failure(path)
        if path == DASHBOARD:
            await _respond(send, LOGIN_FORM, "text/html; charset=utf-8")
        else:
            await _respond(send, json.dumps(UNAUTHORIZED).encode(), "application/json")


async def _respond(send: Send, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="fsmtrader"'),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
