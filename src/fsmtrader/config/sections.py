"""The sections of the settings: one frozen model per ``[table]`` of the config file.

Each section checks its own values and the rules between its own keys; a rule's error
names the key it is about (see :func:`cross`), so the message can point at that key.
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fsmtrader.config.display import show
from fsmtrader.exchange.ccxt_adapter.venues import VENUES, ExchangeId, VenueProfile

__all__ = [
    "CROSS",
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
    "SimSettings",
    "StoreSettings",
    "TimeoutSettings",
    "cross",
]

_SYMBOL_RE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+$")
_QUOTE_RE = re.compile(r"^[A-Z0-9]+$")

CROSS = "cross_field"  # error type of our cross-field rules; ctx["field"] names the key


def cross(field_name: str, message: str, got: Any) -> PydanticCustomError:
    """A cross-field error pinned to ``field_name`` (a model validator only knows the section)."""
    return PydanticCustomError(
        CROSS, "{field}: {message}", {"field": field_name, "message": message, "got": got}
    )


def _check_non_decreasing(values: list[float]) -> list[float]:
    """Ladders escalate: each step must be at least as aggressive as the one before it."""
    if any(b < a for a, b in pairwise(values)):
        raise PydanticCustomError("non_decreasing", "must be non-decreasing")
    return values


def _check_ladder_within(
    section: str, ladder: str, steps: list[float], cap_name: str, cap: float
) -> None:
    """The slippage cap is the hard limit; a ladder step beyond it could never fill."""
    if any(step > cap for step in steps):
        raise cross(ladder, f"every step must be <= {section}.{cap_name} ({show(cap)})", steps)


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
    # Per-symbol modes (off, observe, paper, live): `modes` names a symbol's own, the rest
    # take `default_mode`. A mode changes on restart only while the symbol is flat.
    default_mode: Literal["off", "observe", "paper", "live"] = "live"
    modes: dict[str, Literal["off", "observe", "paper", "live"]] = Field(default_factory=dict)

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
            raise cross(
                "symbols",
                f"every symbol's quote must equal market.quote {self.quote!r} "
                f"(bad: {', '.join(wrong)})",
                self.symbols,
            )
        unknown = [s for s in self.modes if s not in self.symbols]
        if unknown:
            raise cross(
                "modes",
                f"names a symbol not in market.symbols: {', '.join(unknown)} "
                f"(symbols: {', '.join(self.symbols)})",
                self.modes,
            )
        if all(self.mode_of(s) == "off" for s in self.symbols):
            raise cross("modes", "every symbol is off: nothing would run", self.modes)
        return self

    def mode_of(self, symbol: str) -> str:
        """The configured mode of ``symbol``: its own, else ``default_mode``."""
        return self.modes.get(symbol, self.default_mode)


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
            raise cross(
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
        """An escalation step beyond the entry slippage cap could never fill."""
        _check_ladder_within(
            "entry",
            "buy_escalation_bps",
            self.buy_escalation_bps,
            "max_entry_slippage_bps",
            self.max_entry_slippage_bps,
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
    # true: take_profit_pct is the gain after the buy's and the sell's fees (as the peers'
    # ROI is), so the target price sits that much higher
    take_profit_net_of_fees: bool = False

    _ladder = field_validator("exit_ladder_bps")(_check_non_decreasing)

    @model_validator(mode="after")
    def _consistent(self) -> ExitSettings:
        """Rules between exit knobs; each would otherwise make an exit path unreachable."""
        if self.trailing_activation_pct > 0 and (
            self.trailing_distance_pct >= self.trailing_activation_pct
        ):
            raise cross(
                "trailing_distance_pct",
                f"must be < exit.trailing_activation_pct "
                f"({show(self.trailing_activation_pct)}) while trailing is on "
                f"(set trailing_activation_pct = 0 to turn it off)",
                self.trailing_distance_pct,
            )
        _check_ladder_within(
            "exit",
            "exit_ladder_bps",
            self.exit_ladder_bps,
            "max_exit_slippage_bps",
            self.max_exit_slippage_bps,
        )
        if self.flash_crash_guard_pct <= self.stop_loss_pct:
            raise cross(
                "flash_crash_guard_pct",
                f"must be > exit.stop_loss_pct ({show(self.stop_loss_pct)})",
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
            raise cross(
                "partial_fill_stuck_s",
                f"must be < timeouts.buy_fill_timeout_s ({show(self.buy_fill_timeout_s)})",
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
    max_consecutive_errors: Annotated[int, Field(ge=1, le=1000)] = 3  # live: <= 3

    @model_validator(mode="after")
    def _max_above_base(self) -> ErrorSettings:
        """The cap on an exponential back-off cannot be below its first step."""
        if self.backoff_max_s < self.backoff_base_s:
            raise cross(
                "backoff_max_s",
                f"must be >= errors.backoff_base_s ({show(self.backoff_base_s)})",
                self.backoff_max_s,
            )
        return self


class ExchangeSettings(_Section):
    """The venue for live trading (and for live prices in paper mode). Keys are read only
    from the environment (FSMTRADER_EXCHANGE__API_KEY, FSMTRADER_EXCHANGE__API_SECRET) or
    from ``key_file`` (mode 0600) — never from the config file."""

    name: ExchangeId = "binance"
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    key_file: Path | None = None
    base_url: str = ""
    timeout_ms: Annotated[int, Field(ge=500, le=120000)] = 10000
    poll_s: Annotated[float, Field(ge=0.05, le=60)] = 1.0
    # How long after a create the venue may not show the order: inside it "not found"
    # proves nothing, so the router never concludes "not sent" (docs/orders.md). None:
    # the venue profile's (binance 5000, mexc 10000). Never under a second: a shorter
    # window turns a venue's read-after-write lag into a second order.
    visibility_window_ms: Annotated[int, Field(ge=1000, le=600_000)] | None = None
    # The most orders one history request asks for (None: the profile's, 1000 on both
    # venues; their maximum). Smaller pages cost more requests, never an order.
    history_page_limit: Annotated[int, Field(ge=1, le=1000)] | None = None

    @field_validator("key_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """``key_file = ""`` in the file means no key file, not the current directory."""
        return None if value == "" else value

    @field_validator("visibility_window_ms", "history_page_limit", mode="before")
    @classmethod
    def _empty_is_the_venues(cls, value: Any) -> Any:
        """An empty value in the file means the venue profile's own."""
        return None if value == "" else value

    @property
    def profile(self) -> VenueProfile:
        """The venue profile with these settings' overrides: what the adapter is given
        (``CcxtOptions.profile``) and where the router's window comes from."""
        p = VENUES[self.name]
        window, limit = self.visibility_window_ms, self.history_page_limit
        return replace(
            p,
            visibility_window_ms=p.visibility_window_ms if window is None else window,
            history_page_limit=p.history_page_limit if limit is None else limit,
        )

    @property
    def window_ms(self) -> int:
        """The visibility window in force: this setting, else the venue profile's."""
        return self.profile.visibility_window_ms

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
    """The simulated exchange: fees, spread and order-book depth (paper and backtest),
    and which venue's rules it copies.

    ``venue``: binance (client ids unique among open orders, no lag) or mexc (plus its
    quirks: not found after create, IOC returned open). ``visibility_lag_ms``: how long a
    new order is not found by look-ups (default: the venue's, 0 on Binance, 1500 on
    MEXC). ``fee_asset``: quote (the default, so figures stay comparable), received (base
    on a buy: Binance's own default) or bnb, paid from ``starting_bnb`` at
    ``bnb_price`` quote per BNB."""

    maker_fee_bps: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("10")
    taker_fee_bps: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("10")
    spread_bps: Annotated[Decimal, Field(ge=0, le=500)] = Decimal("5")
    depth_quote: Annotated[Decimal, Field(gt=0)] = Decimal("2000")
    depth_levels: Annotated[int, Field(ge=1, le=50)] = 5
    level_step_bps: Annotated[Decimal, Field(ge=0, le=500)] = Decimal("5")
    venue: ExchangeId = "binance"
    visibility_lag_ms: Annotated[int, Field(ge=0, le=600_000)] | None = None
    fee_asset: Literal["quote", "received", "bnb"] = "quote"
    bnb_price: Annotated[Decimal, Field(gt=0)] = Decimal("600")
    starting_bnb: Annotated[Decimal, Field(ge=0)] = Decimal("0")

    @field_validator("visibility_lag_ms", mode="before")
    @classmethod
    def _empty_is_the_venues(cls, value: Any) -> Any:
        """``visibility_lag_ms = ""`` in the file means the venue's own lag."""
        return None if value == "" else value


class DemoSettings(_Section):
    """The ``demo`` command: how much simulated time, and how fast to play it."""

    hours: Annotated[float, Field(ge=0.1, le=720)] = 6.0
    speed: Annotated[float, Field(ge=0)] = 0.0
