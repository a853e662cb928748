"""The Telegram bot of a running session: a daemon thread with its own asyncio loop and a
python-telegram-bot ``Bot`` (no Application framework, so starting and stopping are ours
and bounded). It long-polls getUpdates for commands and sends notifications.

Never in the way of trading: the feed's listener (engine thread) only turns a record into
a note and puts it on a bounded queue; a full queue drops it and counts it. Everything
that talks to Telegram (retries, RetryAfter waits, a server that hangs) happens in this
thread. The token is in the Bot's URLs only: the loggers that print URLs are kept at
WARNING and every error shown is scrubbed of it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from fsmtrader.config.control_sections import TelegramSettings
from fsmtrader.control.desk import ControlDesk
from fsmtrader.control.feed import FeedItem, RecordFeed
from fsmtrader.control.metrics import Metrics
from fsmtrader.control.reads import BookReader
from fsmtrader.control.telegram.commands import Commands, Reply
from fsmtrader.control.telegram.messages import Note, clip, daily_summary, enabled, notification

log = logging.getLogger("fsmtrader.telegram")
QUIET_LOGGERS = ("httpx", "httpcore", "telegram", "telegram.ext", "hpack")
MAX_RETRY_AFTER_S = 60.0  # a longer flood wait gives the message up
HOUR_S = 3600.0


def retry_after_s(exc: RetryAfter) -> float:
    """Telegram's flood wait in seconds (an int or a timedelta, by PTB's settings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryAfter):
        return retry_after_s(exc) <= MAX_RETRY_AFTER_S
    return isinstance(exc, TimedOut) or (
        isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)
    )


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, RetryAfter):
        return retry_after_s(exc)
    return float(min(0.25 * 2 ** (state.attempt_number - 1), 4.0))


def next_daily_s(hh_mm: str, now_s: float) -> float:
    """Seconds from ``now_s`` (epoch) to the next ``HH:MM`` UTC."""
    hh, mm = (int(x) for x in hh_mm.split(":"))
    now = datetime.fromtimestamp(now_s, UTC)
    at = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if at <= now:
        at += timedelta(days=1)
    return (at - now).total_seconds()


