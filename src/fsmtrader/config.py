"""Settings: one TOML file plus ``FSMTRADER_*`` environment overrides, validated at start.

Precedence, highest first: ``overrides`` (the CLI) > environment > TOML file > defaults.
Everything is checked before the engine touches an exchange, and every problem becomes one
line of a single :class:`~fsmtrader.errors.ConfigError` that names the dotted key, the bad
value, what is allowed and, when known, where the value came from. A typo must never be
silently ignored and a bad value must never be silently clamped: both cost money.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from importlib import resources
from itertools import pairwise
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretBytes,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from fsmtrader.errors import ConfigError

__all__ = [
    "ENV_NESTED_DELIMITER",
    "ENV_PREFIX",
    "DemoSettings",
    "EntrySettings",
    "ErrorSettings",
    "ExitSettings",
    "MarketSettings",
    "RiskSettings",
    "RouterSettings",
    "Settings",
    "SimSettings",
    "TimeoutSettings",
    "default_toml",
    "load_settings",
]

ENV_PREFIX = "FSMTRADER_"
ENV_NESTED_DELIMITER = "__"

_SYMBOL_RE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+$")
_QUOTE_RE = re.compile(r"^[A-Z0-9]+$")

_CROSS = "cross_field"  # error type of our cross-field rules; ctx["field"] names the key


def _cross(field_name: str, message: str, got: Any) -> PydanticCustomError:
    """A cross-field error pinned to ``field_name`` (a model validator only knows the section)."""
    return PydanticCustomError(
        _CROSS, "{field}: {message}", {"field": field_name, "message": message, "got": got}
    )


def _check_non_decreasing(values: list[float]) -> list[float]:
    """Ladders escalate: each step must be at least as aggressive as the one before it."""
    if any(b < a for a, b in pairwise(values)):
        raise PydanticCustomError("non_decreasing", "must be non-decreasing")
    return values


class _Section(BaseModel):
    """Common config of every section: immutable, no unknown keys, no NaN/inf."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Pydantic would read ``true`` as 1; for a number that is a typo, not a value."""
        name = info.field_name
        if name is None:
            return value
        annotation = cls.model_fields[name].annotation
        if annotation is bool:
            return value
        items = value if isinstance(value, list) else [value]
        if any(isinstance(item, bool) for item in items):
            raise PydanticCustomError("bool_for_number", "bool given for a non-bool setting")
        return value


class MarketSettings(_Section):
    """What is traded, and the simulated starting wallet."""

    quote: str = "USDT"
    symbols: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"]
    )
    starting_balance: Annotated[Decimal, Field(gt=0)] = Decimal("1000")

    @field_validator("quote")
    @classmethod
    def _quote_upper(cls, value: str) -> str:
        """Exchanges spell assets upper-case; a lower-case quote would match nothing."""
        if not _QUOTE_RE.fullmatch(value):
            raise PydanticCustomError("quote_format", "must be an upper-case asset code")
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols_format(cls, value: list[str]) -> list[str]:
        """Unified ``BASE/QUOTE`` form, once each: a duplicate would double the exposure."""
        for symbol in value:
            if not _SYMBOL_RE.fullmatch(symbol):
                raise PydanticCustomError(
                    "symbol_format",
                    "each symbol must look like 'BASE/QUOTE' in upper case, "
                    "e.g. 'BTC/USDT' (bad: {symbol})",
                    {"symbol": repr(symbol)},
                )
        dupes = sorted({s for s in value if value.count(s) > 1})
        if dupes:
            raise PydanticCustomError(
                "symbol_dupes",
                "must not contain duplicates (duplicated: {dupes})",
                {"dupes": ", ".join(dupes)},
            )
        return value

    @model_validator(mode="after")
    def _symbols_in_quote(self) -> MarketSettings:
        """Balances and sizes are in ``quote``; a symbol in another quote cannot be sized."""
        wrong = [s for s in self.symbols if s.split("/")[1] != self.quote]
        if wrong:
            raise _cross(
                "symbols",
                f"every symbol's quote must equal market.quote {self.quote!r} "
                f"(bad: {', '.join(wrong)})",
                self.symbols,
            )
        return self


