"""The whole settings tree: top-level keys, one section per ``[table]``, and what was removed.

Values come from :mod:`fsmtrader.config.sources` (inside :func:`~fsmtrader.config.load_settings`)
or, for a plain ``Settings()``, from keyword arguments and ``os.environ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from importlib import resources
from pathlib import Path, PurePath
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import Field, SecretBytes, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from fsmtrader.config.control_sections import ApiSettings, DisplaySettings, TelegramSettings
from fsmtrader.config.research_sections import BacktestSettings
from fsmtrader.config.rollout_sections import BreakerSettings, ProtectSettings
from fsmtrader.config.sections import (
    DemoSettings,
    EntrySettings,
    ErrorSettings,
    ExchangeSettings,
    ExitSettings,
    HaltSettings,
    LiveSettings,
    MarketSettings,
    RiskSettings,
    RouterSettings,
    SimSettings,
    StoreSettings,
    TimeoutSettings,
    cross,
)
from fsmtrader.config.sources import ENV_NESTED_DELIMITER, ENV_PREFIX, sources_for

__all__ = ["REMOVED_SETTINGS", "Settings", "default_toml"]

# Keys that were settings once, and what to do instead. A file or variable that still sets
# one is an unknown key like any other, but its error says why and what replaces it.
REMOVED_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "mode": (
            "the command chooses what runs: `fsmtrader demo` or `fsmtrader paper` (simulated "
            "prices and fills), `fsmtrader backtest` (a candle file), `fsmtrader trade` (live "
            "prices, simulated fills), `fsmtrader trade --live --confirm-live` (real orders)"
        ),
    }
)


class Settings(BaseSettings):
    """All settings of one engine run. Immutable: build a new one with ``load_settings``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        validate_default=True,
    )

    seed: Annotated[int, Field(ge=0)] = 42
    state_dir: Path = Path("state")
    runs_dir: Path = Path("runs")
    database_url: str = ""

    market: MarketSettings = Field(default_factory=MarketSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    entry: EntrySettings = Field(default_factory=EntrySettings)
    exit: ExitSettings = Field(default_factory=ExitSettings)
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    errors: ErrorSettings = Field(default_factory=ErrorSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    halts: HaltSettings = Field(default_factory=HaltSettings)
    breakers: BreakerSettings = Field(default_factory=BreakerSettings)
    protect: ProtectSettings = Field(default_factory=ProtectSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_not_bool(cls, value: Any) -> Any:
        """``seed = true`` is a typo, not seed 1."""
        if isinstance(value, bool):
            raise PydanticCustomError("bool_for_number", "bool given for a non-bool setting")
        return value

    @model_validator(mode="after")
    def _protect_needs_stop_orders(self) -> Settings:
        """The protective stop is a spot STOP_LOSS_LIMIT: a venue without spot stop orders
        (MEXC) would refuse every one, leaving positions unguarded."""
        if self.protect.enabled:
            on = [
                k
                for k, v in (("exchange.name", self.exchange.name), ("sim.venue", self.sim.venue))
                if v == "mexc"
            ]
            if on:
                raise cross(
                    "protect.enabled",
                    f"MEXC has no spot stop orders (its API refuses STOP_LOSS_LIMIT: "
                    f"'invalid type'; {' and '.join(k + ' = mexc' for k in on)}); "
                    "set protect.enabled = false",
                    True,
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Inside ``load_settings``: overrides > given env > TOML file; else init > env."""
        return sources_for(settings_cls, init_settings, env_settings)

    def redacted_dict(self) -> dict[str, Any]:
        """All settings as plain JSON types, for printing and run records; secrets are ``***``."""
        result = _plain(self.model_dump(mode="python"))
        if not isinstance(result, dict):
            raise TypeError(f"settings dumped to {type(result).__name__}, not a table")
        return result


def _plain(value: Any) -> Any:
    """JSON-able copy of a dumped model: secrets masked, Decimals/paths as strings."""
    if isinstance(value, SecretStr | SecretBytes):
        return "***"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal | PurePath):
        return str(value)
    if isinstance(value, Enum):
        return _plain(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def default_toml() -> str:
    """The shipped, commented example config (``fsmtrader/data/default.toml``)."""
    return resources.files("fsmtrader").joinpath("data", "default.toml").read_text(encoding="utf-8")
