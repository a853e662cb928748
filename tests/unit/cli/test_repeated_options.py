"""The refusal of a single-value option given twice, on the real command tree."""

from __future__ import annotations

import pytest
import typer.main

from fsmtrader.cli.app import app
from fsmtrader.cli.options import repeated_option

ROOT = typer.main.get_command(app)
COMMANDS = ROOT.commands  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("command", "args", "expect"),
    [
        ("backtest", ["--data", "a", "--data=b", "--json", "--json"], None),  # list, flag
        ("backtest", ["--config", "a", "-c", "b"], "--config given 2 times"),
        ("backtest", ["--timerange=1-", "--data", "x", "--timerange", "2-"], "--timerange given"),
        ("backtest", ["--symbols", "--config", "--config", "x"], None),  # a value, then once
        ("backtest", ["--config", "a", "--", "--config", "b"], None),  # after --: arguments
        ("control", ["stopentry", "--config", "a", "--config", "b"], "--config given 2 times"),
        ("control", ["stopentry", "--state-dir", "s"], None),
    ],
)
def test_repeated_option(command: str, args: list[str], expect: str | None) -> None:
    got = repeated_option(COMMANDS[command], args)
    if expect is None:
        assert got is None
    else:
        assert got is not None and got.startswith(expect), got
        assert got.endswith("it takes one value (give it once)")