class RiskSettings(_Section):
    """How much money one trade and all open trades together may use (in quote)."""

    position_size: Annotated[Decimal, Field(gt=0)] = Decimal("25")
    max_open_positions: Annotated[int, Field(ge=1, le=100)] = 3
    max_total_exposure: Annotated[Decimal, Field(gt=0)] = Decimal("75")
    # Fee assumed when sizing a buy's reservation on a venue whose markets do not say
    # their fees (Binance's and MEXC's spot taker fee is 10 bps before discounts).
    reserve_fee_bps: Annotated[float, Field(ge=0, le=1000)] = 10.0

    @model_validator(mode="after")
    def _exposure_fits_a_trade(self) -> RiskSettings:
        """An exposure cap below one position would block every entry without saying why."""
        if self.max_total_exposure < self.position_size:
            raise _cross(
                "max_total_exposure",
                f"must be >= risk.position_size ({self.position_size})",
                self.max_total_exposure,
            )
        return self


class EntrySettings(_Section):
    """When a dip is bought, and how hard the buy may chase the price."""

    drop_trigger_pct: Annotated[float, Field(ge=0.1, le=50)] = 3.0
    anchor_window_min: Annotated[int, Field(ge=1, le=10080)] = 60
    max_spread_bps: Annotated[float, Field(ge=0, le=1000)] = 30.0
    min_volume: Annotated[float, Field(ge=0)] = 0.0
    sma_filter: bool = False
    sma_window_min: Annotated[int, Field(ge=2, le=10080)] = 240
    entry_block_cooldown_s: Annotated[float, Field(ge=60)] = 60.0
    buy_escalation_bps: Annotated[
        list[Annotated[float, Field(ge=0)]], Field(min_length=1, max_length=10)
    ] = Field(default_factory=lambda: [0.0, 10.0, 25.0])
    max_entry_slippage_bps: Annotated[float, Field(ge=0, le=1000)] = 50.0

    _ladder = field_validator("buy_escalation_bps")(_check_non_decreasing)

    @model_validator(mode="after")
    def _ladder_within_slippage(self) -> EntrySettings:
        """The slippage cap is the hard limit; an escalation step beyond it could never fill."""
        over = [s for s in self.buy_escalation_bps if s > self.max_entry_slippage_bps]
        if over:
            raise _cross(
                "buy_escalation_bps",
                f"every step must be <= entry.max_entry_slippage_bps "
                f"({_show(self.max_entry_slippage_bps)})",
                self.buy_escalation_bps,
            )
        return self


class ExitSettings(_Section):
    """When a position is sold, and how the sell ladder walks down the book."""

    take_profit_pct: Annotated[float, Field(ge=0.05, le=100)] = 2.0
    stop_loss_pct: Annotated[float, Field(ge=0.05, le=50)] = 3.0
    trailing_activation_pct: Annotated[float, Field(ge=0, le=100)] = 1.0
    trailing_distance_pct: Annotated[float, Field(ge=0.01, le=50)] = 0.5
    max_hold_min: Annotated[float, Field(ge=1, le=100000)] = 120.0
    exit_ladder_bps: Annotated[
        list[Annotated[float, Field(ge=0)]], Field(min_length=1, max_length=20)
    ] = Field(default_factory=lambda: [0.0, 10.0, 25.0, 50.0, 100.0, 200.0])
    max_exit_slippage_bps: Annotated[float, Field(ge=0, le=5000)] = 500.0
    never_market_sells: bool = True
    flash_crash_guard_pct: Annotated[float, Field(ge=1, le=100)] = 10.0
    cooldown_s: Annotated[float, Field(ge=0, le=86400)] = 900.0

    _ladder = field_validator("exit_ladder_bps")(_check_non_decreasing)

    @model_validator(mode="after")
    def _consistent(self) -> ExitSettings:
        """Rules between exit knobs; each would otherwise make an exit path unreachable."""
        if self.trailing_activation_pct > 0 and (
            self.trailing_distance_pct >= self.trailing_activation_pct
        ):
            raise _cross(
                "trailing_distance_pct",
                f"must be < exit.trailing_activation_pct "
                f"({_show(self.trailing_activation_pct)}) while trailing is on "
                f"(set trailing_activation_pct = 0 to turn it off)",
                self.trailing_distance_pct,
            )
        over = [s for s in self.exit_ladder_bps if s > self.max_exit_slippage_bps]
        if over:
            raise _cross(
                "exit_ladder_bps",
                f"every step must be <= exit.max_exit_slippage_bps "
                f"({_show(self.max_exit_slippage_bps)})",
                self.exit_ladder_bps,
            )
        if self.flash_crash_guard_pct <= self.stop_loss_pct:
            raise _cross(
                "flash_crash_guard_pct",
                f"must be > exit.stop_loss_pct ({_show(self.stop_loss_pct)})",
                self.flash_crash_guard_pct,
            )
        return self


