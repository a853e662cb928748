"""The ccxt conversions, pure: ccxt's unified dicts (the shared ccxt fixtures, and
hand-built markets for the fallbacks) to our Decimal values, with no ccxt and no server.

The venue profiles, the adapter's options and the one URL rewrite are pinned here too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from fsmtrader.errors import InvalidOrder
from fsmtrader.exchange.ccxt_adapter.checks import check_client_order_id, check_order
from fsmtrader.exchange.ccxt_adapter.convert import (
    IncompleteAnswer,
    OrderHint,
    balances_from_ccxt,
    book_top_from_ccxt,
    candles_from_ccxt,
    order_from_ccxt,
    ticker_from_ccxt,
    ticker_touch,
    trade_from_ccxt,
)
from fsmtrader.exchange.ccxt_adapter.market_filters import filters_from_ccxt
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import call_deadline_s
from fsmtrader.exchange.ccxt_adapter.urls import local_urls
from fsmtrader.exchange.ccxt_adapter.venues import BINANCE, MEXC, SUPPORTED, VENUES
from fsmtrader.markets import MarketFilters
from fsmtrader.orders.intent import DEFAULT_CLIENT_ID_LEN, client_order_id

from conftest import shared_file

D = Decimal


def load_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(shared_file(name).read_text(encoding="utf-8"))
    return data


def response(method: str) -> dict[str, Any]:
    """ccxt's unified answer for ``method`` in the shared Binance response fixture, with
    ``info`` put back (the fixture drops it because it equals the raw answer)."""
    entry = load_json("ccxt_binance_spot_response_examples.json")["methods"][method][0]
    parsed, raw = entry["parsedResponse"], entry["httpResponse"]
    if isinstance(parsed, list):
        return {"rows": [{**p, "info": r} for p, r in zip(parsed, raw, strict=True)]}
    return {**parsed, "info": raw}


# --------------------------------------------------------------------------- markets


def test_filters_from_ccxt_matches_derived_for_every_shared_market() -> None:
    data = load_json("ccxt_binance_spot_markets.json")
    markets: dict[str, Any] = data["markets"]
    derived: dict[str, Any] = data["derived"]
    assert len(markets) >= 7
    assert set(markets) == set(derived)
    for symbol, market in markets.items():
        f = filters_from_ccxt(market)
        want = derived[symbol]
        assert f.symbol == symbol
        assert f.tick_size == Decimal(want["tick_size"]), symbol
        assert f.step_size == Decimal(want["step_size"]), symbol
        assert f.min_qty == Decimal(want["min_qty"]), symbol
        assert f.min_notional == Decimal(want["min_notional"]), symbol
        assert (f.base, f.quote) == (market["base"], market["quote"])
        # the integer DECIMAL_PLACES precision of the old fixture must not leak through
        assert f.tick_size < 1 and f.step_size <= 1


def test_filters_from_ccxt_unified_tick_size_market_without_info() -> None:
    market = {
        "symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "precision": {"price": 0.01, "amount": 0.00001},
        "limits": {"amount": {"min": 0.00001, "max": 9000}, "cost": {"min": 5, "max": None}},
    }
    f = filters_from_ccxt(market)
    # Issue 8 point 6: the unified amount maximum is read too (it used to be dropped).
    assert f == MarketFilters(
        "BTC/USDT",
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal("0.00001"),
        Decimal("5"),
        "BTC",
        "USDT",
        max_qty=Decimal("9000"),
    )


def test_filters_from_ccxt_unified_whole_number_tick_without_filters_is_a_tick() -> None:
    market = {
        "symbol": "XRP/USDT",
        "precision": {"price": 0.0001, "amount": 1},
        "limits": {"amount": {"min": 1}, "cost": {"min": 5}},
    }
    f = filters_from_ccxt(market)
    assert f.step_size == 1 and f.tick_size == Decimal("0.0001")
    assert (f.base, f.quote) == ("XRP", "USDT")


def binance_filters(notional_kind: str = "NOTIONAL") -> list[dict[str, Any]]:
    return [
        {"filterType": "PRICE_FILTER", "minPrice": "0.00010000", "tickSize": "0.00010000"},
        {"filterType": "LOT_SIZE", "minQty": "0.10000000", "stepSize": "0.01000000"},
        {"filterType": "ICEBERG_PARTS", "limit": "10"},
        {"filterType": notional_kind, "minNotional": "1.00000000"},
    ]


def test_filters_from_ccxt_falls_back_to_info_filters_without_precision() -> None:
    market = {"symbol": "ZBT/USDT", "info": {"symbol": "ZBTUSDT", "filters": binance_filters()}}
    f = filters_from_ccxt(market)
    assert (f.tick_size, f.step_size, f.min_qty, f.min_notional) == (
        Decimal("0.0001"),
        Decimal("0.01"),
        Decimal("0.1"),
        Decimal("1"),
    )
    assert str(f.tick_size) == "0.0001"  # normalised, no trailing zeros from "0.00010000"
    assert (f.base, f.quote) == ("ZBT", "USDT")


def test_filters_from_ccxt_reads_old_min_notional_filter() -> None:
    market = {
        "symbol": "ZBT/USDT",
        "precision": {},
        "limits": {"amount": {"min": None}, "cost": {"min": None}},
        "info": {"filters": binance_filters("MIN_NOTIONAL")},
    }
    f = filters_from_ccxt(market)
    assert f.min_notional == Decimal("1")
    assert f.min_qty == Decimal("0.1")


def test_filters_from_ccxt_without_any_grid_names_the_symbol() -> None:
    market = {
        "symbol": "NOPE/USDT",
        "precision": {},
        "limits": {"cost": {"min": 5}},
        "info": {"filters": [{"filterType": "MAX_NUM_ORDERS", "maxNumOrders": "200"}]},
    }
    with pytest.raises(ValueError, match="NOPE/USDT"):
        filters_from_ccxt(market)
    with pytest.raises(ValueError, match="NOPE/USDT"):
        filters_from_ccxt({"symbol": "NOPE/USDT"})


def test_fees_come_from_the_shared_binance_markets() -> None:
    markets: dict[str, Any] = load_json("ccxt_binance_spot_markets.json")["markets"]
    for symbol, market in markets.items():
        f = filters_from_ccxt(market)
        assert market["maker"] == 0.001 and market["taker"] == 0.001, symbol  # the fixture
        assert f.maker_fee == D("0.001") and f.taker_fee == D("0.001"), symbol
        assert str(f.taker_fee) == "0.001"  # the float's shortest repr, no binary noise


def test_fees_are_none_when_the_market_does_not_say_them() -> None:
    market = {"symbol": "BTC/USDT", "precision": {"price": 0.01, "amount": 0.00001}}
    f = filters_from_ccxt(market)
    assert f.maker_fee is None and f.taker_fee is None
    free_maker = filters_from_ccxt({**market, "maker": 0.0, "taker": "0.0005"})
    assert free_maker.maker_fee == 0 and free_maker.maker_fee is not None
    assert free_maker.taker_fee == D("0.0005")
    with pytest.raises(ValueError, match="BTC/USDT taker"):
        filters_from_ccxt({**market, "taker": "ten bps"})


# --------------------------------------------------------------------------- orders, trades


def test_filled_market_order_from_the_shared_fixture() -> None:
    info = order_from_ccxt(response("fetchOrder"))
    assert (info.id, info.symbol, info.side, info.order_type) == (
        "3397148653",
        "LTC/USDT",
        "sell",
        "market",
    )
    assert info.client_order_id == "x-R4BD3S825806ed40c861260428a48c"
    assert (info.status, info.amount, info.filled) == ("closed", D("0.1"), D("0.1"))
    assert info.cost == D("9.08")  # the raw cummulativeQuoteQty string, not ccxt's float
    assert info.price == D("90.8")  # a market order's price is its average fill
    assert info.time_in_force == "IOC" and info.timestamp == 1679571174472
    assert info.trades == [] and (info.fee, info.fee_currency) == (0, "")


def test_resting_limit_order_from_the_shared_fixture() -> None:
    info = order_from_ccxt(response("createOrder"))
    assert (info.status, info.order_type, info.time_in_force) == ("open", "limit", "GTC")
    assert (info.price, info.amount, info.filled, info.cost) == (D("241"), D("0.05"), 0, 0)
    assert info.timestamp == 1737635557417


def test_terse_answers_are_completed_from_the_hint_and_memory() -> None:
    ack = {"id": "C02__1", "info": {"orderId": "C02__1"}}  # MEXC's create acknowledgement
    hint = OrderHint(
        symbol="BTC/USDT",
        side="buy",
        amount=D("0.001"),
        price=D("90000"),
        time_in_force="IOC",
        order_type="limit",
    )
    info = order_from_ccxt(ack, hint, coid_of={"C02__1": "fsm1"})
    assert (info.client_order_id, info.symbol, info.side) == ("fsm1", "BTC/USDT", "buy")
    assert (info.status, info.amount, info.price, info.time_in_force) == (
        "open",
        D("0.001"),
        D("90000"),
        "IOC",
    )
    # Binance's cancel answer: the order's own id is origClientOrderId.
    cancel = {**ack, "side": "buy", "amount": 1, "clientOrderId": "cancel-req"}
    cancel["info"] = {"origClientOrderId": "fsm2"}
    assert order_from_ccxt(cancel).client_order_id == "fsm2"
    with pytest.raises(IncompleteAnswer, match="no side"):
        order_from_ccxt(ack)
    with pytest.raises(IncompleteAnswer, match="no amount"):
        order_from_ccxt({**ack, "side": "sell"})


def test_statuses_follow_the_venue_table() -> None:
    base = {"id": "1", "side": "buy", "amount": "1", "price": "1"}
    seen = {s: order_from_ccxt({**base, "status": s}).status for s in MEXC.statuses}
    assert seen == {
        "open": "open",
        "closed": "closed",
        "canceled": "canceled",
        "cancelled": "canceled",
        "expired": "canceled",
        "rejected": "rejected",
        "canceling": "open",
    }
    assert order_from_ccxt({**base, "status": "mystery"}).status == "open"
    strict = order_from_ccxt({**base, "status": "expired"}, statuses={"expired": "rejected"})
    assert strict.status == "rejected"


def test_fills_inside_an_order_answer_are_kept_only_with_ids() -> None:
    fill = {
        "id": "t1",
        "price": "100",
        "amount": "0.5",
        "fee": {"cost": "0.05", "currency": "USDT"},
    }
    order = {"id": "9", "clientOrderId": "fsm9", "side": "buy", "amount": "1", "status": "closed"}
    info = order_from_ccxt({**order, "filled": "1", "cost": "100", "trades": [fill, fill]})
    assert [t.id for t in info.trades] == ["t1", "t1"]
    assert info.trades[0].client_order_id == "fsm9" and info.trades[0].order_id == "9"
    assert (info.fee, info.fee_currency) == (D("0.1"), "USDT")
    no_ids = order_from_ccxt({**order, "trades": [{**fill, "id": None}], "fee": {"cost": "0.2"}})
    assert no_ids.trades == [] and no_ids.fee == D("0.2")


def test_my_trade_from_the_shared_fixture() -> None:
    row = response("fetchMyTrades")["rows"][0]
    t = trade_from_ccxt(row, coid_of={"3784695242": "fsmltc"})
    assert (t.id, t.order_id, t.client_order_id) == ("309520010", "3784695242", "fsmltc")
    assert (t.symbol, t.side, t.price, t.amount) == ("LTC/USDT", "sell", D("69.63"), D("0.2"))
    assert (t.fee, t.fee_currency, t.maker) == (D("0.013926"), "USDT", False)
    assert t.timestamp == 1698138992358
    with pytest.raises(IncompleteAnswer):
        trade_from_ccxt({"id": "x"})


# --------------------------------------------------------------------------- account, data


def test_balances_ticker_book_and_candles_from_the_shared_fixture() -> None:
    balances = balances_from_ccxt(response("fetchBalance"))
    assert balances.keys() == {"LTC", "ETH"}  # zero balances are left out
    assert balances["LTC"].free == D("0.919741") and balances["ETH"].used == 0
    ticker = response("fetchTicker")
    bid, ask = ticker_touch(ticker)
    assert (bid, ask) == (D("73369.83"), D("73369.84"))
    assert bid is not None and ask is not None
    t = ticker_from_ccxt(ticker, "BTC/USDT", bid, ask, now_ms=1)
    assert (t.last, t.volume, t.timestamp) == (D("73369.84"), D("72140.348628"), 1710328245391)
    assert ticker_from_ccxt({}, "BTC/USDT", D(1), D(3), now_ms=7).last == 2  # mid, now
    assert book_top_from_ccxt(response("fetchOrderBook")) == (
        D("42574.3"),
        D("0.0107"),
        D("42574.31"),
        D("0.0087"),
    )
    assert book_top_from_ccxt({"bids": [], "asks": None}) == (0, 0, 0, 0)
    rows = load_json("ccxt_binance_spot_response_examples.json")["methods"]["fetchOHLCV"][0]
    candles = candles_from_ccxt(rows["parsedResponse"] + [[1, None, 1, 1, 1, 1], "junk"])
    assert len(candles) == len(rows["parsedResponse"]) == 3
    assert all(isinstance(c[0], int) and isinstance(c[4], float) for c in candles)


# --------------------------------------------------------------------------- venues, options


def test_our_longest_client_id_fits_every_venue() -> None:
    """The intent's cap is ours (orders.intent), the limits are the venues': it must fit
    the strictest profile, so the router never makes an id a venue refuses."""
    assert min(v.client_id_max_len for v in VENUES.values()) >= DEFAULT_CLIENT_ID_LEN
    longest = client_order_id("f" * 100)
    assert len(longest) == DEFAULT_CLIENT_ID_LEN
    for venue in VENUES.values():
        check_client_order_id(venue, f"{venue.id} create_order", longest)


def test_venue_profiles_hold_the_quirks() -> None:
    assert SUPPORTED == tuple(VENUES) == ("binance", "mexc")
    assert (BINANCE.client_id_max_len, MEXC.client_id_max_len) == (36, 32)
    assert (BINANCE.not_found_grace_ms, MEXC.not_found_grace_ms) == (0, 3000)
    assert MEXC.create_acks_only and not BINANCE.create_acks_only
    assert (BINANCE.markets_fetcher, MEXC.markets_fetcher) == (
        "fetch_markets",
        "fetch_spot_markets",
    )
    for venue in VENUES.values():
        assert venue.order_types == {"limit", "market"}  # never stop / trigger orders
        assert venue.ccxt_options["defaultType"] == "spot"
    assert BINANCE.ccxt_options["newOrderRespType"] == {"market": "FULL", "limit": "FULL"}


def test_local_refusals_follow_the_venue_profile() -> None:
    where = "test create_order BTC/USDT"
    check_client_order_id(BINANCE, where, "f" * 36)
    check_client_order_id(MEXC, where, "f" * 32)
    for venue, too_long in ((BINANCE, 37), (MEXC, 33)):
        with pytest.raises(InvalidOrder, match=f"1..{too_long - 1} characters") as err:
            check_client_order_id(venue, where, "f" * too_long)
        assert err.value.reason == "client_order_id"
    with pytest.raises(InvalidOrder) as spaced:
        check_client_order_id(MEXC, where, "has space")
    assert spaced.value.reason == "client_order_id"
    for venue in VENUES.values():
        check_order(venue, where, "sell", "market", D(1), None, "IOC")
        with pytest.raises(InvalidOrder) as stop:
            check_order(venue, where, "buy", "stop_limit", D(1), D(1), "GTC")
        assert stop.value.reason == "order_type" and where in str(stop.value)


def test_options_resolve_the_venue_and_hide_the_secrets() -> None:
    o = CcxtOptions("mexc", api_key="k" * 20, api_secret="s" * 30)
    assert o.venue is MEXC and o.grace_ms == 3000 and o.authenticated
    assert "k" * 20 not in repr(o) and "s" * 30 not in repr(o)
    quiet = CcxtOptions("mexc", api_key=None, api_secret=None, not_found_grace_ms=0)
    assert quiet.grace_ms == 0 and not quiet.authenticated
    # every attempt timing out at its cap, three times over, plus the window and 5 s
    assert call_deadline_s(o) == 4 * (10 + 10) * 3 + 3 + 5
    with pytest.raises(ValueError, match="exchange_id"):
        CcxtOptions("kraken", api_key=None, api_secret=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry_attempts"):
        CcxtOptions("binance", api_key=None, api_secret=None, retry_attempts=0)


def test_local_urls_moves_every_api_url_and_keeps_paths() -> None:
    tree = {
        "public": "https://api.binance.com/api/v3",
        "sapi": {"v1": "https://api.binance.com/sapi/v1/", "v2": "https://x.io/sapi/v2?a=1"},
        "note": "not a url",
    }
    assert local_urls(tree, "http://127.0.0.1:9/") == {
        "public": "http://127.0.0.1:9/api/v3",
        "sapi": {"v1": "http://127.0.0.1:9/sapi/v1", "v2": "http://127.0.0.1:9/sapi/v2"},
        "note": "not a url",
    }


def test_conversions_options_and_urls_load_without_ccxt() -> None:
    """The package imports nothing itself, so backtests (which read ccxt-shaped market
    files) and configuration code do not pay for importing ccxt."""
    code = (
        "import sys\n"
        "import fsmtrader.exchange.ccxt_adapter.convert, fsmtrader.exchange.ccxt_adapter.options\n"
        "import fsmtrader.exchange.ccxt_adapter.urls, fsmtrader.runner\n"
        "assert not [m for m in sys.modules if m == 'ccxt' or m.startswith('ccxt.')]\n"
        "import fsmtrader.exchange.ccxt_adapter.sync\n"
        "assert 'ccxt' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- MEXC markets


def mexc_entry(symbol: str = "BTC/USDT") -> dict[str, Any]:
    """A raw MEXC exchangeInfo entry, rendered by the local server's MEXC flavour."""
    from fsmtrader_testing.simserver.market import build_markets
    from fsmtrader_testing.simserver.mexc import MexcWire

    spec = build_markets([symbol])[symbol]
    entry: dict[str, Any] = MexcWire()._symbol_info(spec)
    return entry


