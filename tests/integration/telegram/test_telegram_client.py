"""TelegramClient against the local fake Bot API (127.0.0.1, python-telegram-bot's own
requests): notifications from a real paper session's committed records, the bounded queue
(drops counted, the engine's listener never waits), RetryAfter honoured, ghosts
rate-limited, a hanging server closed within the bound, the commands (chat filter,
confirmation step, the desk's own refusals) and the token never logged."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from fsmtrader.config import load_settings
from fsmtrader.config.control_sections import TelegramSettings
from fsmtrader.control.desk import ControlDesk
from fsmtrader.control.execute import run_control
from fsmtrader.control.feed import RecordFeed
from fsmtrader.control.metrics import Metrics
from fsmtrader.control.reads import BookReader
from fsmtrader.control.telegram.client import TelegramClient, next_daily_s
from fsmtrader.control.telegram.commands import CONFIRM_TTL_S, Commands
from fsmtrader.session import PaperSession
from fsmtrader_testing.metrics_text import by, parse
from fsmtrader_testing.paper import session_toml
from fsmtrader_testing.telegram_api import FakeTelegram, running_bot_api

pytestmark = pytest.mark.timeout(60)
TOKEN = "123456:AAtelegram-test-token-never-shown"
CHATS = [111, 222]
FOREIGN = 999


@dataclass
class Book:
    session: PaperSession
    feed: RecordFeed
    audit: list[dict[str, Any]]
    desk: ControlDesk

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.audit if r["kind"] == kind]

    def push(self, records: list[dict[str, Any]]) -> float:
        """Hand records to the feed as the engine thread does; returns how long it took."""
        t0 = time.perf_counter()
        self.feed.on_committed([(i + 1, r) for i, r in enumerate(records)])  # type: ignore[misc]
        return time.perf_counter() - t0

    def serve_until(self, pred: Callable[[], bool], timeout_s: float = 10) -> None:
        """Run the desk's controls in this (the session's) thread until ``pred``."""
        end = time.monotonic() + timeout_s
        while not pred():
            self.desk.serve(lambda a, args, who: run_control(self.session, a, args, who))
            assert time.monotonic() < end, "timed out"
            time.sleep(0.01)


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Book]:
    tmp = tmp_path_factory.mktemp("tgclient")
    cfg = tmp / "c.toml"
    cfg.write_text(session_toml(seed=4))
    session = PaperSession(load_settings(cfg, env={}), tmp / "state", hours=12, speed=3000)
    try:
        session.start()
        session.run(stop_after_s=2)
        lines = (session.state_dir / "audit.jsonl").read_text().splitlines()
        yield Book(session, RecordFeed(), [json.loads(x) for x in lines], ControlDesk())
    finally:
        session.close()


@dataclass
class Bot:
    client: TelegramClient
    fake: FakeTelegram
    metrics: Metrics


@pytest.fixture
def make_bot(book: Book) -> Iterator[Callable[..., Bot]]:
    made: list[tuple[TelegramClient, Any, BookReader]] = []

    def make(**over: Any) -> Bot:
        cm = running_bot_api(TOKEN)
        fake = cm.__enter__()
        wall = over.pop("wall", time.time)
        s = TelegramSettings(enabled=True, chat_ids=CHATS, api_base_url=fake.base_url, **over)
        reader = BookReader(book.session.store.path, book.session.state_dir)
        metrics = Metrics(
            status=lambda: reader.status(book.session.clock.now_ms()),
            balance=reader.balance,
            calls=None,
            retries=None,
        )
        client = TelegramClient(
            s,
            token=TOKEN,
            feed=book.feed,
            desk=book.desk,
            reader_factory=lambda: BookReader(book.session.store.path, book.session.state_dir),
            now_ms=book.session.clock.now_ms,
            marks=dict,
            metrics=metrics,
            poll_timeout_s=2,
            send_timeout_s=2.0,
            control_timeout_s=5.0,
            wall=wall,
        )
        client.start()
        made.append((client, cm, reader))
        return Bot(client, fake, metrics)

    yield make
    for client, cm, reader in made:
        client.close(3.0)
        cm.__exit__(None, None, None)
        reader.close()


def counted(bot: Bot, kind: str, outcome: str) -> float:
    got = by(parse(bot.metrics.render()[0]), "fsmtrader_telegram_messages_total", "kind", "outcome")
    return got.get((kind, outcome), 0.0)


def asked(bot: Bot, message_id: int) -> str:
    return str(next(m["text"] for m in bot.fake.sent() if m["message_id"] == message_id))


def wait(pred: Callable[[], bool], timeout_s: float = 10) -> None:
    end = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_entry_and_exit_of_real_records_reach_every_chat(
    book: Book, make_bot: Callable[..., Bot]
) -> None:
    bot = make_bot()
    trade = book.kinds("trade")[0]
    pos = next(p for p in book.kinds("position") if p["decision_id"] == trade["decision_id"])
    book.push([r for r in book.audit if r["decision_id"] == pos["decision_id"]])
    for chat in CHATS:

        def buy(m: dict[str, Any], c: int = chat) -> bool:
            return bool(m["chat_id"] == c and "BUY" in m["text"])

        m = bot.fake.wait_sent(buy)
        assert f"{pos['qty']} @ {pos['avg_entry']}" in m["text"] and pos["decision_id"] in m["text"]
    m = bot.fake.wait_sent(lambda m: "SELL" in m["text"])
    assert trade["exit_reason"] in m["text"] and f"@ {trade['avg_exit']}" in m["text"]
    assert trade["decision_id"] in m["text"]
    wait(lambda: counted(bot, "entry", "sent") == len(CHATS))
    # only the position and the trade made messages: orders, fills, phases did not
    texts = [m["text"] for m in bot.fake.sent(CHATS[0])]
    assert len(texts) == 2 and texts[0].startswith("🟢 BUY")


def test_a_hanging_server_drops_on_a_full_queue_and_never_holds_the_engine(
    book: Book, make_bot: Callable[..., Bot]
) -> None:
    bot = make_bot(queue=10)
    bot.fake.mode("hang")
    pos = book.kinds("position")[0]
    took = [book.push([pos]) for _ in range(40)]
    assert max(took) < 0.05  # the listener only queues
    wait(lambda: counted(bot, "entry", "dropped_full") >= 40 - 10 - 1)
    assert bot.client.pending() <= 10
    t0 = time.monotonic()
    bot.client.close(3.0)
    assert time.monotonic() - t0 < 3.5  # a server that never answers does not hold close
    bot.fake.mode("ok")


def test_retry_after_is_honoured_then_the_message_goes(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    bot.fake.mode("429", retry_after=1)
    t0 = time.monotonic()
    bot.client.say("start", "fsmtrader paper started")
    wait(lambda: bot.fake.calls().get("sendMessage", 0) >= 1)
    bot.fake.mode("ok")
    m = bot.fake.wait_sent(lambda m: m["text"] == "fsmtrader paper started")
    assert time.monotonic() - t0 >= 0.9  # it waited Telegram's retry_after
    assert m["chat_id"] in CHATS
    wait(lambda: counted(bot, "start", "sent") == 2)


def test_a_message_refused_every_time_is_counted_failed(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    bot.fake.mode("500")
    bot.client.say("stop", "fsmtrader paper stopped")
    wait(lambda: counted(bot, "stop", "failed") == 2, timeout_s=15)
    assert bot.fake.calls()["sendMessage"] == 2 * bot.client.attempts
    assert not bot.fake.sent()


def test_ghost_messages_are_rate_limited(book: Book, make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(ghost_messages_per_hour=2)
    order = next(r for r in book.kinds("order") if r["state"] == "RESERVED")
    ghost = dict(order, state="FAILED_FINAL", reason="ghost:insufficient_balance")
    book.push([ghost] * 5)
    wait(lambda: counted(bot, "ghost", "sent") == 2 * len(CHATS))
    assert counted(bot, "ghost", "dropped_rate") == 3


def test_switched_off_start_stop_is_not_sent(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(notify_start_stop=False)
    bot.client.say("start", "started")
    bot.client.say("halt", "a halt said")
    bot.fake.wait_sent(lambda m: m["text"] == "a halt said")
    assert all(m["text"] != "started" for m in bot.fake.sent())


def test_reads_answer_in_the_chat_and_a_foreign_chat_is_ignored(
    book: Book, make_bot: Callable[..., Bot]
) -> None:
    bot = make_bot()
    bot.fake.message(FOREIGN, "/status")
    bot.fake.message(CHATS[0], "/profit")
    reader = BookReader(book.session.store.path, book.session.state_dir)
    profit = reader.profit()
    m = bot.fake.wait_sent(lambda m: "trades" in m["text"])
    assert m["chat_id"] == CHATS[0] and f"trades {profit['trades']}" in m["text"]
    for cmd, expect in [
        ("/status BTC/USDT", "BTC/USDT"),
        ("/trades 2", reader.trades(None, None, 1)[0]["symbol"]),
        ("/balance", "cash "),
        ("/ghosts", "ghosts "),
        ("/daily 2", "Daily summary"),
        ("/help", "/forceexit"),
        ("/nonsense", "unknown command"),
    ]:
        n = len(bot.fake.sent())
        bot.fake.message(CHATS[1], cmd)
        wait(lambda: len(bot.fake.sent()) > n)  # noqa: B023 (called at once)
        assert expect in bot.fake.sent()[-1]["text"], (cmd, bot.fake.sent()[-1]["text"])
    reader.close()
    assert all(m["chat_id"] != FOREIGN for m in bot.fake.sent())
    samples = parse(bot.metrics.render()[0])
    assert by(samples, "fsmtrader_telegram_foreign_updates_total") == {(): 1.0}


def test_controls_go_through_the_desk_and_ask_to_confirm(
    book: Book, make_bot: Callable[..., Bot]
) -> None:
    bot = make_bot()
    chat = CHATS[0]
    bot.fake.message(chat, "/stopentry")
    book.serve_until(lambda: any("stopentry" in m["text"] for m in bot.fake.sent()))
    assert "entries stopped by telegram" in bot.fake.sent()[-1]["text"]
    assert book.session.engine.entries_stopped
    bot.fake.message(chat, "/recover BTC/USDT")
    ask = bot.fake.wait_sent(lambda m: m["text"].startswith("Recover BTC/USDT"))
    buttons = ask["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["Confirm", "Cancel"]
    assert book.desk.serve(lambda *a: pytest.fail("nothing runs before Confirm")) == 0
    bot.fake.press(chat, ask["message_id"], buttons[0]["callback_data"])
    want = run_control(book.session, "recover", {"symbol": "BTC/USDT"}, "test").message
    book.serve_until(lambda: asked(bot, ask["message_id"]) == f"❌ recover: {want}")
    # the desk's own refusal, word for word, replaces the question; a second press is stale
    bot.fake.press(chat, ask["message_id"], buttons[0]["callback_data"])
    wait(lambda: any("expired" in m["text"] for m in bot.fake.sent()))
    bot.fake.message(chat, "/forceexit all")
    ask = bot.fake.wait_sent(lambda m: m["text"].startswith("Force exit all"))
    cancel = ask["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    bot.fake.press(chat, ask["message_id"], cancel)
    wait(lambda: any(m["text"].startswith("cancelled") for m in bot.fake.sent()))
    assert book.desk.serve(lambda *a: pytest.fail("a cancel runs nothing")) == 0
    bot.fake.message(chat, "/resume")
    book.serve_until(lambda: "resume" in bot.fake.sent()[-1]["text"])
    assert not book.session.engine.entries_stopped
    lines = (book.session.state_dir / "audit.jsonl").read_text().splitlines()
    controls = [r for r in map(json.loads, lines) if r["kind"] == "control"]
    assert [(r["action"], r["who"]) for r in controls if r["who"] == "telegram"] == [
        ("stopentry", "telegram"),
        ("recover", "telegram"),
        ("resume", "telegram"),
    ]


def test_the_token_is_never_logged_even_when_refused(
    book: Book, make_bot: Callable[..., Bot], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = make_bot()
    bot.fake.message(CHATS[0], "/help")
    bot.fake.wait_sent(lambda m: "/status" in m["text"])
    bot.fake.mode("500")
    bot.client.say("halt", "refused")
    wait(lambda: counted(bot, "halt", "failed") == 2, timeout_s=15)
    wrong = TelegramClient(
        TelegramSettings(enabled=True, chat_ids=CHATS, api_base_url=bot.fake.base_url),
        token=TOKEN + "x",
        feed=RecordFeed(),
        desk=book.desk,
        reader_factory=lambda: BookReader(book.session.store.path, book.session.state_dir),
        now_ms=book.session.clock.now_ms,
        marks=dict,
        metrics=None,
        poll_timeout_s=1,
    )
    wrong.start()
    wrong.say("start", "never")
    wait(lambda: "getUpdates failed: InvalidToken" in caplog.text)
    wait(lambda: "was not sent: InvalidToken" in caplog.text)
    wrong.close(3.0)
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text


def test_the_daily_summary_comes_at_its_utc_time(
    book: Book, make_bot: Callable[..., Bot], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the wall clock reads 0.5 s before 07:30 UTC
    at = datetime(2026, 1, 2, 7, 30, tzinfo=UTC).timestamp()
    start = time.time()
    bot = make_bot(daily_summary_utc="07:30", wall=lambda: at - 0.5 + (time.time() - start))
    m = bot.fake.wait_sent(lambda m: m["text"].startswith("📅 Daily summary"), timeout_s=5)
    reader = BookReader(book.session.store.path, book.session.state_dir)
    profit = reader.profit()
    reader.close()
    assert f"Total: {profit['trades']} trades" in m["text"]
    wait(lambda: counted(bot, "daily", "sent") == len(CHATS))
    assert next_daily_s("07:30", at - 0.5) == 0.5
    assert next_daily_s("07:30", at) == 86_400.0
    assert next_daily_s("00:00", at) == 16.5 * 3600


def test_a_confirmation_expires_and_a_control_without_symbol_asks_for_one(book: Book) -> None:
    now = [1000.0]
    reader = BookReader(book.session.store.path, book.session.state_dir)
    cmds = Commands(
        reader=reader,
        desk=book.desk,
        now_ms=book.session.clock.now_ms,
        marks=dict,
        clock=lambda: now[0],
    )
    try:
        usage = asyncio.run(cmds.on_text("/forceexit"))
        assert usage is not None and usage.text == "usage: /forceexit <symbol|all>"
        assert asyncio.run(cmds.on_text("hello")) is None  # not a command: no answer
        ask = asyncio.run(cmds.on_text("/recover@fsm_bot eth/usdt"))
        assert ask is not None and ask.text == "Recover ETH/USDT from ERROR?"
        now[0] += CONFIRM_TTL_S + 1
        assert "expired" in asyncio.run(cmds.on_button(ask.buttons[0][1]))
        assert book.desk.serve(lambda *a: pytest.fail("an expired confirmation runs nothing")) == 0
    finally:
        reader.close()