class TimeoutSettings(_Section):
    """How long an order or a state may take before the engine acts on it."""

    buy_fill_timeout_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    partial_fill_stuck_s: Annotated[float, Field(ge=1, le=3600)] = 10.0
    sell_fill_timeout_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    exit_ioc_ttl_ms: Annotated[int, Field(ge=50, le=60000)] = 500
    warmup_timeout_s: Annotated[float, Field(ge=1, le=86400)] = 600.0
    stuck_state_s: Annotated[float, Field(ge=10, le=86400)] = 600.0

    @model_validator(mode="after")
    def _partial_before_timeout(self) -> TimeoutSettings:
        """A stuck partial fill must be noticed before the whole buy times out."""
        if self.partial_fill_stuck_s >= self.buy_fill_timeout_s:
            raise _cross(
                "partial_fill_stuck_s",
                f"must be < timeouts.buy_fill_timeout_s ({_show(self.buy_fill_timeout_s)})",
                self.partial_fill_stuck_s,
            )
        return self


class RouterSettings(_Section):
    """The order router: retries, time in force, and its own slippage guard."""

    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    backoff_ms: Annotated[int, Field(ge=10, le=60000)] = 400
    time_in_force: Literal["IOC", "GTC"] = "IOC"
    slippage_guard_bps: Annotated[float, Field(ge=0, le=1000)] = 20.0
    idempotency_expiry_s: Annotated[float, Field(ge=1, le=86400)] = 300.0


class ErrorSettings(_Section):
    """Back-off after exchange errors, and when to give up and halt."""

    backoff_base_s: Annotated[float, Field(ge=0.1, le=3600)] = 10.0
    backoff_max_s: float = 300.0  # >= backoff_base_s (>= 0.1), checked below
    max_consecutive_errors: Annotated[int, Field(ge=1, le=1000)] = 5

    @model_validator(mode="after")
    def _max_above_base(self) -> ErrorSettings:
        """The cap on an exponential back-off cannot be below its first step."""
        if self.backoff_max_s < self.backoff_base_s:
            raise _cross(
                "backoff_max_s",
                f"must be >= errors.backoff_base_s ({_show(self.backoff_base_s)})",
                self.backoff_max_s,
            )
        return self


