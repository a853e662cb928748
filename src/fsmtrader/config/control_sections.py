"""The settings of what watches and steers a running bot: the control plane's API, the live
table, Telegram. Kept apart from the trading sections (`sections.py`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fsmtrader.config.sections import _Section, cross

__all__ = ["LOOPBACK_HOSTS", "ApiSettings", "DisplaySettings", "TelegramSettings"]


class ApiSettings(_Section):
    """The control plane: a REST API, push stream, dashboard and metrics served by the
    bot's own process (``paper``, ``trade``). Off by default; on loopback unless
    ``allow_remote`` says otherwise. The token comes from FSMTRADER_API__TOKEN or
    ``token_file`` (mode 0600), never from this file."""

    enabled: bool = False
    host: str = "127.0.0.1"
    allow_remote: bool = False
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    token: SecretStr | None = None
    token_file: Path | None = None
    stream_queue: Annotated[int, Field(ge=10, le=100_000)] = 1000

    @field_validator("token_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """``token_file = ""`` in the file means no file (the environment gives it)."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> ApiSettings:
        if not self.allow_remote and self.host not in LOOPBACK_HOSTS:
            raise cross(
                "host",
                "must be 127.0.0.1, ::1 or localhost unless api.allow_remote = true "
                "(the API can stop and exit positions: expose it deliberately)",
                self.host,
            )
        return self


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class DisplaySettings(_Section):
    """The live status table of ``paper`` and ``trade``."""

    refresh_per_s: Annotated[float, Field(ge=0.2, le=30)] = 4.0
    hide_idle: bool = False
    hide_warmup: bool = False


class TelegramSettings(_Section):
    """Notifications and remote control over Telegram (long polling: no public address).
    The bot token comes from FSMTRADER_TELEGRAM__TOKEN or ``token_file`` (mode 0600),
    never from this file. Only ``chat_ids`` are answered; anyone else is ignored."""

    enabled: bool = False
    chat_ids: list[int] = Field(default_factory=list)
    api_base_url: str = "https://api.telegram.org"
    token: SecretStr | None = None
    token_file: Path | None = None
    daily_summary_utc: str = ""
    queue: Annotated[int, Field(ge=10, le=10_000)] = 200
    ghost_messages_per_hour: Annotated[int, Field(ge=0, le=3600)] = 6
    notify_entry: bool = True
    notify_exit: bool = True
    notify_ghost: bool = True
    notify_halt: bool = True
    notify_error: bool = True
    notify_stuck: bool = True
    notify_reconcile: bool = True
    notify_start_stop: bool = True
    notify_daily: bool = True

    @field_validator("token_file", mode="before")
    @classmethod
    def _empty_file_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("daily_summary_utc")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if value and not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
            raise PydanticCustomError("hh_mm", 'must be "HH:MM" (UTC, 00:00 .. 23:59) or ""')
        return value

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^/\s]+(/[^\s]*)?", value):
            raise PydanticCustomError(
                "url", "must be the Bot API's base URL, e.g. https://api.telegram.org"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _chats_when_enabled(self) -> TelegramSettings:
        if self.enabled and not self.chat_ids:
            raise cross(
                "chat_ids",
                "at least one chat id is needed when telegram is enabled (only those are answered)",
                self.chat_ids,
            )
        return self
