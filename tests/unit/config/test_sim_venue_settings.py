"""The [sim] section chooses the venue whose rules the simulator copies."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fsmtrader.config import Settings, load_settings
from fsmtrader.errors import ConfigError
from fsmtrader.exchange.simulated import BINANCE, MEXC
from fsmtrader.runner import sim_params

D = Decimal


def settings_from(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_settings(path)


def test_default_is_binance_without_lag_and_with_quote_fees(tmp_path: Path) -> None:
    params = sim_params(settings_from(tmp_path, ""))
    assert params.venue == BINANCE
    assert params.venue.fee_asset == "quote" and params.venue.visibility_lag_ms == 0


def test_venue_lag_and_fee_asset_reach_the_simulator(tmp_path: Path) -> None:
    s = settings_from(
        tmp_path,
        '[sim]\nvenue = "mexc"\nvisibility_lag_ms = 2500\nfee_asset = "bnb"\n'
        'bnb_price = "550.5"\nstarting_bnb = "0.2"\n',
    )
    venue = sim_params(s).venue
    assert venue.id == "mexc" and venue.visibility_lag_ms == 2500
    assert venue.fee_asset == "bnb" and venue.bnb_price == D("550.5")
    assert venue.ioc_returns_open == MEXC.ioc_returns_open and venue.history == MEXC.history
    s = settings_from(tmp_path, '[sim]\nvenue = "mexc"\n')
    assert sim_params(s).venue == MEXC  # MEXC's own lag


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[sim]\nvenue = "kraken"\n', ["sim.venue", "binance", "mexc"]),
        ("[sim]\nvisibility_lag_ms = -1\n", ["sim.visibility_lag_ms", "-1"]),
        ('[sim]\nfee_asset = "eth"\n', ["sim.fee_asset", "quote", "received", "bnb"]),
        ("[sim]\nbnb_price = 0\n", ["sim.bnb_price"]),
        ("[sim]\nstarting_bnb = -1\n", ["sim.starting_bnb"]),
    ],
)
def test_bad_values_are_one_clear_error_naming_the_key(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from(tmp_path, text)
    message = str(info.value)
    for word in words:
        assert word in message, message