class ExchangeSettings(_Section):
    """The venue for live trading (and for live prices in paper mode). Keys are read only
    from the environment (FSMTRADER_EXCHANGE__API_KEY, FSMTRADER_EXCHANGE__API_SECRET) or
    from ``key_file`` (mode 0600) — never from the config file."""

    name: Literal["binance", "mexc"] = "binance"
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    key_file: Path | None = None
    base_url: str = ""
    timeout_ms: Annotated[int, Field(ge=500, le=120000)] = 10000
    poll_s: Annotated[float, Field(ge=0.05, le=60)] = 1.0

    @field_validator("key_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """``key_file = ""`` in the file means no key file, not the current directory."""
        return None if value == "" else value

    @field_validator("base_url")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        """Keys are signed into every request: only the real venue or a server on this
        machine (``fsmtrader sim-server``) may receive them."""
        if value and not re.fullmatch(
            r"https?://(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?/?", value
        ):
            raise PydanticCustomError(
                "loopback_only",
                "must be empty (the real venue) or http://127.0.0.1:PORT (a local server)",
            )
        return value.rstrip("/")


class LiveSettings(_Section):
    """Limits that apply only with ``trade --live`` (real money); checked at start."""

    max_total_exposure: Annotated[Decimal, Field(gt=0)] = Decimal("100")
    max_position_size: Annotated[Decimal, Field(gt=0)] = Decimal("50")


class HaltSettings(_Section):
    """When the bot stops opening positions by itself (it keeps managing open ones)."""

    on_reconcile_mismatch: bool = True
    on_order_race: bool = True


class StoreSettings(_Section):
    """Durability of the state database (paper and live sessions)."""

    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"


class SimSettings(_Section):
    """The simulated exchange: fees, spread and order-book depth (paper and backtest)."""

    maker_fee_bps: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("10")
    taker_fee_bps: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("10")
    spread_bps: Annotated[Decimal, Field(ge=0, le=500)] = Decimal("5")
    depth_quote: Annotated[Decimal, Field(gt=0)] = Decimal("2000")
    depth_levels: Annotated[int, Field(ge=1, le=50)] = 5
    level_step_bps: Annotated[Decimal, Field(ge=0, le=500)] = Decimal("5")


class DemoSettings(_Section):
    """The ``demo`` command: how much simulated time, and how fast to play it."""

    hours: Annotated[float, Field(ge=0.1, le=720)] = 6.0
    speed: Annotated[float, Field(ge=0)] = 0.0


@dataclass
class _LoadContext:
    """Per-call sources of :func:`load_settings` (a ContextVar keeps calls independent)."""

    path: Path | None
    env: Mapping[str, str]
    overrides: Mapping[str, Any]
    skip_env: frozenset[str] = frozenset()  # env vars already reported as bad JSON
    file_data: dict[str, Any] = field(default_factory=dict)
    env_data: dict[str, Any] = field(default_factory=dict)


_CONTEXT: ContextVar[_LoadContext | None] = ContextVar("fsmtrader_config_load", default=None)


class Settings(BaseSettings):
    """All settings of one engine run. Immutable: build a new one with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        validate_default=True,
    )

    mode: Literal["paper", "backtest", "live"] = "paper"
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
    store: StoreSettings = Field(default_factory=StoreSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_not_bool(cls, value: Any) -> Any:
        """``seed = true`` is a typo, not seed 1."""
        if isinstance(value, bool):
            raise PydanticCustomError("bool_for_number", "bool given for a non-bool setting")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Inside :func:`load_settings`: overrides > given env > TOML file; else init > env."""
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

    def redacted_dict(self) -> dict[str, Any]:
        """All settings as plain JSON types, for printing and run records; secrets are ``***``."""
        result = _plain(self.model_dump(mode="python"))
        assert isinstance(result, dict)
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


class _MappingEnvSource(EnvSettingsSource):
    """The standard env source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], ctx: _LoadContext) -> None:
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

    def __init__(self, settings_cls: type[BaseSettings], ctx: _LoadContext) -> None:
        assert ctx.path is not None
        super().__init__(settings_cls, toml_file=ctx.path)
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


@contextmanager
def _loading(ctx: _LoadContext) -> Iterator[None]:
    token = _CONTEXT.set(ctx)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


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
    ctx = _LoadContext(
        path=file_path,
        env=os.environ if env is None else env,
        overrides=overrides or {},
    )
    # Bad JSON in an env var would abort pydantic-settings with a vague message; report it
    # ourselves, leave the variable out, and still validate everything else.
    env_problems = _check_env_json(ctx.env)
    ctx.skip_env = frozenset(env_problems)
    problems = _unknown_env(ctx.env) + list(env_problems.values())
    settings: Settings | None = None
    try:
        with _loading(ctx):
            settings = Settings()
    except ValidationError as exc:
        problems.extend(_format_errors(exc, ctx))
    except SettingsError as exc:  # pragma: no cover - _check_env_json catches these first
        problems.append(f"environment: {exc}")
    section = ctx.file_data.get("exchange")
    if isinstance(section, Mapping):
        for key in SECRET_KEYS:
            if key in section:  # never echo the value
                problems.append(
                    f"exchange.{key} (from {file_path}): secrets are never read from the config "
                    f"file; set {ENV_PREFIX}EXCHANGE__{key.upper()} or exchange.key_file "
                    "(a file only you can read, mode 0600)"
                )
    if problems or settings is None:
        raise ConfigError("\n".join(problems))
    return settings