def test_mexc_raw_entry_without_unified_fields() -> None:
    """MEXC has no ``filters``: its limits are fields (issue 8 point 1 and 6)."""
    info = {
        **mexc_entry(),
        "baseAssetPrecision": 6,
        "quoteAssetPrecision": 2,
        "baseSizePrecision": "0.000001",
        "quoteAmountPrecision": "1",
        "maxQuoteAmount": "2000000",
        "quoteAmountPrecisionMarket": "2",
        "maxQuoteAmountMarket": "100000",
    }
    assert info["filters"] == []
    f = filters_from_ccxt({"symbol": "BTC/USDT", "info": info})
    assert (f.tick_size, f.step_size) == (D("0.01"), D("0.000001"))
    assert (f.min_qty, f.min_notional) == (D("0.000001"), D("1"))
    assert f.max_notional == D("2000000")
    assert (f.market_min_notional, f.market_max_notional) == (D("2"), D("100000"))
    assert (f.base, f.quote) == ("BTC", "USDT")
    # quotePrecision (deprecated) stands in when quoteAssetPrecision is missing.
    del info["quoteAssetPrecision"]
    info["quotePrecision"] = 3
    assert filters_from_ccxt({"symbol": "BTC/USDT", "info": info}).tick_size == D("0.001")
    with pytest.raises(ValueError, match=r"BTC/USDT exchangeInfo\.baseAssetPrecision"):
        filters_from_ccxt({"symbol": "BTC/USDT", "info": {**info, "baseAssetPrecision": "x"}})


