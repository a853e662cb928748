"""Point a ccxt client at a local server: the one URL rewrite, shared by the adapter
(``CcxtOptions.base_url``) and the simulated exchange server's client helpers.

Every URL of the venue's ``urls["api"]`` tree moves to the base URL with its path kept
(``https://api.binance.com/sapi/v1`` -> ``http://127.0.0.1:PORT/sapi/v1``), so even an
endpoint we never meant to call is answered locally instead of reaching the internet.
No ccxt import: the caller hands over the client's own tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias
from urllib.parse import urlsplit

#: A ccxt ``urls["api"]`` tree: URL strings, nested by API family.
ApiUrls: TypeAlias = "str | Mapping[str, ApiUrls]"


def local_urls(api_urls: ApiUrls, base_url: str) -> ApiUrls:
    """``api_urls`` with every URL moved to ``base_url``; a string that is not a URL is
    kept as it is."""
    if isinstance(api_urls, Mapping):
        return {key: local_urls(value, base_url) for key, value in api_urls.items()}
    if isinstance(api_urls, str) and "://" in api_urls:
        return base_url.rstrip("/") + urlsplit(api_urls).path.rstrip("/")
    return api_urls
