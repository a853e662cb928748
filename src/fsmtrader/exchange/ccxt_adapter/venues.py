"""What differs between the venues we trade, as data (freqtrade's ``_ft_has`` idea).

The client reads a :class:`VenueProfile` instead of branching on the venue's name, so a
quirk is one field with its reason next to it, and adding a venue is adding a profile.
No ccxt import here: the profile is plain data, usable by configuration code too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from fsmtrader.exchange.types import OrderStatus, OrderType

ExchangeId = Literal["binance", "mexc"]
_DAY_MS: Final = 86_400_000

#: ccxt's unified order statuses -> ours. Both venues reach us through ccxt's unified
#: parser, so they share the table; a venue with its own words would get its own.
CCXT_STATUS: Final[MappingProxyType[str, OrderStatus]] = MappingProxyType(
    {
        "open": "open",
        "closed": "closed",
        "canceled": "canceled",
        "cancelled": "canceled",
        "expired": "canceled",  # an IOC that expired, possibly after a partial fill
        "rejected": "rejected",
        "canceling": "open",  # PENDING_CANCEL: not final yet
    }
)


@dataclass(frozen=True, slots=True)
class VenueProfile:
    """One venue's limits and quirks, as the adapter needs them.

    ``not_found_grace_ms``: how long a look-up of an order this process just created may
    be answered "not found" before we believe it (MEXC, ccxt issue 21614).
    ``create_acks_only``: the create answer is an acknowledgement without the order's
    state or fills, so the order is read once right after it.
    ``order_types``: what we send there. A stop price only where ``stop_orders`` (MEXC
    spot has no stop-limit at all, ccxt issue 22104).
    ``ccxt_options``: merged under the caller's options; they keep ccxt on spot and away
    from endpoints that need more permissions than trading.
    ``markets_fetcher``: the ccxt method that lists spot markets without touching the
    venue's other product APIs.
    ``visibility_window_ms``: how long after a create the venue may not show the order
    in any look-up; inside it "not found" proves nothing, so the router never concludes
    "not sent" from it.
    ``history_page_limit``: the most orders one allOrders request returns;
    ``trades_page_limit`` the most trades one myTrades request returns.
    ``history_window_ms``: the longest startTime..endTime span a history request may ask.
    ``orders_cursor`` / ``trades_cursor``: the wire parameter that continues a history
    from an id (Binance ``orderId`` / ``fromId``), None where pages continue by time.
    ``history_lookback_ms``: how far back trade history reaches when no start is given
    and there is no id cursor to walk from the first trade (MEXC keeps one month).
    """

    id: ExchangeId
    client_id_max_len: int
    not_found_grace_ms: int
    create_acks_only: bool
    markets_fetcher: str
    ccxt_options: MappingProxyType[str, Any]
    visibility_window_ms: int
    history_page_limit: int
    trades_page_limit: int
    history_window_ms: int
    orders_cursor: str | None
    trades_cursor: str | None
    history_lookback_ms: int | None
    order_types: frozenset[OrderType] = frozenset({"limit", "market"})
    # Spot stop-limit sells (Binance STOP_LOSS_LIMIT: the protective stop); MEXC spot
    # has none (its API answers STOP_LOSS_LIMIT with "invalid type", ccxt issue 22104).
    stop_orders: bool = False
    statuses: MappingProxyType[str, OrderStatus] = field(default_factory=lambda: CCXT_STATUS)


BINANCE: Final = VenueProfile(
    id="binance",
    client_id_max_len=36,  # ^[.A-Z:/a-z0-9_-]{1,36}$
    not_found_grace_ms=0,
    create_acks_only=False,  # newOrderRespType FULL: state and fills in the answer
    markets_fetcher="fetch_markets",  # with fetchMarkets.types = spot below
    visibility_window_ms=5_000,
    history_page_limit=1000,  # allOrders maximum
    trades_page_limit=1000,  # myTrades maximum
    history_window_ms=_DAY_MS,  # startTime..endTime over 24 h: -1127
    orders_cursor="orderId",  # allOrders: orders with orderId >= n
    trades_cursor="fromId",  # myTrades: trades with id >= n (not with start/end times)
    history_lookback_ms=None,  # fromId walks from the first trade
    stop_orders=True,  # STOP_LOSS_LIMIT: timeInForce, quantity, price, stopPrice
    ccxt_options=MappingProxyType(
        {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchMargins": False,  # else load_markets calls sapi margin/allPairs with the key
            "fetchCurrencies": False,  # sapi capital/config/getall: private, wallet permission
            "warnOnFetchOpenOrdersWithoutSymbol": False,  # reconcile lists all open orders
            "newOrderRespType": {"market": "FULL", "limit": "FULL"},  # fills in the answer
        }
    ),
)

# MEXC, ccxt issue 25003: a spot IOC may come back ``open`` like a GTC. Nothing here
# acts on it: the order is reported as the venue says and the engine cancels it after its
# exit-IOC TTL, so the quirk has no field.
MEXC: Final = VenueProfile(
    id="mexc",
    client_id_max_len=32,  # the strictest venue: our ids fit it (orders.intent)
    not_found_grace_ms=3000,  # ccxt issue 21614
    create_acks_only=True,
    # load_markets would also call the contract API; this lists spot only.
    markets_fetcher="fetch_spot_markets",
    visibility_window_ms=10_000,  # not found after create for seconds (ccxt issue 21614)
    history_page_limit=1000,  # allOrders maximum
    trades_page_limit=100,  # myTrades maximum
    history_window_ms=7 * _DAY_MS,  # allOrders: at most 7 days per query
    orders_cursor=None,  # no numeric id to continue from: pages go on by time
    trades_cursor=None,
    history_lookback_ms=30 * _DAY_MS,  # myTrades reaches one month back
    ccxt_options=MappingProxyType(
        {
            "defaultType": "spot",
            # Honoured by newer ccxt only; markets_fetcher is what keeps us on spot.
            "fetchMarkets": {"types": {"spot": True, "swap": {"linear": False, "inverse": False}}},
        }
    ),
)

VENUES: Final[MappingProxyType[str, VenueProfile]] = MappingProxyType(
    {p.id: p for p in (BINANCE, MEXC)}
)
SUPPORTED: Final[tuple[ExchangeId, ...]] = tuple(p.id for p in VENUES.values())
