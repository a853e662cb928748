"""The engine's policy defaults repeat the settings' defaults (so a test can build a
policy in one line): they must not drift apart."""

from __future__ import annotations

from fsmtrader.config import Settings
from fsmtrader.config_wiring import engine_policy
from fsmtrader.engine.policy import EnginePolicy


def test_policy_defaults_are_the_settings_defaults() -> None:
    wired = engine_policy(Settings())
    assert EnginePolicy(symbols=wired.symbols) == wired
