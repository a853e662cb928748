"""The live rules: one list, each broken rule one line naming the setting, its value and
the bar; the shipped defaults pass them; credentials are a live start's rule only."""

from __future__ import annotations

from typing import Any

import pytest

from fsmtrader.config import Settings
from fsmtrader.config.live_policy import LIVE_RULES, live_problems, live_rule_problems

NO_ENV = {"FSMTRADER_EXCHANGE__API_KEY": "", "FSMTRADER_EXCHANGE__API_SECRET": ""}


def settings(**tables: dict[str, Any]) -> Settings:
    return Settings(**tables)


def test_the_defaults_pass_every_live_rule() -> None:
    assert live_rule_problems(settings()) == []


@pytest.mark.parametrize(
    ("tables", "line"),
    [
        ({"exit": {"never_market_sells": False}},
         "exit.never_market_sells = false: must be true for live trading"),
        ({"exit": {"max_exit_slippage_bps": 600, "exit_ladder_bps": [0, 10]}},
         "exit.max_exit_slippage_bps = 600: must be <= 500 bps for live trading"),
        ({"timeouts": {"buy_fill_timeout_s": 45}},
         "timeouts.buy_fill_timeout_s = 45: must be <= 30 s for live trading"),
        ({"timeouts": {"sell_fill_timeout_s": 31}},
         "timeouts.sell_fill_timeout_s = 31: must be <= 30 s for live trading"),
        ({"timeouts": {"exit_ioc_ttl_ms": 800}},
         "timeouts.exit_ioc_ttl_ms = 800: must be <= 500 ms for live trading"),
        ({"exit": {"max_hold_min": 600}},
         "exit.max_hold_min = 600: must be <= 120 min (the trade TTL) for live trading"),
        ({"risk": {"position_size": "60", "max_total_exposure": "90"}},
         "risk.position_size = 60: must be <= live.max_position_size for live trading "
         "(live.max_position_size = 50)"),
        ({"risk": {"max_total_exposure": "150"}},
         "risk.max_total_exposure = 150: must be <= live.max_total_exposure for live "
         "trading (live.max_total_exposure = 100)"),
        ({"risk": {"max_open_positions": 4}},
         "risk.max_open_positions = 4: must be <= 3 for live trading"),
        ({"halts": {"on_reconcile_mismatch": False}},
         "halts.on_reconcile_mismatch = false: must be true for live trading"),
        ({"halts": {"on_order_race": False}},
         "halts.on_order_race = false: must be true for live trading"),
        ({"errors": {"max_consecutive_errors": 5}},
         "errors.max_consecutive_errors = 5: must be <= 3 for live trading"),
        ({"breakers": {"max_daily_loss": "0"}},
         "breakers.max_daily_loss = 0: must be > 0 (the daily loss breaker armed) for live "
         "trading"),
        ({"breakers": {"max_drawdown_pct": 0}},
         "breakers.max_drawdown_pct = 0: must be > 0 (the drawdown breaker armed) for live "
         "trading"),
    ],
)  # fmt: skip
def test_each_broken_rule_is_one_line_naming_setting_value_and_bar(
    tables: dict[str, dict[str, Any]], line: str
) -> None:
    assert live_rule_problems(settings(**tables)) == [line]


def test_every_rule_names_a_real_setting() -> None:
    dumped = Settings().model_dump()
    for rule in LIVE_RULES:
        section, key = rule.setting.split(".")
        assert key in dumped[section], rule.setting


def test_several_broken_rules_are_all_listed() -> None:
    s = settings(exit={"never_market_sells": False}, risk={"max_open_positions": 5})
    assert [p.split(" =")[0] for p in live_rule_problems(s)] == [
        "exit.never_market_sells",
        "risk.max_open_positions",
    ]


def test_credentials_are_a_live_start_rule_not_a_file_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in NO_ENV:
        monkeypatch.delenv(name, raising=False)
    s = settings()
    assert live_rule_problems(s) == []
    [line] = live_problems(s)
    assert line.startswith("exchange.api_key: no credentials")
    keyed = Settings(exchange={"api_key": "k", "api_secret": "s"})
    assert live_problems(keyed) == []
