"""The fake Bot API in a daemon thread with its own event loop, and the synchronous handle
a test drives it with: queue updates, read what the bot sent, make sendMessage fail."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from fsmtrader_testing.telegram_api.app import BotApiApp
from fsmtrader_testing.telegram_api.objects import JSON
from fsmtrader_testing.telegram_api.state import BotState


class FakeTelegram:
    """The test's side of one running fake Bot API (thread-safe)."""

    def __init__(
        self, base_url: str, state: BotState, api: BotApiApp, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.base_url = base_url  # the bot appends /bot<token>/<method>
        self._state = state
        self._api = api
        self._loop = loop

    def message(self, chat_id: int, text: str, *, user_id: int | None = None) -> int:
        """Queue a text message from ``user_id`` (default: the private chat's own user) in
        ``chat_id``; a leading /command carries Telegram's bot_command entity. Returns the
        update_id."""
        update_id = self._state.add_message(chat_id, text, user_id)
        self._wake()
        return update_id

    def press(self, chat_id: int, message_id: int, data: str) -> int:
        """Queue a callback_query: the user pressed an inline button carrying ``data`` under
        message ``message_id``. Returns the update_id."""
        update_id = self._state.add_press(chat_id, message_id, data)
        self._wake()
        return update_id

    def sent(self, chat_id: int | None = None) -> list[JSON]:
        """Messages the bot sent, in order: message_id, chat_id, text, reply_markup,
        parse_mode and edits (how many times editMessageText changed it; the text and
        markup shown are the latest)."""
        return self._state.sent(chat_id)

    def wait_sent(self, pred: Callable[[JSON], bool], timeout_s: float = 10) -> JSON:
        """The first sent message ``pred`` accepts, waiting for it up to ``timeout_s``
        (TimeoutError listing the texts sent otherwise)."""
        return self._state.wait_sent(pred, timeout_s)

    def calls(self) -> dict[str, int]:
        """Requests per method name as the bot spelt it (failed ones included)."""
        return self._state.calls()

    def callback_answers(self) -> dict[str, JSON]:
        """answerCallbackQuery per callback query id: its text/show_alert/url."""
        return self._state.answers()

    def mode(self, kind: str, **params: Any) -> None:
        """How sendMessage answers from now: "ok"; "429" (Too Many Requests with
        parameters.retry_after=``retry_after``); "hang" (no answer until the mode changes;
        a held request then answers as the new mode says); "500"."""
        self._state.set_mode(kind, params)
        self._wake()

    def requests_text(self) -> str:
        """Every request line and body seen, in order (the token's one legitimate place)."""
        return self._state.requests_text()

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # stopped: nothing waits any more
            self._loop.call_soon_threadsafe(self._api.wake)


async def _start(token: str) -> tuple[web.AppRunner, BotState, BotApiApp, int]:
    state = BotState(token)
    api = BotApiApp(state)
    runner = web.AppRunner(api.application(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, state, api, int(runner.addresses[0][1])


async def _stop(runner: web.AppRunner, api: BotApiApp) -> None:
    api.closing = True
    api.wake()  # long polls answer [], hung sends answer 502
    await runner.cleanup()


@contextmanager
def running_bot_api(token: str) -> Iterator[FakeTelegram]:
    """A fake Bot API for ``token`` on 127.0.0.1:<free port>; stops (within a few seconds,
    whatever clients still hold open) when the block exits."""
    if not token:
        raise ValueError("a bot token is needed")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-telegram", daemon=True)
    thread.start()
    try:
        runner, state, api, port = asyncio.run_coroutine_threadsafe(_start(token), loop).result(30)
        try:
            yield FakeTelegram(f"http://127.0.0.1:{port}", state, api, loop)
        finally:
            asyncio.run_coroutine_threadsafe(_stop(runner, api), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
