"""What the fake Bot API knows, shared between the test's thread and the server's loop
under one lock: the updates waiting for the bot, the messages it sent, the calls it made,
the raw requests and the failure mode."""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from fsmtrader_testing.telegram_api import objects
from fsmtrader_testing.telegram_api.objects import JSON

MODES = frozenset({"ok", "429", "hang", "500"})


class BotState:
    """Thread-safe; every method returns copies, never the stored dicts."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.bot = objects.bot_user(token)
        self._lock = threading.Condition()
        self._updates: list[JSON] = []  # not yet confirmed by an offset
        self._next_update_id = 1
        self._next_message_id = 1
        self._messages: dict[int, JSON] = {}  # every message in any chat, by id
        self._sent: list[int] = []  # the bot's messages, in order
        self._queries: dict[str, JSON] = {}  # callback query id -> its answer (empty: none yet)
        self._calls: Counter[str] = Counter()
        self._raw: list[str] = []
        self._mode: tuple[str, dict[str, Any]] = ("ok", {})
        self.allowed_updates: list[str] = []

    # -- the test's side -------------------------------------------------------------
    def add_message(self, chat_id: int, text: str, user_id: int | None) -> int:
        with self._lock:
            message_id = self._new_message_id()
            sender = user_id if user_id is not None else abs(chat_id)
            msg = objects.user_message(message_id, chat_id, sender, text, _now())
            self._messages[message_id] = {"chat_id": chat_id, "text": text, "message": msg}
            return self._queue({"message": msg})

    def add_press(self, chat_id: int, message_id: int, data: str) -> int:
        with self._lock:
            query_id = str(9_000_000 + self._next_update_id)
            self._queries[query_id] = {}
            known = self._messages.get(message_id)
            if known is not None and known.get("from_bot"):
                message = objects.bot_message(known, self.bot)
            else:
                message = {"message_id": message_id, "date": _now(), "chat": objects.chat(chat_id)}
            query = {
                "id": query_id,
                "from": objects.person(abs(chat_id)),
                "chat_instance": str(chat_id),
                "message": message,
                "data": data,
            }
            return self._queue({"callback_query": query})

    def sent(self, chat_id: int | None) -> list[JSON]:
        with self._lock:
            return [
                self._public(self._messages[mid])
                for mid in self._sent
                if chat_id is None or self._messages[mid]["chat_id"] == chat_id
            ]

    def wait_sent(self, pred: Callable[[JSON], bool], timeout_s: float) -> JSON:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                for mid in self._sent:
                    found = self._public(self._messages[mid])
                    if pred(found):
                        return found
                left = deadline - time.monotonic()
                if left <= 0:
                    texts = [self._messages[mid]["text"] for mid in self._sent]
                    raise TimeoutError(f"no sent message matched in {timeout_s}s; sent: {texts}")
                self._lock.wait(left)

    def calls(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    def answers(self) -> dict[str, JSON]:
        with self._lock:
            return copy.deepcopy({qid: a for qid, a in self._queries.items() if a})

    def set_mode(self, kind: str, params: dict[str, Any]) -> None:
        if kind not in MODES:
            raise ValueError(f"mode {kind!r} is not one of {sorted(MODES)}")
        if kind == "429" and int(params.get("retry_after", 0)) <= 0:
            raise ValueError("mode 429 needs retry_after=<seconds, > 0>")
        with self._lock:
            self._mode = (kind, dict(params))

    def requests_text(self) -> str:
        with self._lock:
            return "\n".join(self._raw)

    # -- the server's side -----------------------------------------------------------
    def seen(self, method: str, raw: str) -> None:
        with self._lock:
            self._calls[method] += 1
            self._raw.append(raw)

    def mode(self) -> tuple[str, dict[str, Any]]:
        with self._lock:
            return self._mode[0], dict(self._mode[1])

    def pending(self, offset: int | None, limit: int) -> list[JSON]:
        """getUpdates: an offset confirms (forgets) every earlier update; a negative one
        keeps only the last ``-offset``."""
        with self._lock:
            if offset is not None and offset < 0:
                self._updates = self._updates[offset:]
            elif offset is not None:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            allowed = self.allowed_updates
            out = [u for u in self._updates if not allowed or objects.update_kind(u) in allowed]
            return copy.deepcopy(out[:limit])

    def keep_sent(self, chat_id: int, text: str, extra: JSON) -> JSON:
        with self._lock:
            message_id = self._new_message_id()
            stored: JSON = {"chat_id": chat_id, "text": text, "from_bot": True}
            stored.update(extra)
            stored.update({"message_id": message_id, "date": _now()})
            self._messages[message_id] = stored
            self._sent.append(message_id)
            self._lock.notify_all()
            return objects.bot_message(stored, self.bot)

    def edit(self, chat_id: int, message_id: int, text: str, markup: Any) -> JSON | str:
        """The edited Message, or Telegram's refusal text."""
        with self._lock:
            stored = self._messages.get(message_id)
            if stored is None or stored["chat_id"] != chat_id:
                return "Bad Request: message to edit not found"
            if not stored.get("from_bot"):
                return "Bad Request: message can't be edited"
            if stored["text"] == text and stored.get("reply_markup") == markup:
                return (
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message"
                )
            stored.update({"text": text, "reply_markup": markup, "edit_date": _now()})
            stored["edits"] = int(stored.get("edits", 0)) + 1
            self._lock.notify_all()
            return objects.bot_message(stored, self.bot)

    def answer_query(self, query_id: str, answer: JSON) -> bool:
        with self._lock:
            if query_id not in self._queries or self._queries[query_id]:
                return False  # unknown, or answered already: Telegram refuses both
            self._queries[query_id] = dict(answer) or {"answered": True}
            return True

    def pending_count(self) -> int:
        with self._lock:
            return len(self._updates)

    # -- inside the lock -------------------------------------------------------------
    def _new_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id - 1

    def _queue(self, body: JSON) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({"update_id": update_id, **body})
        return update_id

    @staticmethod
    def _public(stored: JSON) -> JSON:
        """What sent() shows: text, chat_id, reply_markup, message_id (+ parse_mode, edits)."""
        return {
            "message_id": stored["message_id"],
            "chat_id": stored["chat_id"],
            "text": stored["text"],
            "reply_markup": copy.deepcopy(stored.get("reply_markup")),
            "parse_mode": stored.get("parse_mode"),
            "edits": int(stored.get("edits", 0)),
        }


def _now() -> int:
    return int(time.time())