SECRET_KEYS = ("api_key", "api_secret")


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
        mode = path.stat().st_mode
    except OSError:
        raise ConfigError(f"exchange.key_file: {path} not found") from None
    if mode & 0o077:
        raise ConfigError(
            f"exchange.key_file: {path} has mode {mode & 0o777:04o}; it must be readable by "
            f"you only (chmod 600 {path})"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise ConfigError(
            f"exchange.key_file: {path} is not a TOML file with api_key and api_secret"
        ) from None
    key, secret = data.get("api_key"), data.get("api_secret")
    if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
        raise ConfigError(f"exchange.key_file: {path} must define api_key and api_secret")
    return key, secret


def live_problems(s: Settings) -> list[str]:
    """Why this configuration may not trade real money (empty: it may)."""
    out = []
    if not s.exit.never_market_sells:
        out.append("exit.never_market_sells: must be true for live trading")
    if s.risk.max_total_exposure > s.live.max_total_exposure:
        out.append(
            f"risk.max_total_exposure: {s.risk.max_total_exposure} is above the live limit "
            f"live.max_total_exposure = {s.live.max_total_exposure}"
        )
    if s.risk.position_size > s.live.max_position_size:
        out.append(
            f"risk.position_size: {s.risk.position_size} is above the live limit "
            f"live.max_position_size = {s.live.max_position_size}"
        )
    if credentials(s) is None:
        out.append(
            f"exchange.api_key: no credentials; set {ENV_PREFIX}EXCHANGE__API_KEY and "
            f"{ENV_PREFIX}EXCHANGE__API_SECRET, or exchange.key_file"
        )
    return out


def default_toml() -> str:
    """The shipped, commented example config (``fsmtrader/data/default.toml``)."""
    return resources.files("fsmtrader").joinpath("data", "default.toml").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------
# Error translation: pydantic's ValidationError -> one readable line per problem.
# ---------------------------------------------------------------------------------------

_KIND_BY_TYPE: dict[Any, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    Decimal: "a decimal number",
    str: "a string",
    Path: "a path string",
}

_TYPE_ERRORS = {
    "int_type",
    "int_parsing",
    "int_from_float",
    "int_parsing_size",
    "float_type",
    "float_parsing",
    "decimal_type",
    "decimal_parsing",
    "bool_type",
    "bool_parsing",
    "string_type",
    "path_type",
    "list_type",
    "finite_number",
    "bool_for_number",
    "json_invalid",
    "json_type",
}

_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _show(value: Any, limit: int = 120) -> str:
    """A value as the user would write it (Decimals without ``Decimal(...)``), truncated."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    elif isinstance(value, BaseModel):
        text = _show(value.model_dump(), limit)
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k} = {_show(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_show(v, limit) for v in value) + "]"
    elif isinstance(value, PurePath):
        text = repr(str(value))
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class _Target:
    """What a ValidationError location points at: the model holding it, and the field."""

    model: type[BaseModel] | None  # the model whose field (or extra key) this is
    field: FieldInfo | None  # None for an unknown key
    item: bool  # the location is one element of a list field


def _resolve(loc: Sequence[str | int]) -> _Target:
    """Walk a location through the model classes (for allowed keys and bounds)."""
    model: type[BaseModel] | None = Settings
    info: FieldInfo | None = None
    item = False
    parent: type[BaseModel] | None = None
    for part in loc:
        if isinstance(part, int):
            item = True
            continue
        if model is None:
            return _Target(parent, None, False)
        parent = model
        info = model.model_fields.get(part)
        if info is None:
            return _Target(parent, None, False)
        item = False
        annotation = info.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return _Target(parent, info, item)


def _bounds(metadata: Sequence[Any]) -> str:
    """Numeric bounds as text: ``between 0.1 and 50``, ``> 0``, ``>= 60``, ``> 0 and <= 9``."""
    lower = upper = ""
    lo: Any = None
    hi: Any = None
    for m in metadata:
        if isinstance(m, annotated_types.Gt):
            lower, lo = f"> {_show(m.gt)}", m.gt
        elif isinstance(m, annotated_types.Ge):
            lower, lo = f">= {_show(m.ge)}", m.ge
        elif isinstance(m, annotated_types.Lt):
            upper, hi = f"< {_show(m.lt)}", m.lt
        elif isinstance(m, annotated_types.Le):
            upper, hi = f"<= {_show(m.le)}", m.le
    if lower.startswith(">=") and upper.startswith("<="):
        return f"between {_show(lo)} and {_show(hi)}"
    return " and ".join(p for p in (lower, upper) if p)


def _lengths(metadata: Sequence[Any]) -> str:
    """List length bounds as text, e.g. ``1 to 10 entries``."""
    lo = hi = None
    for m in metadata:
        if isinstance(m, annotated_types.MinLen):
            lo = m.min_length
        elif isinstance(m, annotated_types.MaxLen):
            hi = m.max_length
    if lo is not None and hi is not None:
        return f"{lo} to {hi} entries"
    if lo is not None:
        return f"at least {lo} entr{'y' if lo == 1 else 'ies'}"
    if hi is not None:
        return f"at most {hi} entries"
    return ""


def _item_metadata(info: FieldInfo) -> tuple[Any, list[Any]]:
    """Type and constraints of a list field's elements (``list[Annotated[float, ...]]``)."""
    args = get_args(info.annotation)
    if not args:
        return Any, []
    element = args[0]
    if get_origin(element) is Annotated:
        base, *extra = get_args(element)
        meta: list[Any] = []
        for e in extra:
            meta.extend(e.metadata if isinstance(e, FieldInfo) else [e])
        return base, meta
    return element, []


def _allowed(target: _Target) -> tuple[str, str]:
    """(kind, constraint) of a location, e.g. ``("a number", "between 0.1 and 50")``."""
    info = target.field
    if info is None:
        return "", ""
    annotation = info.annotation
    if target.item:
        base, meta = _item_metadata(info)
        return _KIND_BY_TYPE.get(base, "a value"), _bounds(meta)
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation)), ""
    if get_origin(annotation) is list:
        base, meta = _item_metadata(info)
        kind = "a list of " + {
            float: "numbers",
            int: "whole numbers",
            str: "strings",
            Decimal: "decimal numbers",
        }.get(base, "values")
        element_bounds = _bounds(meta)
        if element_bounds:
            kind += f" each {element_bounds}"
        lengths = _lengths(info.metadata)
        return kind, (f"with {lengths}" if lengths else "")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a table of settings", ""
    return _KIND_BY_TYPE.get(annotation, "a valid value"), _bounds(info.metadata)


