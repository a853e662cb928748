"""A simulated visibility lag longer than the router's window is warned about: the router
would take the hidden order for absent and, in a paper session, send it again."""

from __future__ import annotations

from typing import Any

from fsmtrader.config import Settings
from fsmtrader.config.checks import unreachable_settings


def lag_warnings(**sections: Any) -> list[str]:
    lines = unreachable_settings(Settings(**sections))
    return [line for line in lines if line.startswith("sim.visibility_lag_ms")]


def test_a_simulated_lag_longer_than_the_window_is_warned() -> None:
    (line,) = lag_warnings(sim={"visibility_lag_ms": 6_000})
    assert line.startswith("sim.visibility_lag_ms: 6000 is longer than")
    assert "(5000 ms," in line and ">= 6000" in line


def test_a_lag_inside_the_window_or_the_venues_own_is_fine() -> None:
    assert lag_warnings(sim={"visibility_lag_ms": 5_000}) == []
    wider = {"visibility_window_ms": 6_000}
    assert lag_warnings(sim={"visibility_lag_ms": 6_000}, exchange=wider) == []
    assert lag_warnings(sim={"venue": "mexc"}) == []
    assert lag_warnings() == []
