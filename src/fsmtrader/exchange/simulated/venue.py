"""What the simulated exchange copies of a real venue's rules, as data.

Why: crash safety proven against a kinder exchange than the real one proves little. A
Binance order id may be reused once the earlier order is over, a just-created order may
be invisible for a while, fees may be charged in the base asset or in BNB, and history
comes in pages with time windows. Each rule is one field here with its reason beside
it, so a test picks a venue (or a stricter variant that says why) in one expression:
``SimParams(venue=BINANCE.with_lag(2000))``.

The ccxt adapter's :class:`~fsmtrader.exchange.ccxt_adapter.venues.VenueProfile` says
how *we* talk to a venue; this profile says how the simulated venue *behaves*.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Literal

#: ``open_only``: a clientOrderId must be unique among the account's OPEN orders; once the
#: earlier order is filled, canceled or expired the same id is accepted again (Binance's
#: ``newClientOrderId``: "A unique id among open orders"). ``forever``: never reused
#: (stricter than any venue we trade; only for a test that says why it needs it).
ClientIdRule = Literal["open_only", "forever"]
#: ``quote``: every fee in the quote asset. ``received``: in the asset the trade delivers
#: (base on a buy, quote on a sell: Binance's default without BNB). ``bnb``: in BNB,
#: priced at :attr:`SimVenue.bnb_price`; a trade whose fee the free BNB cannot pay is
#: charged in the received asset instead, as Binance does.
FeeAsset = Literal["quote", "received", "bnb"]
FEE_ASSETS: Final[tuple[FeeAsset, ...]] = ("quote", "received", "bnb")
CLIENT_ID_RULES: Final[tuple[ClientIdRule, ...]] = ("open_only", "forever")
BNB: Final = "BNB"
DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class HistoryRules:
    """How the venue pages order and trade history on the wire (the local server obeys
    them; the in-process ``fetch_orders`` and ``fetch_my_trades`` return every page).

    Limits are per request (a default when the client sends none, and a maximum);
    ``max_window_ms`` is the longest ``startTime..endTime`` span a request may ask for
    (longer is an error, Binance -1127); ``default_window_ms`` is what a request without
    any time gets (MEXC: the last 24 h; None: the most recent ``limit`` rows);
    ``max_age_ms`` is how far back anything is served at all (MEXC: 7 days of orders);
    ``trade_cursor``: myTrades takes ``fromId`` (Binance) or not (MEXC)."""

    orders_limit_default: int
    orders_limit_max: int
    trades_limit_default: int
    trades_limit_max: int
    max_window_ms: int | None
    default_window_ms: int | None = None
    max_age_ms: int | None = None
    trade_cursor: bool = True


BINANCE_HISTORY: Final = HistoryRules(
    orders_limit_default=500,  # allOrders: "Default 500; max 1000"
    orders_limit_max=1000,
    trades_limit_default=500,  # myTrades: the same
    trades_limit_max=1000,
    max_window_ms=DAY_MS,  # "The time between startTime and endTime can't be longer than 24 hours"
)
MEXC_HISTORY: Final = HistoryRules(
    orders_limit_default=500,  # allOrders: "Default 500; max 1000"
    orders_limit_max=1000,
    trades_limit_default=100,  # myTrades: "Default 100; max 100" (current docs)
    trades_limit_max=100,
    max_window_ms=7 * DAY_MS,  # "You can query a maximum of the latest 7 days"
    default_window_ms=DAY_MS,  # "the query period is the latest 24 hours by default"
    max_age_ms=7 * DAY_MS,
    trade_cursor=False,  # myTrades takes orderId and times, no fromId
)


@dataclass(frozen=True, slots=True)
class SimVenue:
    """One venue's behaviour as the simulator reproduces it.

    The defaults of :data:`BINANCE` keep every figure pinned before venue profiles
    existed: no lag and every fee in quote. Binance's own default fee asset is
    ``received``; a test or setting that wants it says so (``BINANCE.with_fee_asset``)."""

    id: Literal["binance", "mexc"]
    # 36 on Binance (^[.A-Z:/a-z0-9_-]{1,36}$), 32 on MEXC.
    client_id_max_len: int
    client_ids: ClientIdRule = "open_only"  # Binance and MEXC: unique among open orders
    # A just-created order is not found by any look-up (by id, by client id, open orders,
    # history, its trades) until this long after its creation on the exchange's clock.
    visibility_lag_ms: int = 0
    # MEXC answers a cancel of an order it does not show yet with "unknown order".
    cancel_sees_lag: bool = False
    fee_asset: FeeAsset = "quote"
    # What one BNB costs in the quote asset of the market traded (every simulated market
    # shares one quote asset); a BNB fee is the quote fee divided by it, rounded down to
    # 1e-8. No BNB discount: the rate is the market's maker/taker rate.
    bnb_price: Decimal = Decimal("600")
    # MEXC (ccxt issue 25003): a limit IOC rests like a GTC and is reported open.
    ioc_returns_open: bool = False
    # Spot stop-limit sells (Binance STOP_LOSS_LIMIT: the protective stop) rest until a
    # bar's low reaches their stop; MEXC spot (ccxt issue 22104) has none: refused.
    stop_orders: bool = True
    history: HistoryRules = BINANCE_HISTORY

    def __post_init__(self) -> None:
        if self.client_ids not in CLIENT_ID_RULES:
            raise ValueError(f"client_ids must be one of {', '.join(CLIENT_ID_RULES)}")
        if self.fee_asset not in FEE_ASSETS:
            raise ValueError(f"fee_asset must be one of {', '.join(FEE_ASSETS)}")
        if not isinstance(self.visibility_lag_ms, int) or self.visibility_lag_ms < 0:
            raise ValueError(
                f"visibility_lag_ms must be an integer >= 0, got {self.visibility_lag_ms!r}"
            )
        if not self.bnb_price.is_finite() or self.bnb_price <= 0:
            raise ValueError(f"bnb_price must be > 0, got {self.bnb_price}")
        if self.client_id_max_len < 1:
            raise ValueError("client_id_max_len must be >= 1")

    def with_lag(self, ms: int) -> SimVenue:
        """This venue with a visibility lag of ``ms`` milliseconds."""
        return replace(self, visibility_lag_ms=ms)

    def with_fee_asset(self, asset: FeeAsset, bnb_price: Decimal | None = None) -> SimVenue:
        """This venue charging its fees in ``asset`` (and BNB at ``bnb_price``)."""
        price = self.bnb_price if bnb_price is None else bnb_price
        return replace(self, fee_asset=asset, bnb_price=price)

    def unique_forever(self) -> SimVenue:
        """Stricter than the venue: a client id is never accepted twice. Only for a test
        whose subject is not the reuse rule and that says why it needs this."""
        return replace(self, client_ids="forever")

    def identity(self) -> dict[str, str]:
        """Every field as text: what a simulated exchange file records and must match
        when it is reopened."""
        h = self.history
        return {
            "id": self.id,
            "client_id_max_len": str(self.client_id_max_len),
            "client_ids": self.client_ids,
            "visibility_lag_ms": str(self.visibility_lag_ms),
            "cancel_sees_lag": str(self.cancel_sees_lag),
            "fee_asset": self.fee_asset,
            "bnb_price": str(self.bnb_price),
            "ioc_returns_open": str(self.ioc_returns_open),
            "stop_orders": str(self.stop_orders),
            "history": ",".join(
                str(v)
                for v in (
                    h.orders_limit_default,
                    h.orders_limit_max,
                    h.trades_limit_default,
                    h.trades_limit_max,
                    h.max_window_ms,
                    h.default_window_ms,
                    h.max_age_ms,
                    h.trade_cursor,
                )
            ),
        }


BINANCE: Final = SimVenue(id="binance", client_id_max_len=36)
MEXC: Final = SimVenue(
    id="mexc",
    client_id_max_len=32,
    visibility_lag_ms=1500,  # not found after create (ccxt #21614): the server's default window
    cancel_sees_lag=True,
    ioc_returns_open=True,
    stop_orders=False,
    history=MEXC_HISTORY,
)
SIM_VENUES: Final[MappingProxyType[str, SimVenue]] = MappingProxyType(
    {v.id: v for v in (BINANCE, MEXC)}
)
