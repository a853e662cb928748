"""How to point a real ccxt client at the simulated exchange server.

Only base URLs change: every entry of the class's ``urls["api"]`` is rewritten to the
local server with its path kept (``https://api.binance.com/sapi/v1`` ->
``http://127.0.0.1:PORT/sapi/v1``), so even an endpoint the server does not serve is
answered locally (404) instead of reaching the internet.
"""

from __future__ import annotations

import copy
from typing import Any, Final
from urllib.parse import urlsplit

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


def local_urls(api_urls: Any, base_url: str) -> Any:
    """``api_urls`` (a ccxt ``urls["api"]`` tree) with every URL moved to ``base_url``."""
    if isinstance(api_urls, str):
        return base_url.rstrip("/") + urlsplit(api_urls).path.rstrip("/")
    if isinstance(api_urls, dict):
        return {k: local_urls(v, base_url) for k, v in api_urls.items()}
    return api_urls


def point_ccxt_at(exchange: Any, base_url: str) -> None:
    """Rewrite a ccxt exchange instance's API URLs to the local server, in place."""
    exchange.urls["api"] = local_urls(copy.deepcopy(exchange.urls["api"]), base_url)
