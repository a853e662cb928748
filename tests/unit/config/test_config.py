"""Settings: defaults, TOML + env + overrides precedence, and readable errors."""

from __future__ import annotations

import json
import os
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel, Field, SecretStr, ValidationError

from fsmtrader.config import (
    ExitSettings,
    RiskSettings,
    Settings,
    default_toml,
    load_settings,
)
from fsmtrader.errors import ConfigError, FsmTraderError

# Derived from the model itself, so a new section is covered without editing this file.
SECTIONS: dict[str, type[BaseModel]] = {
    name: f.annotation
    for name, f in Settings.model_fields.items()
    if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)
}


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own FSMTRADER_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("FSMTRADER_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path | None = None, **kwargs: Any) -> list[str]:
    """The lines of the ConfigError that loading must raise."""
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        load_settings(path, **kwargs)
    return str(info.value).splitlines()


# --- defaults ------------------------------------------------------------------------


def test_defaults_are_safe() -> None:
    s = load_settings(env={})
    assert "mode" not in Settings.model_fields  # the command chooses paper or live
    assert s.exit.never_market_sells is True
    assert s.router.time_in_force == "IOC"
    assert s.risk.position_size == Decimal("25")
    assert s.risk.max_total_exposure == Decimal("75")
    assert s.risk.max_total_exposure <= s.market.starting_balance / 10
    assert s.risk.max_open_positions * s.risk.position_size <= s.risk.max_total_exposure
    assert s.exit.stop_loss_pct < s.exit.flash_crash_guard_pct
    assert s.entry.entry_block_cooldown_s >= 60
    assert s.database_url == ""
    assert s.state_dir == Path("state")
    assert s.market.symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"]


def test_money_fields_are_decimal() -> None:
    s = load_settings(env={})
    money = [
        s.market.starting_balance,
        s.risk.position_size,
        s.risk.max_total_exposure,
        s.sim.maker_fee_bps,
        s.sim.taker_fee_bps,
        s.sim.spread_bps,
        s.sim.depth_quote,
        s.sim.level_step_bps,
    ]
    assert all(type(v) is Decimal for v in money)


def test_plain_constructor_matches_load_settings_without_env() -> None:
    assert Settings() == load_settings(env={})


def test_no_path_means_defaults_plus_env() -> None:
    s = load_settings(env={"FSMTRADER_SEED": "7"})
    assert s.seed == 7
    assert s.risk == RiskSettings()


# --- TOML, env, overrides ---------------------------------------------------------------


def test_load_toml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        seed = 7
        state_dir = "/var/lib/fsm"
        database_url = "sqlite:///fsm.db"
        [market]
        symbols = ["BTC/USDT"]
        starting_balance = "500.25"
        [risk]
        position_size = 10.1
        max_total_exposure = 50
        [entry]
        buy_escalation_bps = [0, 5]
        sma_filter = true
        [router]
        time_in_force = "GTC"
        """,
    )
    s = load_settings(path, env={})
    assert s.seed == 7
    assert s.state_dir == Path("/var/lib/fsm")
    assert s.database_url == "sqlite:///fsm.db"
    assert s.market.symbols == ["BTC/USDT"]
    assert s.market.starting_balance == Decimal("500.25")
    assert s.risk.position_size == Decimal("10.1")  # exact, not 10.0999999...
    assert s.entry.buy_escalation_bps == [0.0, 5.0]
    assert s.entry.sma_filter is True
    assert s.router.time_in_force == "GTC"
    # Keys the file does not mention keep their defaults, also inside a mentioned section.
    assert s.risk.max_open_positions == 3
    assert s.exit == ExitSettings()


def test_path_may_be_str(tmp_path: Path) -> None:
    path = write(tmp_path, "seed = 3\n")
    assert load_settings(str(path), env={}).seed == 3


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "seed = 1\n[risk]\nposition_size = 10\n")
    s = load_settings(path, env={"FSMTRADER_SEED": "2", "FSMTRADER_RISK__POSITION_SIZE": "30"})
    assert s.seed == 2
    assert s.risk.position_size == Decimal("30")


def test_env_and_file_merge_within_a_section(tmp_path: Path) -> None:
    path = write(tmp_path, "[risk]\nposition_size = 10\n")
    s = load_settings(path, env={"FSMTRADER_RISK__MAX_OPEN_POSITIONS": "2"})
    assert s.risk.position_size == Decimal("10")
    assert s.risk.max_open_positions == 2
    assert s.risk.max_total_exposure == Decimal("75")


def test_nested_env_vars() -> None:
    s = load_settings(
        env={
            "FSMTRADER_MARKET__SYMBOLS": '["BTC/USDT"]',
            "FSMTRADER_EXIT__NEVER_MARKET_SELLS": "false",
            "FSMTRADER_ENTRY__BUY_ESCALATION_BPS": "[0, 5, 5]",
            "FSMTRADER_SIM__DEPTH_QUOTE": "1234.5",
            "UNRELATED": "x",
        }
    )
    assert s.market.symbols == ["BTC/USDT"]
    assert s.exit.never_market_sells is False
    assert s.entry.buy_escalation_bps == [0.0, 5.0, 5.0]
    assert s.sim.depth_quote == Decimal("1234.5")


def test_env_names_are_case_insensitive() -> None:
    assert load_settings(env={"fsmtrader_risk__position_size": "20"}).risk.position_size == 20


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSMTRADER_RISK__POSITION_SIZE", "12")
    assert load_settings().risk.position_size == Decimal("12")
    # An explicit mapping replaces os.environ entirely.
    assert load_settings(env={}).risk.position_size == Decimal("25")


def test_overrides_beat_env_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "seed = 1\n[risk]\nposition_size = 10\nmax_open_positions = 2\n")
    s = load_settings(
        path,
        env={"FSMTRADER_SEED": "2", "FSMTRADER_RISK__POSITION_SIZE": "20"},
        overrides={"seed": 3, "risk": {"position_size": "30"}},
    )
    assert s.seed == 3
    assert s.risk.position_size == Decimal("30")
    assert s.risk.max_open_positions == 2  # from the file: overrides merge, not replace


def test_misspelt_top_level_env_var_is_reported() -> None:
    """A typo must not be silently ignored (the position size would stay at its default)."""
    with pytest.raises(ConfigError) as err:
        load_settings(env={"FSMTRADER_RISK_POSITION_SIZE": "30"})
    assert "FSMTRADER_RISK_POSITION_SIZE" in str(err.value)
    assert "FSMTRADER_RISK__POSITION_SIZE" in str(err.value)  # the suggestion
    with pytest.raises(ConfigError, match="FSMTRADER_CONFIG"):
        load_settings(env={"FSMTRADER_CONFIG": "x.toml"})
    # our own non-setting variable (the crash-torture failpoint) is not a typo
    assert load_settings(env={"FSMTRADER_CRASH_AT": "x:1"}) == load_settings(env={})


# --- error messages -----------------------------------------------------------------------

BAD_VALUES = [
    # (toml text, dotted key, substrings the line must contain)
    ('[exchange]\nname = "kraken"', "exchange.name", ["'binance', 'mexc'", "got 'kraken'"]),
    ("seed = -1", "seed", [">= 0", "got -1"]),
    ("seed = true", "seed", ["whole number", "got true"]),
    ("state_dir = 5", "state_dir", ["path", "got 5"]),
    ("[market]\nstarting_balance = 0", "market.starting_balance", ["> 0", "got 0"]),
    ("[market]\nsymbols = []", "market.symbols", ["at least 1", "got []"]),
    ('[market]\nsymbols = ["btc/usdt"]', "market.symbols", ["BASE/QUOTE", "'btc/usdt'"]),
    ('[market]\nquote = "usdt"', "market.quote", ["upper-case", "got 'usdt'"]),
    ("[risk]\nposition_size = -5", "risk.position_size", ["must be > 0", "got -5"]),
    ('[risk]\nposition_size = "abc"', "risk.position_size", ["decimal number > 0", "'abc'"]),
    ("[risk]\nmax_open_positions = 0", "risk.max_open_positions", ["between 1 and 100"]),
    ("[risk]\nmax_open_positions = 2.5", "risk.max_open_positions", ["whole number", "2.5"]),
    ("[entry]\ndrop_trigger_pct = 60", "entry.drop_trigger_pct", ["between 0.1 and 50", "got 60"]),
    ("[entry]\nentry_block_cooldown_s = 30", "entry.entry_block_cooldown_s", [">= 60", "got 30"]),
    ("[entry]\nmin_volume = nan", "entry.min_volume", [">= 0", "got nan"]),
    (
        "[entry]\nbuy_escalation_bps = [10, 5]",
        "entry.buy_escalation_bps",
        ["non-decreasing", "got [10, 5]"],
    ),
    ("[entry]\nbuy_escalation_bps = []", "entry.buy_escalation_bps", ["1 to 10 entries"]),
    ("[entry]\nbuy_escalation_bps = [0, -1]", "entry.buy_escalation_bps[1]", [">= 0", "got -1"]),
    ("[entry]\nsma_filter = 3", "entry.sma_filter", ["true or false", "got 3"]),
    ("[exit]\nstop_loss_pct = 0", "exit.stop_loss_pct", ["between 0.05 and 50", "got 0"]),
    ("[exit]\nexit_ladder_bps = 5", "exit.exit_ladder_bps", ["list of numbers", "got 5"]),
    ("[exit]\nmax_exit_slippage_bps = 6000", "exit.max_exit_slippage_bps", ["between 0 and 5000"]),
    ("[timeouts]\nexit_ioc_ttl_ms = 10", "timeouts.exit_ioc_ttl_ms", ["between 50 and 60000"]),
    ('[router]\ntime_in_force = "FOK"', "router.time_in_force", ["'IOC', 'GTC'", "got 'FOK'"]),
    ("[router]\nmax_retries = 11", "router.max_retries", ["between 0 and 10", "got 11"]),
    ("[exchange]\nhistory_page_limit = 1001", "exchange.history_page_limit", ["<= 1000"]),
    ("[exchange]\nhistory_page_limit = 0", "exchange.history_page_limit", [">= 1", "got 0"]),
    (
        "[exchange]\nvisibility_window_ms = 200",
        "exchange.visibility_window_ms",
        [">= 1000", "got 200"],
    ),
    ("[errors]\nbackoff_base_s = 0", "errors.backoff_base_s", ["between 0.1 and 3600"]),
    ("[sim]\ntaker_fee_bps = 101", "sim.taker_fee_bps", ["between 0 and 100", "got 101"]),
    ("[sim]\ndepth_levels = 0", "sim.depth_levels", ["between 1 and 50", "got 0"]),
    ("[demo]\nhours = 0", "demo.hours", ["between 0.1 and 720", "got 0"]),
    ("[demo]\nspeed = -1", "demo.speed", [">= 0", "got -1"]),
    ("risk = 5", "risk", ["table of settings", "got 5"]),
]


@pytest.mark.parametrize(("text", "key", "expected"), BAD_VALUES)
def test_bad_value_names_key_value_and_allowed(
    tmp_path: Path, text: str, key: str, expected: list[str]
) -> None:
    path = write(tmp_path, text + "\n")
    lines = problems(path)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"{key} (from {path}): "), line
    for part in expected:
        assert part in line, (part, line)


def test_one_line_per_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "seed = -1\n[risk]\nposition_size = -5\n[exit]\ntake_profit_pct = 0\n[sim]\nbogus = 1\n",
    )
    lines = problems(path)
    assert len(lines) == 4
    assert {line.split(" ")[0] for line in lines} == {
        "seed",
        "risk.position_size",
        "exit.take_profit_pct",
        "sim.bogus",
    }


def test_error_names_env_var_as_source(tmp_path: Path) -> None:
    path = write(tmp_path, "[risk]\nposition_size = 10\n")
    [line] = problems(path, env={"FSMTRADER_RISK__POSITION_SIZE": "-5"})
    assert line == "risk.position_size (from FSMTRADER_RISK__POSITION_SIZE): must be > 0 (got '-5')"


def test_error_names_override_as_source() -> None:
    [line] = problems(overrides={"risk": {"position_size": 0}})
    assert line == "risk.position_size (from override): must be > 0 (got 0)"


def test_bad_json_in_env_var_is_named_and_rest_still_checked() -> None:
    lines = problems(
        env={"FSMTRADER_MARKET__SYMBOLS": "BTC/USDT", "FSMTRADER_SEED": "-3"},
    )
    assert len(lines) == 2
    assert lines[0].startswith("market.symbols (from FSMTRADER_MARKET__SYMBOLS): must be JSON")
    assert "got 'BTC/USDT'" in lines[0]
    assert lines[1] == "seed (from FSMTRADER_SEED): must be >= 0 (got '-3')"


def test_unknown_key_in_file(tmp_path: Path) -> None:
    [line] = problems(write(tmp_path, "bogus = 1\n"))
    assert line.startswith("bogus (from ")
    assert "unknown setting" in line
    assert "allowed: seed, state_dir, runs_dir, database_url, market, risk," in line


def test_unknown_key_in_section(tmp_path: Path) -> None:
    [line] = problems(write(tmp_path, "[exit]\nbogus = 1\n"))
    assert "exit.bogus" in line
    assert "unknown setting (allowed: take_profit_pct, stop_loss_pct," in line


def test_unknown_section(tmp_path: Path) -> None:
    [line] = problems(write(tmp_path, "[riks]\nposition_size = 1\n"))
    assert line.startswith("riks (from ")
    assert "did you mean risk?" in line


def test_unknown_key_gets_suggestions(tmp_path: Path) -> None:
    lines = problems(write(tmp_path, "position_size = 1\n[exit]\ntake_proft_pct = 2\n"))
    assert any("exit.take_proft_pct" in x and "did you mean take_profit_pct?" in x for x in lines)
    assert any(x.startswith("position_size") and "under [risk]" in x for x in lines)


def test_unknown_key_from_env_section() -> None:
    [line] = problems(env={"FSMTRADER_EXIT__BOGUS": "1"})
    assert line.startswith("exit.bogus (from FSMTRADER_EXIT__BOGUS): unknown setting")


# `mode` was a setting nothing read: the command chooses paper or live. A file, variable or
# override that still sets it is refused like any unknown key, saying what replaced it.
MODE_INSTEAD = (
    "mode was removed: the command chooses what runs: `fsmtrader demo` or `fsmtrader paper` "
    "(simulated prices and fills), `fsmtrader backtest` (a candle file), `fsmtrader trade` "
    "(live prices, simulated fills), `fsmtrader trade --live --confirm-live` (real orders)"
)


def test_removed_mode_in_file_says_which_command_to_run(tmp_path: Path) -> None:
    path = write(tmp_path, 'mode = "paper"\nseed = -1\n')
    lines = problems(path)
    assert len(lines) == 2, lines  # the rest of the file is still checked
    assert lines[0] == f"seed (from {path}): must be >= 0 (got -1)"
    line = lines[1]
    assert line.startswith(f"mode (from {path}): unknown setting; {MODE_INSTEAD}; remove it ")
    assert line.endswith(")") and "(allowed: seed, state_dir, runs_dir," in line


def test_removed_mode_in_env_says_which_command_to_run() -> None:
    [line] = problems(env={"FSMTRADER_MODE": "live"})
    assert line == f"FSMTRADER_MODE: not a setting; {MODE_INSTEAD}; unset FSMTRADER_MODE"


def test_removed_mode_in_override_is_refused() -> None:
    [line] = problems(overrides={"mode": "paper"})
    assert line.startswith(f"mode (from override): unknown setting; {MODE_INSTEAD}; remove it")


def test_invalid_toml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "seed = 1\n[risk\nposition_size = 1\n")
    [line] = problems(path)
    assert line.startswith(f"{path}: invalid TOML: ")
    assert "line 2" in line


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert problems(path) == [f"{path}: config file not found"]


def test_directory_is_not_a_config_file(tmp_path: Path) -> None:
    assert problems(tmp_path) == [f"{tmp_path}: config file is not a regular file"]


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "seed = 1\n")

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    # Not chmod: the tests may run as root, who can read anything.
    monkeypatch.setattr(Path, "read_bytes", deny)
    assert problems(path) == [f"{path}: cannot read config file (Permission denied)"]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'database_url = "\xff"\n')
    [line] = problems(path)
    assert line.startswith(f"{path}: config file is not UTF-8")


def test_config_error_is_ours() -> None:
    assert issubclass(ConfigError, FsmTraderError)


# --- cross-field rules ----------------------------------------------------------------

CROSS_FIELD = [
    (
        '[market]\nsymbols = ["BTC/EUR"]',
        "market.symbols",
        "quote must equal market.quote 'USDT'",
    ),
    ('[market]\nsymbols = ["BTC/USDT", "BTC/USDT"]', "market.symbols", "duplicates"),
    (
        "[risk]\nposition_size = 50\nmax_total_exposure = 40",
        "risk.max_total_exposure",
        "must be >= risk.position_size (50) (got 40)",
    ),
    (
        "[entry]\nbuy_escalation_bps = [0, 60]\nmax_entry_slippage_bps = 50",
        "entry.buy_escalation_bps",
        "<= entry.max_entry_slippage_bps (50)",
    ),
    (
        "[exit]\ntrailing_activation_pct = 1\ntrailing_distance_pct = 1",
        "exit.trailing_distance_pct",
        "must be < exit.trailing_activation_pct (1)",
    ),
    (
        "[exit]\nexit_ladder_bps = [0, 600]",
        "exit.exit_ladder_bps",
        "<= exit.max_exit_slippage_bps (500)",
    ),
    (
        "[exit]\nexit_ladder_bps = [0, 50, 10]",
        "exit.exit_ladder_bps",
        "non-decreasing (got [0, 50, 10])",
    ),
    (
        "[exit]\nstop_loss_pct = 10\nflash_crash_guard_pct = 10",
        "exit.flash_crash_guard_pct",
        "must be > exit.stop_loss_pct (10) (got 10)",
    ),
    (
        "[timeouts]\nbuy_fill_timeout_s = 10\npartial_fill_stuck_s = 10",
        "timeouts.partial_fill_stuck_s",
        "must be < timeouts.buy_fill_timeout_s (10) (got 10)",
    ),
    (
        "[errors]\nbackoff_base_s = 30\nbackoff_max_s = 20",
        "errors.backoff_max_s",
        "must be >= errors.backoff_base_s (30) (got 20)",
    ),
]


@pytest.mark.parametrize(("text", "key", "expected"), CROSS_FIELD)
def test_cross_field_rules(tmp_path: Path, text: str, key: str, expected: str) -> None:
    [line] = problems(write(tmp_path, text + "\n"))
    assert line.startswith(f"{key} (from "), line
    assert expected in line, line


def test_cross_field_rule_on_defaults_has_no_source() -> None:
    [line] = problems(overrides={"exit": {"trailing_activation_pct": 0.2}})
    assert line.startswith("exit.trailing_distance_pct: must be < exit.trailing_activation_pct")


def test_trailing_off_allows_any_distance(tmp_path: Path) -> None:
    path = write(tmp_path, "[exit]\ntrailing_activation_pct = 0\ntrailing_distance_pct = 5\n")
    s = load_settings(path, env={})
    assert s.exit.trailing_activation_pct == 0
    assert s.exit.trailing_distance_pct == 5


def test_market_quote_change_with_matching_symbols(tmp_path: Path) -> None:
    path = write(tmp_path, '[market]\nquote = "EUR"\nsymbols = ["BTC/EUR", "ETH/EUR"]\n')
    assert load_settings(path, env={}).market.symbols == ["BTC/EUR", "ETH/EUR"]


def test_equal_ladder_steps_are_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "[entry]\nbuy_escalation_bps = [0, 50, 50]\n")
    assert load_settings(path, env={}).entry.buy_escalation_bps == [0, 50, 50]


@pytest.mark.parametrize(
    "text",
    [
        "[entry]\nbuy_escalation_bps = [0, 50]\nmax_entry_slippage_bps = 50",
        "[exit]\nexit_ladder_bps = [0, 500]\nmax_exit_slippage_bps = 500",
    ],
)
def test_ladder_step_may_equal_its_slippage_cap(tmp_path: Path, text: str) -> None:
    """The cap is inclusive for both ladders (one shared rule)."""
    load_settings(write(tmp_path, text + "\n"), env={})


# --- immutability and printing ----------------------------------------------------------


def test_settings_are_frozen() -> None:
    s = load_settings(env={})
    with pytest.raises(ValidationError):
        s.seed = 7  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.risk.position_size = Decimal(1000)  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.exit.never_market_sells = False  # type: ignore[misc]


def test_redacted_dict_is_plain_json() -> None:
    s = load_settings(env={}, overrides={"risk": {"position_size": "25.10"}})
    d = s.redacted_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["seed"] == 42
    assert d["state_dir"] == "state"
    assert d["risk"]["position_size"] == "25.10"
    assert d["sim"]["depth_quote"] == "2000"
    assert d["market"]["symbols"] == ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"]
    assert set(d) == set(Settings.model_fields)
    for name, cls in SECTIONS.items():
        assert set(d[name]) == set(cls.model_fields)


class _SettingsWithSecrets(Settings):
    """What a later issue adds: API credentials as SecretStr."""

    api_key: SecretStr = SecretStr("hunter2")
    backup_keys: list[SecretStr] = Field(default_factory=lambda: [SecretStr("hunter3")])


def test_redacted_dict_masks_secrets() -> None:
    d = _SettingsWithSecrets().redacted_dict()
    text = json.dumps(d)
    assert "hunter" not in text
    assert d["api_key"] == "***"
    assert d["backup_keys"] == ["***"]


# --- the shipped default.toml -----------------------------------------------------------


def test_default_toml_loads_to_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, default_toml())
    assert load_settings(path, env={}) == load_settings(env={})


def file_fields(cls: type[BaseModel]) -> set[str]:
    """Settings a config file may hold: secrets come only from the environment."""
    return {n for n, f in cls.model_fields.items() if "SecretStr" not in str(f.annotation)}


def test_default_toml_lists_every_setting() -> None:
    data = tomllib.loads(default_toml())
    assert set(data) == set(Settings.model_fields)
    for name, cls in SECTIONS.items():
        assert set(data[name]) == file_fields(cls), name


def test_default_toml_documents_every_setting_and_its_range() -> None:
    """Each key has a comment above it, and bounds in that comment match the model."""
    comment: list[str] = []
    section: type[BaseModel] = Settings
    seen = 0
    for raw in default_toml().splitlines():
        line = raw.strip()
        if line.startswith("#"):
            comment.append(line)
            continue
        if not line:
            continue
        if header := re.fullmatch(r"\[(\w+)\]", line):
            section = SECTIONS[header.group(1)]
            comment = []
            continue
        key = line.split("=", 1)[0].strip()
        assert comment, f"{key} has no comment"
        text = " ".join(comment)
        for bound in section.model_fields[key].metadata:
            for attr in ("gt", "ge", "lt", "le"):
                if isinstance(bound, annotated_types.BaseMetadata) and hasattr(bound, attr):
                    value = getattr(bound, attr)
                    shown = format(value, "g") if not isinstance(value, Decimal) else str(value)
                    assert re.search(rf"(?<![\d.]){re.escape(shown)}(?![\d.])", text), (
                        key,
                        shown,
                        text,
                    )
        comment = []
        seen += 1
    expected = len(Settings.model_fields) - len(SECTIONS)
    expected += sum(len(file_fields(cls)) for cls in SECTIONS.values())
    assert seen == expected
