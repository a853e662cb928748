"""The fake Bot API against the real python-telegram-bot client: what the Telegram
client's tests rely on (long polls that answer at once, offsets, kept messages, inline
buttons, 429 with retry_after, a hanging server, a wrong token) must hold for the very
library the product uses, or those tests prove nothing."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import telegram
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut

from fsmtrader_testing.telegram_api import FakeTelegram, running_bot_api

TOKEN = "123456:AAF-test-token_abcdefghijklmnopqrstu"
CHAT = 4242
T = TypeVar("T")


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with running_bot_api(TOKEN) as server:
        yield server


def with_bot(fake: FakeTelegram, body: Callable[[Bot], Awaitable[T]], token: str = TOKEN) -> T:
    """Run ``body`` with an initialised Bot pointed at the fake server."""

    async def main() -> T:
        async with Bot(token, base_url=fake.base_url + "/bot") as bot:
            return await body(bot)

    return asyncio.run(main())


def seconds(retry_after: int | dtm.timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, dtm.timedelta) else retry_after


def later(delay_s: float, fn: Callable[[], Any]) -> threading.Thread:
    thread = threading.Timer(delay_s, fn)
    thread.start()
    return thread


def test_get_me_answers_the_bot_of_the_token(fake: FakeTelegram) -> None:
    me = with_bot(fake, lambda bot: bot.get_me())
    assert (me.id, me.is_bot, me.username) == (123456, True, "fsmtrader_test_bot")
    assert fake.calls()["getMe"] == 2  # Bot.initialize() asked once, get_me() once more


def test_sent_messages_are_kept_in_order_with_their_keyboard(fake: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Confirm", callback_data="yes")]])

    async def body(bot: Bot) -> list[telegram.Message]:
        return [
            await bot.send_message(CHAT, "first", reply_markup=keyboard),
            await bot.send_message(CHAT + 1, "elsewhere"),
            await bot.send_message(CHAT, "second ✓ 0.00012345 BTC", parse_mode="HTML"),
        ]

    first, other, second = with_bot(fake, body)
    assert first.text == "first" and first.chat.id == CHAT
    assert first.reply_markup == keyboard  # the Message answered parses back to the same markup
    assert len({first.message_id, other.message_id, second.message_id}) == 3
    assert [m["text"] for m in fake.sent()] == ["first", "elsewhere", "second ✓ 0.00012345 BTC"]
    mine = fake.sent(CHAT)
    assert [m["message_id"] for m in mine] == [first.message_id, second.message_id]
    assert mine[0]["reply_markup"] == {
        "inline_keyboard": [[{"text": "Confirm", "callback_data": "yes"}]]
    }
    assert (mine[1]["parse_mode"], mine[1]["chat_id"]) == ("HTML", CHAT)
    assert fake.wait_sent(lambda m: m["text"] == "elsewhere")["chat_id"] == CHAT + 1
    with pytest.raises(TimeoutError, match="first"):
        fake.wait_sent(lambda m: m["text"] == "never", timeout_s=0.2)


def test_long_poll_answers_as_soon_as_an_update_is_queued(fake: FakeTelegram) -> None:
    async def body(bot: Bot) -> tuple[float, tuple[telegram.Update, ...], float]:
        start = time.monotonic()
        empty = await bot.get_updates(timeout=1)
        assert empty == ()
        idle_s = time.monotonic() - start
        later(0.3, lambda: fake.message(CHAT, "/status BTC/USDT", user_id=7))
        start = time.monotonic()
        updates = await bot.get_updates(timeout=20)
        return idle_s, updates, time.monotonic() - start

    idle_s, updates, waited_s = with_bot(fake, body)
    assert 0.9 <= idle_s < 3.0  # an empty poll lasts its timeout, no more
    assert 0.25 <= waited_s < 3.0  # answered when the message came, not after 20 s
    (update,) = updates
    msg = update.message
    assert msg is not None and msg.from_user is not None
    assert (msg.chat.id, msg.chat.type, msg.from_user.id, msg.text) == (
        CHAT,
        "private",
        7,
        "/status BTC/USDT",
    )
    assert msg.parse_entities(["bot_command"]) != {}  # a CommandHandler would see /status
    assert list(msg.parse_entities().values()) == ["/status"]


def test_an_offset_confirms_the_updates_before_it(fake: FakeTelegram) -> None:
    first = fake.message(CHAT, "one")
    second = fake.message(-1001234, "/help", user_id=9)
    assert second == first + 1

    async def body(bot: Bot) -> None:
        again = await bot.get_updates()
        assert [u.update_id for u in again] == [first, second]
        assert [u.update_id for u in await bot.get_updates()] == [first, second]  # unconfirmed
        group = (await bot.get_updates(offset=second))[0].message
        assert group is not None and group.chat.type == "supergroup"
        assert await bot.get_updates(offset=second + 1, timeout=0) == ()
        third = fake.message(CHAT, "three")
        assert [u.update_id for u in await bot.get_updates(timeout=0)] == [third]
        fake.message(CHAT, "four")
        assert [u.update_id for u in await bot.get_updates(limit=1)] == [third]
        assert len(await bot.get_updates(offset=-1)) == 1  # only the last one is kept

    with_bot(fake, body)


def test_a_pressed_button_is_a_callback_query_that_can_be_answered_once(
    fake: FakeTelegram,
) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Confirm", callback_data="fx:BTC")]])

    async def body(bot: Bot) -> None:
        asked = await bot.send_message(CHAT, "Force exit BTC?", reply_markup=keyboard)
        fake.press(CHAT, asked.message_id, "fx:BTC")
        (update,) = await bot.get_updates(timeout=5, allowed_updates=["message", "callback_query"])
        query = update.callback_query
        assert query is not None and query.data == "fx:BTC"
        assert query.message is not None and query.message.message_id == asked.message_id
        assert query.message.chat.id == CHAT
        assert await query.answer("done") is True
        with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
            await query.answer("twice")
        edited = await bot.edit_message_text(
            "BTC: exit sent", chat_id=CHAT, message_id=asked.message_id
        )
        assert isinstance(edited, telegram.Message) and edited.edit_date is not None
        with pytest.raises(BadRequest, match="not modified"):
            await bot.edit_message_text("BTC: exit sent", chat_id=CHAT, message_id=asked.message_id)
        with pytest.raises(BadRequest, match="not found"):
            await bot.edit_message_text("x", chat_id=CHAT, message_id=999_999)

    with_bot(fake, body)
    (kept,) = fake.sent(CHAT)
    assert (kept["text"], kept["reply_markup"], kept["edits"]) == ("BTC: exit sent", None, 1)
    assert [a["text"] for a in fake.callback_answers().values()] == ["done"]


def test_allowed_updates_leaves_other_kinds_out(fake: FakeTelegram) -> None:
    fake.press(CHAT, 1, "x")
    wanted = fake.message(CHAT, "hello")

    async def body(bot: Bot) -> None:
        updates = await bot.get_updates(allowed_updates=["message"])
        assert [u.update_id for u in updates] == [wanted]

    with_bot(fake, body)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # int retry_after
def test_429_raises_retry_after_with_the_servers_seconds_then_ok_sends(
    fake: FakeTelegram,
) -> None:
    fake.mode("429", retry_after=7)

    async def body(bot: Bot) -> None:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(CHAT, "flood")
        assert seconds(caught.value.retry_after) == 7
        fake.mode("500")
        with pytest.raises(NetworkError):
            await bot.send_message(CHAT, "broken")
        fake.mode("ok")
        await bot.send_message(CHAT, "through")

    with_bot(fake, body)
    assert [m["text"] for m in fake.sent()] == ["through"]
    assert fake.calls()["sendMessage"] == 3
    with pytest.raises(ValueError):
        fake.mode("429")  # a 429 without retry_after is not Telegram's
    with pytest.raises(ValueError):
        fake.mode("slow")


def test_a_hanging_server_times_the_send_out_and_lets_go_on_ok(fake: FakeTelegram) -> None:
    fake.mode("hang")

    async def body(bot: Bot) -> float:
        start = time.monotonic()
        with pytest.raises(TimedOut):
            await bot.send_message(CHAT, "held", read_timeout=0.5)
        took = time.monotonic() - start
        assert await bot.get_me()  # only sendMessage hangs
        fake.mode("ok")
        await bot.send_message(CHAT, "after")
        return took

    took = with_bot(fake, body)
    assert 0.4 <= took < 3.0
    # The held request reached the server, which delivers it once let go (as Telegram would).
    fake.wait_sent(lambda m: m["text"] == "after", timeout_s=5)
    assert sorted(m["text"] for m in fake.sent()) == ["after", "held"]


def test_a_wrong_token_is_unauthorized(fake: FakeTelegram) -> None:
    wrong = "123456:AAF-not-the-token"
    with pytest.raises(InvalidToken):
        with_bot(fake, lambda bot: bot.get_me(), token=wrong)
    req = urllib.request.Request(f"{fake.base_url}/bot{wrong}/getMe", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=5)
    assert caught.value.code == 401
    assert json.loads(caught.value.read()) == {
        "ok": False,
        "error_code": 401,
        "description": "Unauthorized",
    }
    assert fake.sent() == []


def test_json_bodies_are_read_like_form_bodies(fake: FakeTelegram) -> None:
    body = json.dumps({"chat_id": CHAT, "text": "json", "reply_markup": {"inline_keyboard": []}})
    req = urllib.request.Request(
        f"{fake.base_url}/bot{TOKEN}/sendMessage",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=5) as r:
        answer = json.loads(r.read())
    assert answer["ok"] is True and answer["result"]["text"] == "json"
    assert fake.sent()[0]["reply_markup"] == {"inline_keyboard": []}
    assert '"text": "json"' in fake.requests_text()


def test_requests_text_shows_every_request_with_its_token_and_body(fake: FakeTelegram) -> None:
    with_bot(fake, lambda bot: bot.send_message(CHAT, "audit me"))
    text = fake.requests_text()
    assert f"POST /bot{TOKEN}/getMe HTTP/1.1" in text
    assert f"POST /bot{TOKEN}/sendMessage HTTP/1.1" in text
    assert "text=audit+me" in text


def test_a_second_bot_polling_ends_the_first_poll_with_conflict(fake: FakeTelegram) -> None:
    """Two bot instances on one token: Telegram ends the older long poll with 409."""

    async def body(bot: Bot) -> None:
        first = asyncio.ensure_future(bot.get_updates(timeout=10))
        await asyncio.sleep(0.3)
        async with Bot(TOKEN, base_url=fake.base_url + "/bot") as other:
            second = asyncio.ensure_future(other.get_updates(timeout=1))
            with pytest.raises(Conflict):
                await asyncio.wait_for(first, 3)
            assert await second == ()

    with_bot(fake, body)


def test_leaving_the_block_stops_the_server_while_clients_wait() -> None:
    errors: list[BaseException] = []
    with running_bot_api(TOKEN) as fake:
        fake.mode("hang")

        def client() -> None:
            async def body(bot: Bot) -> None:
                await asyncio.gather(
                    bot.get_updates(timeout=30),
                    bot.send_message(CHAT, "held", read_timeout=30),
                    return_exceptions=True,
                )

            try:
                with_bot(fake, body)
            except BaseException as exc:  # reported below; a thread cannot raise into pytest
                errors.append(exc)

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while sum(fake.calls().get(m, 0) for m in ("getUpdates", "sendMessage")) < 2:
            assert time.monotonic() < deadline, fake.calls()
            time.sleep(0.02)
        start = time.monotonic()
    assert time.monotonic() - start < 4.0
    thread.join(10)
    assert not thread.is_alive() and errors == []
    with pytest.raises(OSError):
        urllib.request.urlopen(fake.base_url + f"/bot{TOKEN}/getMe", timeout=2)
