"""The router's visibility window comes from the venue profile, and a setting overrides
it: one knob (``unknown_grace_ms`` is gone), validated where it is read."""

from __future__ import annotations

import pytest

from fsmtrader.config import Settings
from fsmtrader.config_wiring import router_config
from fsmtrader.exchange.ccxt_adapter.venues import VENUES
from fsmtrader.orders.router import RouterConfig


@pytest.mark.parametrize("venue", ["binance", "mexc"])
def test_the_window_is_the_venue_profiles_unless_set(venue: str) -> None:
    s = Settings(exchange={"name": venue})  # type: ignore[arg-type]
    assert router_config(s).visibility_window_ms == VENUES[venue].visibility_window_ms
    s = Settings(exchange={"name": venue, "visibility_window_ms": ""})  # type: ignore[arg-type]
    assert router_config(s).visibility_window_ms == VENUES[venue].visibility_window_ms
    s = Settings(exchange={"name": venue, "visibility_window_ms": 7_500})  # type: ignore[arg-type]
    assert router_config(s).visibility_window_ms == 7_500


def test_the_routers_default_window_is_binances() -> None:
    """RouterConfig() (tests, benchmarks) waits like the default venue."""
    assert RouterConfig().visibility_window_ms == VENUES["binance"].visibility_window_ms
    assert not hasattr(RouterConfig(), "unknown_grace_ms")