class TelegramClient:
    def __init__(
        self,
        settings: TelegramSettings,
        *,
        token: str,
        feed: RecordFeed,
        desk: ControlDesk,
        reader_factory: Callable[[], BookReader],
        now_ms: Callable[[], int],
        marks: Callable[[], Mapping[str, float]],
        metrics: Metrics | None,
        poll_timeout_s: int = 10,
        send_timeout_s: float = 5.0,
        attempts: int = 4,
        control_timeout_s: float = 10.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.s = settings
        self._token = token
        self._feed, self._desk = feed, desk
        self._reader_factory, self._now_ms, self._marks = reader_factory, now_ms, marks
        self._metrics = metrics
        self.poll_timeout_s, self.send_timeout_s = poll_timeout_s, send_timeout_s
        self.attempts, self.control_timeout_s = attempts, control_timeout_s
        self._wall = wall  # the daily summary's clock (UTC wall time, as people read it)
        self._queue: deque[Note] = deque()
        self._lock = threading.Lock()
        self._ghosts: deque[float] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._listening = False
        self._sending = False
        self._closed = False
        self._drain_s = 2.0  # what close() leaves the queue to be sent in
        self.outcomes: dict[tuple[str, str], int] = {}  # what the metrics were told

    # --- any thread ----------------------------------------------------------------------
    def start(self, timeout_s: float = 5.0) -> None:
        """Start the bot's thread; returns once its loop runs (the first poll goes on in
        the background: an unreachable Telegram never stops the session starting)."""
        if self._thread is not None:
            return
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread = threading.Thread(target=self._run, name="telegram", daemon=True)
        self._thread.start()
        self._ready.wait(timeout_s)
        if not self._listening:
            self._feed.listen(self._on_items)
            self._listening = True

    def say(self, kind: str, text: str) -> None:
        """Queue a message (start/stop...); thread-safe, never blocks; honours the kind's
        switch (``notify_start_stop`` for start and stop)."""
        if enabled(kind, self.s):
            self._put(Note(kind, clip(text)))

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop polling, give the queue up to half the time (2 s at most) to be sent, then
        stop; never waits longer than ``timeout_s`` (a thread still closing its connections
        then is a daemon and ends on its own)."""
        self._closed = True  # the feed keeps its listener: from now on it does nothing
        self._drain_s = min(2.0, timeout_s / 2)
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already gone
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout_s)
        if thread.is_alive():
            log.warning("telegram: the bot's thread did not stop within %.1f s", timeout_s)
        self._thread = None

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # --- the engine thread ---------------------------------------------------------------
    def _on_items(self, items: list[FeedItem]) -> None:
        """The feed's listener: turn records into notes and queue them; returns at once."""
        if self._closed:
            return
        for item in items:
            note = notification(item.record, self.s)
            if note is not None:
                self._put(note)

    def _put(self, note: Note) -> None:
        if self._closed:
            return
        with self._lock:
            if note.kind == "ghost" and not self._ghost_allowed(time.monotonic()):
                outcome = "dropped_rate"
            elif len(self._queue) >= self.s.queue:
                outcome = "dropped_full"
            else:
                self._queue.append(note)
                outcome = ""
        if outcome:
            self._count(note.kind, outcome)
            return
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # closed: the note stays, never sent
                loop.call_soon_threadsafe(wake.set)

    def _ghost_allowed(self, now: float) -> bool:
        while self._ghosts and now - self._ghosts[0] >= HOUR_S:
            self._ghosts.popleft()
        if len(self._ghosts) >= self.s.ghost_messages_per_hour:
            return False
        self._ghosts.append(now)
        return True

    def _count(self, kind: str, outcome: str) -> None:
        with self._lock:
            self.outcomes[(kind, outcome)] = self.outcomes.get((kind, outcome), 0) + 1
        if self._metrics is not None:
            self._metrics.telegram_message(kind, outcome)

    def _scrub(self, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}".replace(self._token, "<token>")

    # --- the bot's thread ----------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop))
        except Exception as exc:  # never a traceback: it could carry a URL
            log.error("telegram: the bot stopped: %s", self._scrub(exc))
        finally:
            loop.close()

    def _bot(self) -> tuple[Bot, list[HTTPXRequest]]:
        send = HTTPXRequest(
            connection_pool_size=4,
            read_timeout=self.send_timeout_s,
            write_timeout=self.send_timeout_s,
            connect_timeout=self.send_timeout_s,
        )
        poll = HTTPXRequest(
            connection_pool_size=1,
            read_timeout=self.poll_timeout_s + 10.0,
            connect_timeout=self.send_timeout_s,
        )
        base = self.s.api_base_url
        bot = Bot(
            self._token,
            base_url=base + "/bot",
            base_file_url=base + "/file/bot",
            request=send,
            get_updates_request=poll,
        )
        return bot, [send, poll]

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        bot, requests = self._bot()
        # never Bot.initialize(): its refusal of a bad token spells the token out
        for r in requests:
            await r.initialize()
        reader: BookReader | None = None
        try:
            reader = self._reader_factory()
            commands = Commands(
                reader=reader,
                desk=self._desk,
                now_ms=self._now_ms,
                marks=self._marks,
                timeout_s=self.control_timeout_s,
            )
            self._loop = loop
            if self._queue:
                self._wake.set()
            self._ready.set()
            await self._serve(bot, commands, reader)
        finally:
            self._loop = None
            self._ready.set()
            if reader is not None:
                reader.close()
            for r in requests:
                try:
                    await asyncio.wait_for(r.shutdown(), 1.0)
                except (TimeoutError, Exception) as exc:
                    log.warning("telegram: closing the connection: %s", self._scrub(exc))

    async def _serve(self, bot: Bot, commands: Commands, reader: BookReader) -> None:
        stop = self._stop
        if stop is None:  # _run sets it before serving: a bug, even under python -O
            raise RuntimeError("telegram: serving before the loop was set up")
        sender = asyncio.create_task(self._sender(bot))
        others = [asyncio.create_task(self._poller(bot, commands))]
        if self.s.daily_summary_utc and self.s.notify_daily:
            others.append(asyncio.create_task(self._daily(reader)))
        if not self._closed:
            await stop.wait()
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        with contextlib.suppress(TimeoutError):  # the last ones (the stop notice)
            await asyncio.wait_for(self._drained(), self._drain_s)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)

    async def _drained(self) -> None:
        while self.pending() or self._sending:
            await asyncio.sleep(0.02)

    def _pop(self) -> Note | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    async def _sender(self, bot: Bot) -> None:
        wake = self._wake
        if wake is None:  # _run sets it before sending: a bug, even under python -O
            raise RuntimeError("telegram: sending before the loop was set up")
        while True:
            await wake.wait()
            wake.clear()
            while (note := self._pop()) is not None:
                self._sending = True
                try:
                    for chat in self.s.chat_ids:
                        ok = await self._send(bot, chat, note.text)
                        self._count(note.kind, "sent" if ok else "failed")
                finally:
                    self._sending = False

    async def _send(self, bot: Bot, chat: int, text: str, markup: Any = None) -> bool:
        """One message, retried (Telegram's RetryAfter honoured); False once it gives up."""
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.attempts),
                wait=_wait,
                retry=retry_if_exception(_retryable),
                reraise=True,
            ):
                with attempt:
                    await bot.send_message(chat, text, reply_markup=markup)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("telegram: a message to chat %s was not sent: %s", chat, self._scrub(exc))
            return False
        return True

    async def _poller(self, bot: Bot, commands: Commands) -> None:
        offset: int | None = None
        pause = 0.5
        try:  # a webhook left set would make every getUpdates a 409 Conflict
            await bot.delete_webhook()
        except TelegramError as exc:
            log.warning("telegram: deleteWebhook failed: %s", self._scrub(exc))
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset,
                    timeout=self.poll_timeout_s,
                    allowed_updates=["message", "callback_query"],
                )
                pause = 0.5
            except TelegramError as exc:
                log.warning("telegram: getUpdates failed: %s", self._scrub(exc))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
                continue
            for update in updates:
                offset = update.update_id + 1
                try:
                    await self._on_update(bot, commands, update)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("telegram: an update was not handled: %s", self._scrub(exc))

    async def _on_update(self, bot: Bot, commands: Commands, update: Update) -> None:
        chat = update.effective_chat
        if chat is None or chat.id not in self.s.chat_ids:
            if self._metrics is not None:
                self._metrics.telegram_foreign()
            with self._lock:
                self.outcomes[("foreign", "ignored")] = (
                    self.outcomes.get(("foreign", "ignored"), 0) + 1
                )
            return
        cq = update.callback_query
        if cq is not None:
            try:  # a stale query id is refused: the press is still handled
                await bot.answer_callback_query(cq.id)
            except TelegramError as exc:
                log.warning("telegram: answerCallbackQuery failed: %s", self._scrub(exc))
            text = await commands.on_button(cq.data or "")
            if cq.message is not None:
                await bot.edit_message_text(
                    clip(text), chat_id=chat.id, message_id=cq.message.message_id
                )
            return
        msg = update.effective_message
        if msg is None or not msg.text:
            return
        reply = await self._answer(commands, msg.text)
        if reply is not None:
            ok = await self._send(bot, chat.id, reply.text, _keyboard(reply))
            self._count("reply", "sent" if ok else "failed")

    async def _answer(self, commands: Commands, text: str) -> Reply | None:
        try:
            return await commands.on_text(text)
        except Exception as exc:  # a read failed (a locked or missing database...)
            log.warning("telegram: command %r failed: %s", text[:40], self._scrub(exc))
            return Reply(f"could not answer now ({type(exc).__name__})")

    async def _daily(self, reader: BookReader) -> None:
        while True:
            await asyncio.sleep(next_daily_s(self.s.daily_summary_utc, self._wall()))
            try:
                note = daily_summary(reader.daily(2, self._now_ms()), reader.profit())
            except Exception as exc:
                log.warning("telegram: daily summary not read: %s", self._scrub(exc))
            else:
                self._put(note)
            await asyncio.sleep(1.0)


def _keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in reply.buttons]]
    )
