"""The aiohttp side: ``/bot<TOKEN>/<method>`` with form, multipart, JSON or query
parameters, answered ``{"ok": true, "result": ...}`` or Telegram's error shape. Runs in
the server's own loop; the test's thread wakes it through :meth:`BotApiApp.wake`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from fsmtrader_testing.telegram_api.objects import JSON, decode_form
from fsmtrader_testing.telegram_api.state import BotState

MAX_POLL_S = 50.0  # Telegram's own cap on a long poll
Handler = Callable[[JSON], Awaitable[web.Response]]


def ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def error(code: int, description: str, parameters: JSON | None = None) -> web.Response:
    body: JSON = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


class BotApiApp:
    """One fake bot: its state plus the loop-side waits (long polls, hung sends)."""

    def __init__(self, state: BotState) -> None:
        self.state = state
        self.closing = False
        self._changed = asyncio.Event()  # set on every new update / mode change / close
        self._poll_generation = 0
        self._methods: dict[str, Handler] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "answercallbackquery": self._answer_callback_query,
            "deletewebhook": self._true,
            "setmycommands": self._true,
            "deletemycommands": self._true,
            "close": self._true,
            "logout": self._true,
            "getwebhookinfo": self._webhook_info,
        }

    def application(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/{bot_token}/{method}", self._dispatch)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    def wake(self) -> None:
        """Loop thread only: every waiting long poll and hung send looks again."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, timeout_s: float) -> None:
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=max(timeout_s, 0.0))

    async def _not_found(self, request: web.Request) -> web.Response:
        self.state.seen("?", await _raw(request))
        return error(404, "Not Found")

    async def _dispatch(self, request: web.Request) -> web.Response:
        raw = await _raw(request)
        name = request.match_info["method"]
        self.state.seen(name, raw)
        bot_token = request.match_info["bot_token"]
        if not bot_token.startswith("bot"):
            return error(404, "Not Found")
        if bot_token[3:] != self.state.token:
            return error(401, "Unauthorized")
        handler = self._methods.get(name.lower())
        if handler is None:
            return error(404, "Not Found: method not found")
        try:
            params = await _params(request)
        except ValueError as exc:
            return error(400, f"Bad Request: {exc}")
        return await handler(params)

    async def _true(self, params: JSON) -> web.Response:
        return ok(True)

    async def _get_me(self, params: JSON) -> web.Response:
        return ok(self.state.bot)

    async def _webhook_info(self, params: JSON) -> web.Response:
        return ok(
            {
                "url": "",
                "has_custom_certificate": False,
                "pending_update_count": self.state.pending_count(),
            }
        )

    async def _get_updates(self, params: JSON) -> web.Response:
        """Long poll: answers once an update is there, else after ``timeout`` seconds; a
        newer getUpdates ends an older one with 409, as Telegram does."""
        offset = _opt_int(params, "offset")
        limit = min(max(_opt_int(params, "limit") or 100, 1), 100)
        timeout_s = min(float(params.get("timeout") or 0), MAX_POLL_S)
        if isinstance(params.get("allowed_updates"), list):
            self.state.allowed_updates = [str(k) for k in params["allowed_updates"]]
        self._poll_generation += 1
        mine = self._poll_generation
        self.wake()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            updates = self.state.pending(offset, limit)
            left = deadline - asyncio.get_running_loop().time()
            if updates or left <= 0 or self.closing:
                return ok(updates)
            await self._wait_change(left)
            if mine != self._poll_generation:
                return error(
                    409,
                    "Conflict: terminated by other getUpdates request; make "
                    "sure that only one bot instance is running",
                )

    async def _send_message(self, params: JSON) -> web.Response:
        failure = await self._failure_mode()
        if failure is not None:
            return failure
        chat_id, text = params.get("chat_id"), params.get("text")
        if not isinstance(chat_id, int):
            return error(400, "Bad Request: chat not found")
        if not isinstance(text, str) or not text.strip():
            return error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return error(400, "Bad Request: message is too long")
        extra = {"reply_markup": _markup(params), "parse_mode": params.get("parse_mode")}
        return ok(self.state.keep_sent(chat_id, text, extra))

    async def _failure_mode(self) -> web.Response | None:
        """sendMessage under mode 429/500 answers that error; under hang it waits until
        the mode changes back (or the server closes)."""
        while True:
            kind, extra = self.state.mode()
            if kind == "429":
                retry = int(extra["retry_after"])
                return error(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
            if kind == "500":
                return error(500, "Internal Server Error")
            if kind != "hang":
                return None
            if self.closing:
                return error(502, "Bad Gateway")
            await self._wait_change(MAX_POLL_S)

    async def _edit_message_text(self, params: JSON) -> web.Response:
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        text = params.get("text")
        if "inline_message_id" in params:
            return error(400, "Bad Request: MESSAGE_ID_INVALID")
        if not isinstance(chat_id, int) or not isinstance(message_id, int):
            return error(400, "Bad Request: message to edit not found")
        if not isinstance(text, str) or not text.strip():
            return error(400, "Bad Request: message text is empty")
        result = self.state.edit(chat_id, message_id, text, _markup(params))
        return error(400, result) if isinstance(result, str) else ok(result)

    async def _answer_callback_query(self, params: JSON) -> web.Response:
        query_id = params.get("callback_query_id")
        answer: JSON = {k: params[k] for k in ("text", "show_alert", "url") if k in params}
        if not isinstance(query_id, str) or not self.state.answer_query(query_id, answer):
            return error(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        return ok(True)


async def _raw(request: web.Request) -> str:
    """The request line and body, as a log of everything the bot sent."""
    body = await request.read()
    version = f"{request.version.major}.{request.version.minor}"
    line = f"{request.method} {request.path_qs} HTTP/{version}"
    return f"{line}\n{body.decode('utf-8', 'replace')}"


async def _params(request: web.Request) -> JSON:
    params: JSON = decode_form(dict(request.query))
    if request.content_type == "application/json":
        body = await request.read()
        if body:
            loaded = json.loads(body)
            if not isinstance(loaded, dict):
                raise ValueError("the JSON body is not an object")
            params.update(loaded)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        params.update(decode_form({k: v for k, v in form.items() if isinstance(v, str)}))
    return params


def _opt_int(params: JSON, key: str) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    return int(value)


def _markup(params: JSON) -> Any:
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        return json.loads(markup)
    return markup
