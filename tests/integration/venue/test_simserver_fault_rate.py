"""The server's random fault rate can be changed while it runs (``POST /__sim/fault-rate``):
the crash torture ends its faults this way before the fault-free run it checks."""

from __future__ import annotations

import urllib.error

import pytest

from fsmtrader.errors import ExchangeError
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange

from simserver_support import KEY, SECRET, running_server


def test_fault_rate_zero_ends_the_random_faults() -> None:
    kinds = ["unavailable"]
    with running_server("binance", fault_rate=1.0, fault_seed=3, fault_kinds=kinds) as sim:
        options = CcxtOptions(
            "binance",
            api_key=KEY,
            api_secret=SECRET,
            base_url=sim.base_url,
            rate_limit=False,
            retry_attempts=1,
        )
        with CcxtExchange(options, inline=True) as ex:
            ex.load_markets()  # market data draws no faults
            with pytest.raises(ExchangeError):
                ex.fetch_balance()
            assert sim.state()["faults_injected"] == {"unavailable": 1}
            assert sim._request("POST", "/__sim/fault-rate", {"rate": 0})["fault_rate"] == 0
            assert "USDT" in ex.fetch_balance()
            assert sim.state()["faults_injected"] == {"unavailable": 1}


@pytest.mark.parametrize("body", [{"rate": 2}, {"rate": True}, {"rate": "0"}, [0], {}])
def test_fault_rate_must_be_a_number_in_0_1(body: object) -> None:
    with running_server("binance", fault_rate=0.5) as sim:
        with pytest.raises(urllib.error.HTTPError) as err:
            sim._request("POST", "/__sim/fault-rate", body)
        assert err.value.code == 400
        assert sim.state()["fault_rate"] == 0.5


def test_a_server_without_faults_cannot_be_given_a_rate() -> None:
    with running_server("binance") as sim:
        assert sim._request("POST", "/__sim/fault-rate", {"rate": 0})["fault_rate"] == 0
        with pytest.raises(urllib.error.HTTPError) as err:
            sim._request("POST", "/__sim/fault-rate", {"rate": 0.1})
        assert err.value.code == 400