def _unknown_hint(key: str, model: type[BaseModel] | None) -> str:
    """A typo (``take_proft_pct``) or a key outside its ``[section]`` gets a suggestion."""
    if model is None:
        return ""
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.75)
    if close:
        return f", did you mean {close[0]}?"
    if model is Settings:
        for section, info in Settings.model_fields.items():
            sub = info.annotation
            if isinstance(sub, type) and issubclass(sub, BaseModel) and key in sub.model_fields:
                return f", did you mean {key} under [{section}]?"
    return ""


def _message(err: Mapping[str, Any], target: _Target, loc: Sequence[str | int]) -> str:
    """The readable part after ``key:`` for one pydantic error."""
    etype: str = err["type"]
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    secret = target.field is not None and "Secret" in str(target.field.annotation)
    got = " (value hidden)" if secret else f" (got {_show(err.get('input'))})"
    kind, constraint = _allowed(target)
    if etype == "extra_forbidden":
        allowed = ", ".join(target.model.model_fields) if target.model else ""
        hint = _unknown_hint(str(loc[-1]), target.model) if loc else ""
        return f"unknown setting{hint} (allowed: {allowed})"
    if etype == _CROSS:
        return f"{ctx['message']} (got {_show(ctx['got'])})"
    if etype in _BOUND_ERRORS:
        if not constraint:  # no field metadata (should not happen): use pydantic's bound
            constraint = _bounds(
                [
                    annotated_types.Gt(ctx["gt"]) if "gt" in ctx else None,
                    annotated_types.Ge(ctx["ge"]) if "ge" in ctx else None,
                    annotated_types.Lt(ctx["lt"]) if "lt" in ctx else None,
                    annotated_types.Le(ctx["le"]) if "le" in ctx else None,
                ]
            )
        return f"must be {constraint}{got}"
    if etype in {"too_short", "too_long"}:
        lengths = _lengths(target.field.metadata) if target.field else ""
        return f"must have {lengths or 'a different number of entries'}{got}"
    if etype == "literal_error":
        return f"must be {kind or 'one of ' + str(ctx.get('expected'))}{got}"
    if etype in {"model_type", "model_attributes_type", "dict_type"}:
        return f"must be a table of settings{got}"
    if etype in _TYPE_ERRORS:
        text = f"must be {kind}" if kind else "has the wrong type"
        if constraint:
            text += f" {constraint}"
        return text + got
    if etype == "missing":
        return "is required"
    # Our own PydanticCustomErrors (non_decreasing, symbol_format, ...) and anything else.
    msg = str(err.get("msg", "is invalid"))
    msg = msg.removeprefix("Value error, ")
    return f"{msg}{got}"


