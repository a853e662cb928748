"""Settings: one TOML file plus ``FSMTRADER_*`` environment overrides, validated at start.

Precedence, highest first: ``overrides`` (the CLI) > environment > TOML file > defaults.
Everything is checked before the engine touches an exchange, and every problem becomes one
line of a single :class:`~fsmtrader.errors.ConfigError` that names the dotted key, the bad
value, what is allowed and, when known, where the value came from. A typo must never be
silently ignored and a bad value must never be silently clamped: both cost money.

One job per module: ``sections``/``schema`` (the model), ``sources`` (where values come
from), ``load`` (``load_settings``), ``messages`` (errors as readable lines), ``env_check``
(the environment pydantic-settings checks badly), ``secrets`` (credentials) and
``live_policy`` (what real money requires).
"""

from fsmtrader.config.live_policy import live_problems
from fsmtrader.config.load import load_settings
from fsmtrader.config.schema import Settings, default_toml
from fsmtrader.config.secrets import credentials
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
)

__all__ = [
    "DemoSettings",
    "EntrySettings",
    "ErrorSettings",
    "ExchangeSettings",
    "ExitSettings",
    "HaltSettings",
    "LiveSettings",
    "MarketSettings",
    "RiskSettings",
    "RouterSettings",
    "Settings",
    "SimSettings",
    "StoreSettings",
    "TimeoutSettings",
    "credentials",
    "default_toml",
    "live_problems",
    "load_settings",
]
