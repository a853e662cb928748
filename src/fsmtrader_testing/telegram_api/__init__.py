"""A local fake of Telegram's Bot API (HTTP on 127.0.0.1) for tests of the Telegram
client: python-telegram-bot's ``Bot(token, base_url=fake.base_url + "/bot")`` talks to it
as to api.telegram.org, and the test queues updates and reads what the bot sent."""

from fsmtrader_testing.telegram_api.server import FakeTelegram, running_bot_api

__all__ = ["FakeTelegram", "running_bot_api"]
