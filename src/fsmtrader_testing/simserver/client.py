"""How to point a real ccxt client at the simulated exchange server.

Only base URLs change, through the adapter's one rewrite
(:func:`fsmtrader.exchange.ccxt_adapter.urls.local_urls`): every entry of the client's
``urls["api"]`` moves to the local server with its path kept, so even an endpoint the
server does not serve is answered locally (404) instead of reaching the internet.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from fsmtrader.exchange.ccxt_adapter.urls import local_urls

#: ccxt options that keep load_markets to what a spot venue has. The server also
#: answers the calls these options avoid (sapi currencies and margin pairs, futures
#: exchangeInfo, MEXC contract detail) with empty lists, so a default client works too.
CCXT_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    "binance": {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
    },
    "mexc": {},
}


def point_ccxt_at(exchange: Any, base_url: str) -> None:
    """Rewrite a ccxt exchange instance's API URLs to the local server, in place."""
    exchange.urls["api"] = local_urls(copy.deepcopy(exchange.urls["api"]), base_url)
