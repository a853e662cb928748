"""The API's bearer token: from the environment or a 0600 file only, never the config file,
never echoed (the same rule as the venue's keys)."""

from __future__ import annotations

from fsmtrader.config import Settings
from fsmtrader.config.secrets import private_text
from fsmtrader.config.sources import ENV_PREFIX
from fsmtrader.errors import ConfigError

MIN_LENGTH = 16


def api_token(s: Settings) -> str | None:
    """The token: FSMTRADER_API__TOKEN first, else ``api.token_file``; None when neither."""
    api = s.api
    if api.token is not None:
        token = api.token.get_secret_value().strip()
        where = f"{ENV_PREFIX}API__TOKEN"
    elif api.token_file is not None:
        token = private_text(api.token_file.expanduser(), "api.token_file").strip()
        where = "api.token_file"
    else:
        return None
    if len(token) < MIN_LENGTH:
        raise ConfigError(
            f"{where}: the API token must be at least {MIN_LENGTH} characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return token


def require_token(s: Settings) -> str:
    """The token, or the one-line reason the API cannot start without it."""
    token = api_token(s)
    if token is None:
        raise ConfigError(
            f"api.enabled: the API needs a token; set {ENV_PREFIX}API__TOKEN or "
            "api.token_file (a file only you can read, mode 0600)"
        )
    return token


def telegram_token(s: Settings) -> str:
    """The Telegram bot token: FSMTRADER_TELEGRAM__TOKEN first, else
    ``telegram.token_file``; a one-line refusal when neither (never the value)."""
    tg = s.telegram
    if tg.token is not None:
        token = tg.token.get_secret_value().strip()
    elif tg.token_file is not None:
        token = private_text(tg.token_file.expanduser(), "telegram.token_file").strip()
    else:
        token = ""
    if not token:
        raise ConfigError(
            f"telegram.enabled: Telegram needs the bot's token; set {ENV_PREFIX}TELEGRAM__TOKEN "
            "or telegram.token_file (a file only you can read, mode 0600)"
        )
    return token
