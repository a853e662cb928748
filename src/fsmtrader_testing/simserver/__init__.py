"""A local spot exchange REST server (Binance or MEXC wire format) over SimExchange.

Point a real ccxt client's base URLs at it (see ``client.py`` and the tests) and ccxt's own signing,
parsing and error mapping run against a deterministic matching engine with moving
synthetic prices, fault injection (``POST /__sim/fault``) and MEXC's known quirks.
"""

from fsmtrader_testing.simserver.app import create_app, serve, start_server
from fsmtrader_testing.simserver.client import CCXT_OPTIONS, point_ccxt_at
from fsmtrader_testing.simserver.state import QUIRKS

__all__ = [
    "CCXT_OPTIONS",
    "QUIRKS",
    "create_app",
    "point_ccxt_at",
    "serve",
    "start_server",
]
