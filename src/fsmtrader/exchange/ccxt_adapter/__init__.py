"""The live exchange plug: Binance or MEXC spot through ccxt, behind our ``Exchange`` protocol.

ccxt is imported only inside this package (``client.py`` and ``errors.py``), so everything
venue-specific stops here: the router sees Decimal ``OrderInfo`` / ``TradeInfo`` values
and our error classes, never a ccxt dict or exception. One job per module:

* ``sync.py``: :class:`CcxtExchange`, the synchronous ``Exchange`` the engine uses;
* ``client.py``: :class:`AsyncCcxtExchange`, the async core (markets, data, orders);
* ``options.py``: :class:`CcxtOptions`, how to build either of them;
* ``venues.py``: one :class:`VenueProfile` per venue, its limits and quirks as data;
* ``convert.py``: ccxt's dicts to our values, pure (markets, orders, trades, balances);
* ``checks.py``: what we refuse to send (order shape, clientOrderId, off-grid numbers);
* ``retry.py``: the retry policy and the not-found grace window;
* ``errors.py``: ccxt exceptions to our error classes, secrets scrubbed;
* ``urls.py``: pointing a ccxt client at a local server.

Import from the module that holds a name: this file imports nothing, so the conversions,
options and URL helpers can be used (by backtests and the local server's tools) without
loading ccxt.

An order create is never blindly re-sent. It is retried only when the request certainly
did not execute (429/418, connection refused before sending). A timeout, a 5xx or an
"execution status unknown" answer is raised at once as ``NetworkError(maybe_sent=True)``;
the router then looks the order up by its clientOrderId. Reads and cancels are idempotent
and are retried with backoff.
"""
