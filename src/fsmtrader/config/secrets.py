"""The venue's credentials: read only from the environment or a 0600 key file, never echoed.

A key in the config file is refused (files get copied, committed and pasted into issues);
the values are handed only to the exchange adapter and appear in no message.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fsmtrader.config.schema import Settings
from fsmtrader.config.sources import ENV_PREFIX
from fsmtrader.errors import ConfigError

__all__ = ["SECRET_KEYS", "credentials", "private_text", "secrets_in_file"]

SECRET_KEYS = ("api_key", "api_secret")
# (section, secret keys, the setting naming the 0600 file that may hold them instead)
SECRET_FIELDS = (
    ("exchange", SECRET_KEYS, "key_file"),
    ("api", ("token",), "token_file"),
    ("telegram", ("token",), "token_file"),
)


def secrets_in_file(file_data: Mapping[str, Any], file_path: Path | None) -> list[str]:
    """One problem per secret found in the config file (value never shown)."""
    problems = []
    for section, keys, file_key in SECRET_FIELDS:
        table = file_data.get(section)
        if not isinstance(table, Mapping):
            continue
        problems += [
            f"{section}.{key} (from {file_path}): secrets are never read from the config "
            f"file; set {ENV_PREFIX}{section.upper()}__{key.upper()} or {section}.{file_key} "
            "(a file only you can read, mode 0600)"
            for key in keys
            if key in table
        ]
    return problems


def credentials(s: Settings) -> tuple[str, str] | None:
    """The venue's key and secret: environment first, else the 0600 key file, else None.
    The values are returned only to the exchange adapter; nothing logs them."""
    ex = s.exchange
    if ex.api_key is not None and ex.api_secret is not None:
        return ex.api_key.get_secret_value(), ex.api_secret.get_secret_value()
    if ex.key_file is None:
        return None
    path = ex.key_file.expanduser()
    try:
        data = tomllib.loads(private_text(path, "exchange.key_file"))
    except tomllib.TOMLDecodeError:
        raise ConfigError(
            f"exchange.key_file: {path} is not a TOML file with api_key and api_secret"
        ) from None
    key, secret = data.get("api_key"), data.get("api_secret")
    if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
        raise ConfigError(f"exchange.key_file: {path} must define api_key and api_secret")
    return key, secret


def private_text(path: Path, setting: str) -> str:
    """The text of a secrets file only its owner can read (mode 0600); a missing, shared
    or unreadable one is refused in one line naming ``setting`` (the content never)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        raise ConfigError(f"{setting}: {path} not found") from None
    if mode & 0o077:
        raise ConfigError(
            f"{setting}: {path} has mode {mode & 0o777:04o}; it must be readable by you "
            f"only (chmod 600 {path})"
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{setting}: {path} is not a readable text file") from None
