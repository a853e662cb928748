"""How to point a real ccxt client at the simulated exchange server.

Only base URLs change: every entry of the class's ``urls["api"]`` is rewritten to the
local server with its path kept (``https://api.binance.com/sapi/v1`` ->
``http://127.0.0.1:PORT/sapi/v1``), so even an endpoint the server does not serve is
answered locally (404) instead of reaching the internet.
"""

from __future__ import annotations

import copy
from typing import Any, Final, Literal
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


def ccxt_config(
    flavour: Literal["binance", "mexc"],
    base_url: str,
    *,
    api_key: str,
    api_secret: str,
    timeout_ms: int | None = None,
    rate_limit: bool | None = None,
) -> dict[str, Any]:
    """A ccxt constructor config for ``flavour`` aimed at ``base_url``:
    ``ccxt.async_support.binance(ccxt_config("binance", url, api_key=k, api_secret=s))``.
    ``rate_limit=False`` turns off ccxt's client-side throttle (MEXC's weights make it
    wait seconds between calls, which only slows a local test down)."""
    import ccxt  # the sync classes share the URL table with async_support and pro

    default_urls = getattr(ccxt, flavour)().urls["api"]
    config: dict[str, Any] = {
        "apiKey": api_key,
        "secret": api_secret,
        "urls": {"api": local_urls(default_urls, base_url)},
        "options": copy.deepcopy(CCXT_OPTIONS[flavour]),
    }
    if timeout_ms is not None:
        config["timeout"] = timeout_ms
    if rate_limit is not None:
        config["enableRateLimit"] = rate_limit  # ccxt's client-side throttle
    return config
