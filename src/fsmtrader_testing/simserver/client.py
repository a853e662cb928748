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
from fsmtrader.exchange.ccxt_adapter.venues import VENUES

#: The ccxt options the adapter itself uses per venue (``VenueProfile.ccxt_options``), so a
#: test's client is configured like production's. The server also answers the calls these
#: options avoid (sapi currencies and margin pairs, futures exchangeInfo, MEXC contract
#: detail) with empty lists, so a default client works too.
CCXT_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    venue: copy.deepcopy(dict(profile.ccxt_options)) for venue, profile in VENUES.items()
}


def point_ccxt_at(exchange: Any, base_url: str) -> None:
    """Rewrite a ccxt exchange instance's API URLs to the local server, in place."""
    exchange.urls["api"] = local_urls(copy.deepcopy(exchange.urls["api"]), base_url)
