"""A read the venue fails once without saying why is retried, on both flavours: Binance's
-1000 arrives as ccxt's OperationFailed, MEXC's as a plain ccxt ExchangeError, and a start
that cannot read the history must not conclude anything from one such answer."""

from __future__ import annotations

import pytest

from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange

from simserver_support import KEY, SECRET, running_server

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("flavour", ["binance", "mexc"])
@pytest.mark.parametrize("kind", ["error", "unavailable"])
def test_a_failed_read_is_retried(flavour: str, kind: str) -> None:
    with running_server(flavour) as sim:
        options = CcxtOptions(
            flavour,  # type: ignore[arg-type]
            api_key=KEY,
            api_secret=SECRET,
            base_url=sim.base_url,
            rate_limit=False,
        )
        with CcxtExchange(options) as ex:
            ex.load_markets()
            sim.fault("GET /api/v3/openOrders", kind)
            sim.fault("GET /api/v3/allOrders", kind)
            assert ex.fetch_open_orders("BTC/USDT") == []
            assert ex.fetch_orders("BTC/USDT", sim.state()["server_time"] - 60_000) == []
            assert sim.faults_pending() == 0
