"""The router's visibility window comes from the venue profile, and a setting overrides
it: one knob (``unknown_grace_ms`` is gone), validated where it is read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fsmtrader.config import Settings
from fsmtrader.config_wiring import router_config
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
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


@pytest.mark.parametrize("venue", ["binance", "mexc"])
def test_the_history_page_limit_overrides_the_profile_the_adapter_gets(venue: str) -> None:
    default = Settings(exchange={"name": venue}).exchange  # type: ignore[arg-type]
    assert default.profile == VENUES[venue]
    s = Settings(exchange={"name": venue, "history_page_limit": 50}).exchange  # type: ignore[arg-type]
    options = CcxtOptions(s.name, api_key=None, api_secret=None, profile=s.profile)
    assert options.venue.history_page_limit == 50
    assert options.venue.visibility_window_ms == VENUES[venue].visibility_window_ms
    assert (
        replace(options.venue, history_page_limit=VENUES[venue].history_page_limit)
        == (VENUES[venue])
    )