def test_mexc_entry_through_a_real_ccxt_parse() -> None:
    """The server's MEXC entry parsed by ccxt's own mexc class, then read by us: the
    same filters the server's matching engine enforces."""
    import ccxt

    from fsmtrader_testing.simserver.market import build_markets

    spec = build_markets(["BTC/USDT"])["BTC/USDT"]
    client = ccxt.mexc()
    # Mocked at the wire only: ccxt's exchangeInfo request answers the server's entry.
    client.spotPublicGetExchangeInfo = lambda params={}: {"symbols": [mexc_entry()]}
    (market,) = client.fetch_spot_markets()
    f = filters_from_ccxt(market)
    sim = spec.filters
    assert (f.tick_size, f.step_size) == (sim.tick_size, sim.step_size)
    assert (f.min_qty, f.min_notional) == (sim.min_qty, sim.min_notional)
    assert f.max_notional == spec.max_notional
    assert f.market_max_notional == spec.max_notional
    assert f.maker_fee == D("0.001") and f.taker_fee == D("0.001")


def test_notional_flags_for_market_orders() -> None:
    """Binance's applyMinToMarket / applyToMarket / applyMaxToMarket decide which
    notional limits a market order meets; the fixture has them one way, flipped here."""
    markets: dict[str, Any] = load_json("ccxt_binance_spot_markets.json")["markets"]
    btc = markets["BTC/USDT"]
    other = [f for f in btc["info"]["filters"] if f["filterType"] != "NOTIONAL"]

    def with_filter(extra: dict[str, Any]) -> MarketFilters:
        # Without ccxt's unified cost limits, which would say the fixture's NOTIONAL.
        limits = {k: v for k, v in btc["limits"].items() if k != "cost"}
        info = {**btc["info"], "filters": [*other, extra]}
        return filters_from_ccxt({**btc, "limits": limits, "info": info})

    flipped = with_filter(
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": False,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": True,
            "avgPriceMins": "5",
        }
    )
    assert (flipped.min_notional, flipped.market_min_notional) == (D("5"), D("0"))
    assert flipped.max_notional == flipped.market_max_notional == D("9000000")
    old = with_filter({"filterType": "MIN_NOTIONAL", "minNotional": "10", "applyToMarket": False})
    assert (old.min_notional, old.market_min_notional, old.max_notional) == (D("10"), D("0"), None)
    kept = with_filter({"filterType": "MIN_NOTIONAL", "minNotional": "10", "applyToMarket": True})
    assert kept.market_min_notional is None  # the limit-order minimum applies to both
