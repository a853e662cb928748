"""Where setting values come from: CLI overrides, an environment mapping, one TOML file.

``load_settings`` puts a :class:`LoadContext` in a ContextVar for the duration of one
``Settings()`` call, so each call reads its own env mapping and file, and remembers what
each source supplied (the error messages name the source of a bad value).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    TomlConfigSettingsSource,
)

from fsmtrader.errors import ConfigError, required

__all__ = ["ENV_NESTED_DELIMITER", "ENV_PREFIX", "LoadContext", "loading", "sources_for"]

ENV_PREFIX = "FSMTRADER_"
ENV_NESTED_DELIMITER = "__"


@dataclass
class LoadContext:
    """Per-call sources of ``load_settings`` (a ContextVar keeps calls independent)."""

    path: Path | None
    env: Mapping[str, str]
    overrides: Mapping[str, Any]
    skip_env: frozenset[str] = frozenset()  # env vars already reported as bad JSON
    file_data: dict[str, Any] = field(default_factory=dict)
    env_data: dict[str, Any] = field(default_factory=dict)


_CONTEXT: ContextVar[LoadContext | None] = ContextVar("fsmtrader_config_load", default=None)


@contextmanager
def loading(ctx: LoadContext) -> Iterator[None]:
    """Make ``ctx`` the sources of every ``Settings()`` built inside the block."""
    token = _CONTEXT.set(ctx)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def sources_for(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """Inside :func:`loading`: overrides > given env > TOML file; else init > env."""
    ctx = _CONTEXT.get()
    if ctx is None:
        return (init_settings, env_settings)
    sources: list[PydanticBaseSettingsSource] = [
        InitSettingsSource(settings_cls, init_kwargs=dict(ctx.overrides)),
        _MappingEnvSource(settings_cls, ctx),
    ]
    if ctx.path is not None:
        sources.append(_TomlFileSource(settings_cls, ctx))
    return tuple(sources)


class _MappingEnvSource(EnvSettingsSource):
    """The standard env source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], ctx: LoadContext) -> None:
        self._ctx = ctx
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = {k: v for k, v in self._ctx.env.items() if k not in self._ctx.skip_env}
        if self.case_sensitive:
            return env
        return {k.lower(): v for k, v in env.items()}

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        self._ctx.env_data = data
        return data


class _TomlFileSource(TomlConfigSettingsSource):
    """The standard TOML source, with errors that name the file and line."""

    def __init__(self, settings_cls: type[BaseSettings], ctx: LoadContext) -> None:
        super().__init__(settings_cls, toml_file=required(ctx.path, "the config file's path"))
        ctx.file_data = self.toml_data

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            raw = file_path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{file_path}: cannot read config file ({exc.strerror or exc})"
            ) from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{file_path}: config file is not UTF-8 text ({exc})") from exc
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file_path}: invalid TOML: {exc}") from exc
