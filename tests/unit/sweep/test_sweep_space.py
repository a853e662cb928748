"""The space file: what it accepts, and one line naming the key for each problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsmtrader.errors import ConfigError
from fsmtrader.research.sweep import Param, load_space, parse_space


def test_ranges_ints_logs_and_choices_take_the_settings_types() -> None:
    space = parse_space(
        {
            "entry.drop_trigger_pct": {"low": 1, "high": 5, "step": 0.5},
            "exit": {"take_profit_pct": {"low": 0.3, "high": 5, "log": True}},
            "entry.anchor_window_min": {"low": 10, "high": 240, "step": 10},
            "risk.position_size": {"low": 10, "high": 50},
            "backtest.both_touch": {"choices": ["stop_first", "nearer_open_first"]},
            "entry.sma_filter": {"choices": [True, False]},
        },
        "space.toml",
    )
    assert space.params == (
        Param("entry.drop_trigger_pct", "float", 1.0, 5.0, 0.5),
        Param("exit.take_profit_pct", "float", 0.3, 5.0, None, log=True),
        Param("entry.anchor_window_min", "int", 10.0, 240.0, 10.0),
        Param("risk.position_size", "float", 10.0, 50.0),  # a Decimal setting
        Param("backtest.both_touch", "choice", choices=("stop_first", "nearer_open_first")),
        Param("entry.sma_filter", "choice", choices=(True, False)),
    )
    assert space.params[0].describe() == "entry.drop_trigger_pct 1..5 step 0.5"


@pytest.mark.parametrize(
    ("key", "spec", "message"),
    [
        ("entry.drop_trigger", {"low": 1, "high": 2}, "not a setting (allowed here: drop_tr"),
        ("nope", {"low": 1, "high": 2}, "not a setting (allowed here: seed, state_dir"),
        ("entry", {"low": 1, "high": 2}, "is a table of settings"),
        (
            "entry.drop_trigger_pct",
            {"low": 0, "high": 2},
            "low = 0 is not allowed: the setting must be a number between 0.1 and 50",
        ),
        ("entry.drop_trigger_pct", {"low": 1, "high": 51}, "high = 51 is not allowed"),
        ("risk.position_size", {"low": 0, "high": 5}, "must be a decimal number > 0"),
        ("entry.drop_trigger_pct", {"low": 3, "high": 2}, "low must be < high"),
        ("entry.drop_trigger_pct", {"low": 1, "high": 2, "step": 0}, "step must be > 0"),
        ("entry.drop_trigger_pct", {"low": 1, "high": 2, "step": 0.3}, "whole number of steps"),
        (
            "entry.drop_trigger_pct",
            {"low": 1, "high": 2, "step": 0.5, "log": True},
            "step and log cannot be combined",
        ),
        ("exit.trailing_activation_pct", {"low": 0, "high": 2, "log": True}, "needs low > 0"),
        ("entry.drop_trigger_pct", {"low": 1}, "needs high"),
        ("entry.drop_trigger_pct", {"low": "1", "high": 2}, "low must be a number"),
        ("entry.drop_trigger_pct", {"low": True, "high": 2}, "low must be a number"),
        ("entry.anchor_window_min", {"low": 1, "high": 9.5}, "high must be a whole number"),
        ("entry.drop_trigger_pct", {"low": 1, "high": 2, "stp": 1}, "unknown field stp"),
        ("entry.drop_trigger_pct", 3, "must be a table"),
        ("entry.drop_trigger_pct", {"choices": []}, "non-empty list"),
        ("entry.drop_trigger_pct", {"choices": [1, 1]}, "must not repeat"),
        ("entry.drop_trigger_pct", {"choices": [1, 99]}, "choice 99 is not allowed"),
        ("entry.drop_trigger_pct", {"choices": [True]}, "choice true is not allowed"),
        ("entry.drop_trigger_pct", {"choices": [1], "low": 1}, "cannot be combined with low"),
        ("backtest.both_touch", {"choices": ["first"]}, "must be one of 'stop_first'"),
        ("backtest.both_touch", {"low": 1, "high": 2}, "sweep it with choices"),
        ("market.symbols", {"choices": [["BTC/USDT"]]}, "must be a string, number or bool"),
    ],
)
def test_each_problem_names_the_file_and_key(key: str, spec: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_space({key: spec}, "space.toml")
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"space.toml: {key}: ") and message in line


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_space(
            {"entry.drop_trigger": {"low": 1, "high": 2}, "exit.stop_loss_pct": {"low": 0,
             "high": 2}, "entry.anchor_window_min": {"low": 1, "high": 5}},
            "s.toml",
        )  # fmt: skip
    lines = str(caught.value).splitlines()
    assert [ln.split(":")[1].strip() for ln in lines] == [
        "entry.drop_trigger",
        "exit.stop_loss_pct",
    ]


def test_an_empty_space_says_what_to_write() -> None:
    with pytest.raises(ConfigError, match="no settings to sweep"):
        parse_space({}, "s.toml")


def test_the_file_is_read_as_toml(tmp_path: Path) -> None:
    path = tmp_path / "space.toml"
    path.write_text("[entry]\ndrop_trigger_pct = { low = 1, high = 2 }\n")
    assert load_space(path).keys() == ["entry.drop_trigger_pct"]
    with pytest.raises(ConfigError, match="file not found"):
        load_space(tmp_path / "missing.toml")
    path.write_text("entry = [\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_space(path)


def test_range_ends_the_base_settings_refuse_are_warned_about() -> None:
    """Each bound passes its own setting's check, but 12 % is past the default flash-crash
    guard (10 %): the trials out there would all be pruned, so the sweep says so first."""
    from fsmtrader.config import load_settings
    from fsmtrader.research.sweep.run import edge_warnings
    from fsmtrader.smoke.derive import settings_table

    base = settings_table(load_settings(None, env={}))
    space = parse_space(
        {"exit.stop_loss_pct": {"low": 1, "high": 12}, "entry.drop_trigger_pct": {"low": 1,
         "high": 5}, "backtest.both_touch": {"choices": ["stop_first", "target_first"]}},
        "s.toml",
    )  # fmt: skip
    (warning,) = edge_warnings(space, base, ["BTC/USDT"])
    assert warning.startswith("exit.stop_loss_pct = 12 with the base's other settings: ")
    assert "exit.flash_crash_guard_pct: must be > exit.stop_loss_pct (12)" in warning
