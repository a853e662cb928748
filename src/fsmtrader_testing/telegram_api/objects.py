"""Bot API objects as Telegram writes them (User, Chat, Message, Update, CallbackQuery):
the fields python-telegram-bot needs to build its own objects, and the ``bot_command``
entity its CommandHandler looks for."""

from __future__ import annotations

import json
from typing import Any

JSON = dict[str, Any]

# Form fields python-telegram-bot sends as plain strings (everything else is JSON-encoded).
STRING_FIELDS = frozenset(
    {
        "text",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "url",
        "language_code",
        "business_connection_id",
        "message_effect_id",
        "caption",
        "secret_token",
        "ip_address",
    }
)


def decode_form(fields: dict[str, str]) -> JSON:
    """A form body as python-telegram-bot writes it: strings as they are, other values as
    JSON (``chat_id=42``, ``reply_markup={...}``, ``allowed_updates=[...]``)."""
    out: JSON = {}
    for key, raw in fields.items():
        if key in STRING_FIELDS:
            out[key] = raw
            continue
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw  # "@channelname" and other bare strings
    return out


def bot_user(token: str) -> JSON:
    """The bot itself, as getMe answers; its id is the token's numeric prefix like Telegram's."""
    prefix = token.split(":", 1)[0]
    return {
        "id": int(prefix) if prefix.isdigit() else 1,
        "is_bot": True,
        "first_name": "fsmtrader test bot",
        "username": "fsmtrader_test_bot",
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def person(user_id: int) -> JSON:
    return {"id": user_id, "is_bot": False, "first_name": "Tester", "username": f"tester{user_id}"}


def chat(chat_id: int) -> JSON:
    """A private chat for a positive id, a (super)group for a negative one, as Telegram
    numbers them."""
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Tester"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": f"group {chat_id}"}


def utf16_len(text: str) -> int:
    """Entity offsets and lengths count UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[JSON]:
    """A ``/command`` at the start of the text is a bot_command entity, as Telegram marks it."""
    if not text.startswith("/"):
        return []
    word = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(word)}]


def user_message(message_id: int, chat_id: int, user_id: int, text: str, date: int) -> JSON:
    msg: JSON = {
        "message_id": message_id,
        "date": date,
        "chat": chat(chat_id),
        "from": person(user_id),
        "text": text,
    }
    entities = command_entities(text)
    if entities:
        msg["entities"] = entities
    return msg


def bot_message(sent: JSON, bot: JSON) -> JSON:
    """The Message the bot API answers for a message the bot sent (or edited)."""
    msg: JSON = {
        "message_id": sent["message_id"],
        "date": sent["date"],
        "chat": chat(int(sent["chat_id"])),
        "from": bot,
        "text": sent["text"],
    }
    if sent.get("reply_markup"):
        msg["reply_markup"] = sent["reply_markup"]
    if sent.get("edit_date"):
        msg["edit_date"] = sent["edit_date"]
    return msg


def update_kind(update: JSON) -> str:
    """The update's type ("message", "callback_query", ...): its one key besides update_id."""
    return next(key for key in update if key != "update_id")