def _has_path(data: Mapping[str, Any], keys: Sequence[str]) -> bool:
    node: Any = data
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def _origin(keys: Sequence[str], ctx: _LoadContext) -> str:
    """Where the value at ``keys`` came from: override, which env var, or the file."""
    if not keys:
        return ""
    if _has_path(ctx.overrides, keys):
        return "override"
    if _has_path(ctx.env_data, keys):
        present = {k.upper(): k for k in ctx.env}
        for n in range(len(keys), 0, -1):
            name = (ENV_PREFIX + ENV_NESTED_DELIMITER.join(keys[:n])).upper()
            if name in present:
                return present[name]
        return "environment"
    if ctx.path is not None and _has_path(ctx.file_data, keys):
        return str(ctx.path)
    return ""


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _format_errors(exc: ValidationError, ctx: _LoadContext) -> list[str]:
    """One line per problem: ``key (from SOURCE): what is wrong and allowed (got value)``."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc: list[str | int] = list(err["loc"])
        if err["type"] == _CROSS:
            loc.append(err["ctx"]["field"])
        # A [section] table that failed as a whole: its key is the section name itself.
        target = _resolve(loc)
        keys = [p for p in loc if isinstance(p, str)]
        origin = _origin(keys, ctx)
        where = f" (from {origin})" if origin else ""
        line = f"{_dotted(loc) or '<root>'}{where}: {_message(err, target, loc)}"
        if line not in lines:
            lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------
# Environment pre-check: pydantic-settings reports bad JSON in an env var only as
# "error parsing value for field 'market'"; we name the variable and the key instead.
# ---------------------------------------------------------------------------------------


def _is_complex(info: FieldInfo) -> bool:
    annotation = info.annotation
    return get_origin(annotation) in (list, dict) or (
        isinstance(annotation, type) and issubclass(annotation, BaseModel)
    )


def _check_env_json(env: Mapping[str, str]) -> dict[str, str]:
    """Env vars for lists and tables must hold JSON; map each that doesn't to its problem."""
    problems: dict[str, str] = {}
    prefix = ENV_PREFIX.lower()
    for name, value in env.items():
        if not name.lower().startswith(prefix):
            continue
        keys = name[len(prefix) :].lower().split(ENV_NESTED_DELIMITER)
        target = _resolve(keys)
        if target.field is None or not _is_complex(target.field):
            continue
        try:
            json.loads(value)
        except ValueError:
            kind, constraint = _allowed(target)
            default = target.field.get_default(call_default_factory=True)
            example = json.dumps(default) if isinstance(default, list) else '{"key": value}'
            line = f"{_dotted(keys)} (from {name}): must be JSON for {kind}"
            if constraint:
                line += f" {constraint}"
            shown = "value hidden" if keys[0] == "exchange" else f"got {_show(value)}"
            problems[name] = f"{line}, e.g. '{example}' ({shown})"
    return problems


# FSMTRADER_* variables that are not settings but are ours (read elsewhere on purpose).
NOT_SETTINGS = frozenset({"FSMTRADER_CRASH_AT"})


def _unknown_env(env: Mapping[str, str]) -> list[str]:
    """A misspelt FSMTRADER_* variable would be silently ignored: report it instead."""
    problems = []
    prefix = ENV_PREFIX.lower()
    top = set(Settings.model_fields)
    for name in env:
        if not name.lower().startswith(prefix) or name.upper() in NOT_SETTINGS:
            continue
        first = name[len(prefix) :].lower().split(ENV_NESTED_DELIMITER)[0]
        if first in top:
            continue
        hint = ""
        for section in top:
            if first.startswith(section + "_"):
                rest = first[len(section) + 1 :]
                hint = f"; did you mean {ENV_PREFIX}{section.upper()}__{rest.upper()}?"
                break
        else:
            close = difflib.get_close_matches(first, sorted(top), n=1)
            if close:
                hint = f"; did you mean {ENV_PREFIX}{close[0].upper()}?"
        problems.append(
            f"{name}: not a setting (nested settings use a double underscore, "
            f"e.g. {ENV_PREFIX}RISK__POSITION_SIZE){hint}"
        )
    return problems
