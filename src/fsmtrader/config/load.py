"""``load_settings``: every source read, everything validated, every problem reported at once.

Precedence, highest first: ``overrides`` (the CLI) > environment > TOML file > defaults.
A typo must never be silently ignored and a bad value must never be silently clamped:
both cost money. So nothing stops at the first problem; the ConfigError lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from fsmtrader.config.env_check import check_env_json, unknown_env
from fsmtrader.config.messages import format_errors
from fsmtrader.config.schema import Settings
from fsmtrader.config.secrets import secrets_in_file
from fsmtrader.config.sources import LoadContext, loading
from fsmtrader.errors import ConfigError

__all__ = ["load_settings"]


def load_settings(
    path: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load and validate settings; raise :class:`ConfigError` listing every problem.

    ``path`` is the TOML file (None: defaults + env only); ``env`` defaults to
    ``os.environ``; ``overrides`` is a nested dict above everything (the CLI's flags).
    """
    file_path = Path(path).expanduser() if path is not None else None
    if file_path is not None:
        if not file_path.exists():
            raise ConfigError(f"{path}: config file not found")
        if not file_path.is_file():
            raise ConfigError(f"{path}: config file is not a regular file")
    ctx = LoadContext(
        path=file_path,
        env=os.environ if env is None else env,
        overrides=overrides or {},
    )
    # Bad JSON in an env var would abort pydantic-settings with a vague message; report it
    # ourselves, leave the variable out, and still validate everything else.
    env_problems = check_env_json(ctx.env)
    ctx.skip_env = frozenset(env_problems)
    problems = unknown_env(ctx.env) + list(env_problems.values())
    settings: Settings | None = None
    try:
        with loading(ctx):
            settings = Settings()
    except ValidationError as exc:
        problems.extend(format_errors(exc, ctx))
    except SettingsError as exc:  # pragma: no cover - check_env_json catches these first
        problems.append(f"environment: {exc}")
    problems.extend(secrets_in_file(ctx.file_data, file_path))
    if problems or settings is None:
        raise ConfigError("\n".join(problems))
    return settings
