"""The ccxt adapter against the local Binance/MEXC server: real ccxt, real HTTP, real signing.

Every test starts its own :mod:`fsmtrader_testing.simserver` on a free loopback port in a
background thread (its own event loop), points a real :class:`CcxtExchange` at it and
stops both afterwards. Faults are injected through the server's ``/__sim/fault`` endpoint
and the outcome is checked against the server's own record (``/__sim/state``), so "the
order exists exactly once" is the venue's word, not the adapter's.

A few pure-function tests at the end pin the error mapping for venue answers the server
does not produce (Binance -1006, connection failures, maintenance), and one test over a
stubbed ccxt client pins what the venue profile's ack-only flag changes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from itertools import pairwise
from typing import Any

import aiohttp
import pytest
from ccxt.base import errors as cx

from fsmtrader.audit import EventBus, MemorySink
from fsmtrader.clock import WallClock
from fsmtrader.errors import (
    AuthenticationFailed,
    DuplicateOrder,
    ExchangeError,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    OrderNotFound,
    RateLimited,
)
from fsmtrader.exchange.ccxt_adapter.client import AsyncCcxtExchange
from fsmtrader.exchange.ccxt_adapter.errors import (
    Op,
    Redactor,
    invalid_reason,
    map_error,
    retry_after_s,
    retryable,
    venue_error,
)
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.exchange.types import OrderInfo
from fsmtrader.orders.intent import Intent
from fsmtrader.orders.router import OrderRouter, RouterConfig
from fsmtrader.portfolio import Portfolio

from simserver_support import KEY, SECRET, Sim, running_server

BTC = "BTC/USDT"
D = Decimal

pytestmark = pytest.mark.timeout(120)


# --------------------------------------------------------------------------- harness


def adapter(sim: Sim, *, inline: bool = False, **kwargs: Any) -> CcxtExchange:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("api_secret", SECRET)
    kwargs.setdefault("timeout_ms", 3000)
    kwargs.setdefault("retry_base_s", 0.01)
    options = CcxtOptions(sim.flavour, base_url=sim.base_url, **kwargs)  # type: ignore[arg-type]
    return CcxtExchange(options, inline=inline)


@pytest.fixture
def bsim() -> Iterator[Sim]:
    with running_server("binance") as sim:
        yield sim


@pytest.fixture
def bx(bsim: Sim) -> Iterator[CcxtExchange]:
    ex = adapter(bsim)
    ex.load_markets()
    yield ex
    ex.close()


def below_market(ex: CcxtExchange, frac: str = "0.9") -> Decimal:
    bid = ex.fetch_ticker(BTC).bid
    return (bid * D(frac)).quantize(D("0.01"))


def gtc_buy(ex: CcxtExchange, coid: str, amount: str = "0.001") -> OrderInfo:
    return ex.create_order(BTC, "buy", "limit", D(amount), below_market(ex), "GTC", coid)


# --------------------------------------------------------------------------- markets, data


def test_load_markets_gives_spot_filters(bx: CcxtExchange) -> None:
    markets = bx.load_markets()
    assert set(markets) == {"BTC/USDT", "ETH/USDT"}
    f = markets[BTC]
    assert (f.tick_size, f.step_size) == (D("0.01"), D("0.00001"))
    assert (f.min_qty, f.min_notional) == (D("0.00001"), D("5"))
    assert (f.base, f.quote) == ("BTC", "USDT")
    assert markets["ETH/USDT"].step_size == D("0.0001")


def test_ticker_book_top_and_ohlcv(bx: CcxtExchange) -> None:
    t = bx.fetch_ticker(BTC)
    assert 0 < t.bid < t.ask
    assert t.symbol == BTC and t.last > 0 and t.timestamp > 0
    bid, bid_qty, ask, ask_qty = bx.fetch_order_book_top(BTC)
    assert (bid, ask) == (t.bid, t.ask)  # prices are frozen: both read the same book
    assert bid_qty > 0 and ask_qty > 0
    assert bx.fetch_order_book_top(BTC) == (bid, bid_qty, ask, ask_qty)  # the same book again
    candles = bx.fetch_ohlcv(BTC, "1m", limit=5)
    assert len(candles) == 5
    times = [c[0] for c in candles]
    assert times == sorted(times) and all(b - a == 60_000 for a, b in pairwise(times))
    for ts, o, h, lo, c, v in candles:
        assert isinstance(ts, int) and isinstance(o, float)
        assert lo <= min(o, c) <= max(o, c) <= h and v >= 0
    since = times[0] - 10 * 60_000
    older = bx.fetch_ohlcv(BTC, "1m", since=since, limit=3)
    assert [c[0] for c in older] == [since, since + 60_000, since + 120_000]


# --------------------------------------------------------------------------- orders


def test_ioc_fill_gtc_rest_lookups_cancel_trades_balances(bx: CcxtExchange, bsim: Sim) -> None:
    before = bx.fetch_balance()
    assert before["USDT"].free == D("10000") and before["BTC"].free == D("0.5")
    ask = bx.fetch_ticker(BTC).ask

    ioc = bx.create_order(BTC, "buy", "limit", D("0.001"), ask, "IOC", "fsmioc1")
    assert ioc.status == "closed" and ioc.filled == D("0.001")
    assert ioc.client_order_id == "fsmioc1" and ioc.time_in_force == "IOC"
    assert ioc.trades and sum(t.amount for t in ioc.trades) == ioc.filled
    assert ioc.cost == sum(t.price * t.amount for t in ioc.trades)
    assert ioc.fee > 0 and ioc.fee_currency == "USDT"
    assert bsim.order("fsmioc1")["status"] == "closed"  # type: ignore[index]

    gtc = gtc_buy(bx, "fsmgtc1")
    assert gtc.status == "open" and gtc.filled == 0 and gtc.time_in_force == "GTC"
    assert bx.fetch_order(gtc.id, BTC).status == "open"
    by_coid = bx.fetch_order_by_client_id("fsmgtc1", BTC)
    assert (by_coid.id, by_coid.price, by_coid.amount) == (gtc.id, gtc.price, gtc.amount)
    assert [o.id for o in bx.fetch_open_orders()] == [gtc.id]
    assert [o.client_order_id for o in bx.fetch_open_orders(BTC)] == ["fsmgtc1"]
    locked = bx.fetch_balance()["USDT"].used
    assert locked >= gtc.price * gtc.amount

    canceled = bx.cancel_order(gtc.id, BTC)
    assert canceled.status == "canceled" and canceled.client_order_id == "fsmgtc1"
    assert bx.fetch_open_orders(BTC) == []
    assert bx.fetch_balance()["USDT"].used == 0

    trades = bx.fetch_my_trades(BTC)
    assert [(t.order_id, t.client_order_id) for t in trades] == [(ioc.id, "fsmioc1")]
    assert trades[0].id == ioc.trades[0].id  # the router de-duplicates fills by this id
    assert bx.fetch_my_trades(BTC, since=trades[0].timestamp + 1) == []
    after = bx.fetch_balance()
    assert after["BTC"].free == D("0.5") + D("0.001")
    assert after["USDT"].total == D("10000") - ioc.cost - ioc.fee


def test_market_sell(bx: CcxtExchange) -> None:
    sold = bx.create_order(BTC, "sell", "market", D("0.01"), None, "IOC", "fsmmkt1")
    assert sold.order_type == "market" and sold.status == "closed"
    assert sold.filled == D("0.01") and sold.price == sold.cost / sold.filled
    assert bx.fetch_balance()["BTC"].free == D("0.49")


def test_cancel_of_a_filled_order_returns_the_fill(bx: CcxtExchange, bsim: Sim) -> None:
    gtc = gtc_buy(bx, "fsmrace1")
    # The market falls through the limit: the resting order fills before our cancel.
    bsim.price(BTC, gtc.price * D("0.98"), high=gtc.price * D("0.99"), low=gtc.price * D("0.97"))
    assert bsim.order("fsmrace1")["status"] == "closed"  # type: ignore[index]
    final = bx.cancel_order(gtc.id, BTC)
    assert final.status == "closed" and final.filled == gtc.amount
    assert final.client_order_id == "fsmrace1"


# --------------------------------------------------------------------------- error mapping


def test_filter_failures_become_invalid_order_with_reason(bx: CcxtExchange, bsim: Sim) -> None:
    price = below_market(bx)
    # Off-grid numbers are refused locally instead of letting ccxt round them.
    with pytest.raises(InvalidOrder) as tick:
        bx.create_order(BTC, "buy", "limit", D("0.001"), price + D("0.005"), "GTC", "fsmbad1")
    assert tick.value.reason == "tick"
    with pytest.raises(InvalidOrder) as step:
        bx.create_order(BTC, "buy", "limit", D("0.0010005"), price, "GTC", "fsmbad2")
    assert step.value.reason == "step"
    assert bsim.order_count() == 0
    # The venue's own filters: NOTIONAL (0.00001 BTC is far below 5 USDT).
    with pytest.raises(InvalidOrder) as notional:
        bx.create_order(BTC, "buy", "limit", D("0.00001"), price, "GTC", "fsmbad3")
    assert notional.value.reason == "min_notional"
    # PRICE_FILTER / LOT_SIZE answers as the venue words them.
    for reason in ("tick", "step"):
        bsim.fault("POST /api/v3/order", "reject", reason=reason)
        with pytest.raises(InvalidOrder) as venue:
            bx.create_order(BTC, "buy", "limit", D("0.001"), price, "GTC", f"fsmrej{reason}")
        assert venue.value.reason == reason
    assert bsim.order_count() == 0


def test_orders_we_never_send(bx: CcxtExchange) -> None:
    price = below_market(bx)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"order_type": "stop_limit"}, "order_type"),
        ({"side": "buy", "order_type": "market", "price": None}, "market_buy_not_allowed"),
        ({"client_order_id": "x" * 37}, "client_order_id"),
        ({"client_order_id": "has space"}, "client_order_id"),
        ({"price": None}, "price"),
        ({"amount": D(0)}, "amount"),
    ]
    for override, reason in cases:
        args: dict[str, Any] = {
            "symbol": BTC,
            "side": "buy",
            "order_type": "limit",
            "amount": D("0.001"),
            "price": price,
            "time_in_force": "GTC",
            "client_order_id": "fsmlocal",
            **override,
        }
        with pytest.raises(InvalidOrder) as err:
            bx.create_order(**args)
        assert err.value.reason == reason, override


def test_insufficient_funds(bx: CcxtExchange) -> None:
    ask = bx.fetch_ticker(BTC).ask
    with pytest.raises(InsufficientFunds):
        bx.create_order(BTC, "buy", "limit", D("1"), ask, "IOC", "fsmpoor1")
    with pytest.raises(InsufficientFunds):
        bx.create_order(BTC, "sell", "market", D("2"), None, "IOC", "fsmpoor2")


def test_duplicate_client_order_id(bx: CcxtExchange, bsim: Sim) -> None:
    first = gtc_buy(bx, "fsmdup1")
    with pytest.raises(DuplicateOrder):
        gtc_buy(bx, "fsmdup1")
    assert bsim.order_count() == 1
    assert bx.fetch_order_by_client_id("fsmdup1", BTC).id == first.id


def test_unknown_orders(bx: CcxtExchange) -> None:
    with pytest.raises(OrderNotFound):
        bx.fetch_order("987654", BTC)
    with pytest.raises(OrderNotFound):
        bx.fetch_order_by_client_id("fsmnosuch", BTC)
    with pytest.raises(OrderNotFound):
        bx.cancel_order("987654", BTC)


def test_rate_limited_create_is_retried_once_sent(bx: CcxtExchange, bsim: Sim) -> None:
    bsim.fault("POST /api/v3/order", "rate_limit", times=2, retry_after_s=0)
    info = gtc_buy(bx, "fsm429")
    assert info.status == "open"
    assert bsim.faults_pending() == 0  # both 429s were consumed by retries
    assert list(bsim.state()["orders"]) == ["fsm429"]  # and exactly one order exists


def test_rate_limit_beyond_the_budget_goes_back_to_the_router(bsim: Sim) -> None:
    ex = adapter(bsim, retry_attempts=3)
    try:
        ex.load_markets()
        price = below_market(ex)
        bsim.fault("POST /api/v3/order", "rate_limit", times=3, retry_after_s=0)
        with pytest.raises(RateLimited) as limited:
            ex.create_order(BTC, "buy", "limit", D("0.001"), price, "GTC", "fsm429x")
        assert limited.value.maybe_sent is False
        # A ban whose Retry-After exceeds max_wait_s is not slept on in this thread.
        bsim.fault("POST /api/v3/order", "ban", retry_after_s=60)
        started = time.monotonic()
        with pytest.raises(RateLimited) as banned:
            ex.create_order(BTC, "buy", "limit", D("0.001"), price, "GTC", "fsm418")
        assert banned.value.retry_after_s == 60
        assert time.monotonic() - started < 5
        assert bsim.order_count() == 0
    finally:
        ex.close()


@pytest.mark.parametrize("delay_s", [0.0, 1.5])
def test_lost_create_answer_is_unknown_and_never_resent(bsim: Sim, delay_s: float) -> None:
    """delay 0: the venue answers -1007 "execution status unknown"; delay 1.5 s: the
    client's 0.5 s timeout fires first. Either way the order exists and must not be sent
    again: the router resolves it by clientOrderId."""
    ex = adapter(bsim, timeout_ms=500)
    try:
        ex.load_markets()
        ask = ex.fetch_ticker(BTC).ask
        bsim.fault("POST /api/v3/order", "timeout_after", delay_s=delay_s)
        with pytest.raises(NetworkError) as lost:
            ex.create_order(BTC, "buy", "limit", D("0.001"), ask, "IOC", "fsmlost1")
        assert lost.value.maybe_sent is True
        assert not isinstance(lost.value, RateLimited)
        assert list(bsim.state()["orders"]) == ["fsmlost1"]
        found = ex.fetch_order_by_client_id("fsmlost1", BTC)
        assert found.status == "closed" and found.filled == D("0.001")
        assert bsim.order_count() == 1
    finally:
        ex.close()


def test_unavailable_create_is_not_retried(bx: CcxtExchange, bsim: Sim) -> None:
    price = below_market(bx)
    bsim.fault("POST /api/v3/order", "unavailable")
    with pytest.raises(ExchangeUnavailable) as down:
        bx.create_order(BTC, "buy", "limit", D("0.001"), price, "GTC", "fsm503")
    assert down.value.maybe_sent is True
    # A retry would have succeeded and placed the order: none exists.
    assert bsim.order("fsm503") is None


def test_reads_and_cancels_are_retried(bsim: Sim) -> None:
    ex = adapter(bsim, timeout_ms=500)
    try:
        ex.load_markets()
        bsim.fault("GET /api/v3/ticker/24hr", "timeout_before", times=2)
        assert ex.fetch_ticker(BTC).bid > 0
        bsim.fault("GET /api/v3/account", "unavailable")
        assert ex.fetch_balance()["USDT"].free == D("10000")
        gtc = gtc_buy(ex, "fsmread1")
        bsim.fault("GET /api/v3/order", "timeout_before", delay_s=1.0)  # client times out
        assert ex.fetch_order_by_client_id("fsmread1", BTC).id == gtc.id
        # A cancel whose answer is lost is sent again; the repeat finds the order
        # already canceled ("unknown order") and the adapter reads the final state.
        bsim.fault("DELETE /api/v3/order", "timeout_after")
        assert ex.cancel_order(gtc.id, BTC).status == "canceled"
        assert bsim.faults_pending() == 0
    finally:
        ex.close()


def test_wrong_secret_is_refused(bsim: Sim) -> None:
    wrong = "fsmWrongSecret00000000000000000000"
    ex = adapter(bsim, api_secret=wrong)
    try:
        ex.load_markets()  # public: works
        with pytest.raises(ExchangeError) as refused:
            ex.fetch_balance()
        assert type(refused.value) is AuthenticationFailed
        assert "authentication refused" in str(refused.value)
        assert wrong not in str(refused.value) and KEY not in str(refused.value)
        with pytest.raises(ExchangeError) as create:
            ex.create_order(BTC, "buy", "limit", D("0.001"), D("1000"), "GTC", "fsmauth1")
        assert type(create.value) is AuthenticationFailed
        assert bsim.order_count() == 0
    finally:
        ex.close()


def test_connection_refused_is_known_not_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = CcxtOptions(
        "binance",
        api_key=KEY,
        api_secret=SECRET,
        base_url=f"http://127.0.0.1:{port}",
        retry_attempts=2,
        retry_base_s=0.01,
    )
    ex = CcxtExchange(options)
    try:
        with pytest.raises(NetworkError) as refused:
            ex.fetch_ticker(BTC)
        assert refused.value.maybe_sent is False
        assert not isinstance(refused.value, ExchangeUnavailable)
    finally:
        ex.close()


def test_router_resolves_a_lost_create_by_client_order_id(bsim: Sim) -> None:
    """End to end: the real router sends through the adapter, the answer is lost, the
    order goes UNKNOWN, is found by its clientOrderId, and its fill is booked from
    my-trades. The venue holds one order."""
    ex = adapter(bsim, timeout_ms=500)
    try:
        markets = ex.load_markets()
        clock = WallClock()
        bus = EventBus()
        sink = MemorySink()
        bus.subscribe(sink)
        portfolio = Portfolio(quote="USDT", cash=D("1000"))
        router = OrderRouter(ex, portfolio, markets, clock, bus, RouterConfig())
        ask = ex.fetch_ticker(BTC).ask
        it = Intent.create(
            decision_id="BTCUSDT-1-entry",
            symbol=BTC,
            side="buy",
            amount=D("0.001"),
            limit_price=ask,
            ref_price=ask,
            max_slippage_bps=D(50),
            time_in_force="IOC",
            leg=0,
            created_ms=clock.now_ms(),
        )
        bsim.fault("POST /api/v3/order", "timeout_after", delay_s=1.0)
        rec = router.submit(it)
        path = [r["state"] for r in sink.of_kind("order")]
        assert "UNKNOWN" in path and rec.state.value == "RECONCILED"
        assert rec.filled == D("0.001") and len(rec.seen_trades) == 1
        assert list(bsim.state()["orders"]) == [rec.client_order_id]
        assert portfolio.positions[BTC].qty == D("0.001")
    finally:
        ex.close()


# --------------------------------------------------------------------------- MEXC


@pytest.fixture
def msim() -> Iterator[Sim]:
    with running_server(
        "mexc", quirks={"order_not_found_after_create"}, not_found_window_ms=800
    ) as sim:
        yield sim


def test_mexc_happy_path_and_not_found_quirk(msim: Sim) -> None:
    ex = adapter(msim)  # MEXC's default not-found grace: 3000 ms
    try:
        markets = ex.load_markets()
        assert markets[BTC].tick_size == D("0.01") and markets[BTC].step_size == D("0.00001")
        assert markets[BTC].min_notional == D("5")
        ask = ex.fetch_ticker(BTC).ask
        # MEXC's create answer has no state; the follow-up read meets "Order does not
        # exist" for 800 ms (ccxt #21614) and is retried inside the grace window.
        ioc = ex.create_order(BTC, "buy", "limit", D("0.001"), ask, "IOC", "fsmmexc1")
        assert ioc.status == "closed" and ioc.filled == D("0.001")
        assert ioc.client_order_id == "fsmmexc1"
        gtc = gtc_buy(ex, "fsmmexc2")
        assert gtc.status == "open" and gtc.id.startswith("C02__")
        assert ex.fetch_order_by_client_id("fsmmexc2", BTC).id == gtc.id
        assert [o.id for o in ex.fetch_open_orders(BTC)] == [gtc.id]
        # Refused while fsmmexc2 is open (after its cancel the id may be used again:
        # unique among open orders, the simulator's rule since issue 8).
        with pytest.raises(DuplicateOrder):
            gtc_buy(ex, "fsmmexc2")
        assert ex.cancel_order(gtc.id, BTC).status == "canceled"
        trades = ex.fetch_my_trades(BTC)
        assert [(t.order_id, t.client_order_id) for t in trades] == [(ioc.id, "fsmmexc1")]
        assert trades[0].fee > 0 and trades[0].fee_currency == "USDT"
        assert ex.fetch_balance()["BTC"].free == D("0.501")
        with pytest.raises(InsufficientFunds):
            ex.create_order(BTC, "buy", "limit", D("1"), ask, "IOC", "fsmmexc3")
        with pytest.raises(InvalidOrder) as small:
            ex.create_order(BTC, "buy", "limit", D("0.00001"), ask, "IOC", "fsmmexc4")
        assert small.value.reason == "min_notional"
        with pytest.raises(InvalidOrder) as long_id:
            gtc_buy(ex, "f" * 33)  # MEXC allows 32 characters, Binance 36
        assert long_id.value.reason == "client_order_id"
        msim.fault("POST /api/v3/order", "rate_limit", retry_after_s=0)
        assert gtc_buy(ex, "fsmmexc5").status == "open"
        with pytest.raises(OrderNotFound):
            ex.fetch_order_by_client_id("fsmnosuch", BTC)
        assert set(msim.state()["orders"]) == {"fsmmexc1", "fsmmexc2", "fsmmexc5"}
    finally:
        ex.close()


def test_mexc_quirk_is_real_without_the_grace_window(msim: Sim) -> None:
    ex = adapter(msim, not_found_grace_ms=0)
    try:
        ex.load_markets()
        info = gtc_buy(ex, "fsmmexc9")
        # Without the window the follow-up read fails: the ack is reported as open.
        assert info.status == "open" and info.client_order_id == "fsmmexc9"
        with pytest.raises(OrderNotFound):
            ex.fetch_order_by_client_id("fsmmexc9", BTC)
        time.sleep(1.0)
        assert ex.fetch_order_by_client_id("fsmmexc9", BTC).id == info.id
    finally:
        ex.close()


def test_mexc_ioc_returned_open_is_reported_as_open() -> None:
    with running_server("mexc", quirks={"ioc_returns_open"}) as sim:
        ex = adapter(sim)
        try:
            ex.load_markets()
            price = below_market(ex)
            info = ex.create_order(BTC, "buy", "limit", D("0.001"), price, "IOC", "fsmioc9")
            # ccxt #25003: the venue keeps the IOC resting; we say so, the engine cancels.
            assert info.status == "open"
            assert ex.cancel_order(info.id, BTC).status == "canceled"
        finally:
            ex.close()


# --------------------------------------------------------------------------- secrets


def test_secrets_never_reach_logs_errors_or_reprs(
    bsim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "fsmOtherSecretQwErTy123456789000"
    errors: list[BaseException] = []
    ex = adapter(bsim, timeout_ms=500)
    bad = adapter(bsim, api_secret=wrong)
    try:
        ex.load_markets()
        ex.fetch_balance()
        gtc = gtc_buy(ex, "fsmsecret1")
        ex.cancel_order(gtc.id, BTC)
        bsim.fault("POST /api/v3/order", "timeout_after", delay_s=1.0)
        bsim.fault("GET /api/v3/openOrders", "rate_limit", retry_after_s=0)
        ex.fetch_open_orders()
        for call in (
            lambda: gtc_buy(ex, "fsmsecret2"),
            lambda: ex.create_order(BTC, "buy", "limit", D("5"), D("90000"), "GTC", "fsmsecret3"),
            lambda: ex.fetch_order("424242", BTC),
            lambda: bad.fetch_balance(),
        ):
            with pytest.raises(ExchangeError) as err:
                call()
            errors.append(err.value)
        reprs = [repr(ex), repr(ex.core), repr(bad), str(ex)]
    finally:
        ex.close()
        bad.close()

    wire = [r for r in caplog.records if r.name.startswith("fsmtrader.exchange.ccxt.wire")]
    assert wire, "ccxt's DEBUG request lines should have been captured"
    texts = [r.getMessage() for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    for exc in errors:
        chain: BaseException | None = exc
        while chain is not None:
            texts += [str(chain), repr(chain)]
            chain = chain.__cause__ or chain.__context__
    texts += reprs
    blob = "\n".join(texts)
    for secret in (KEY, SECRET, wrong):
        assert secret not in blob
    assert "signature=" not in blob.replace("signature=<redacted>", "")


# --------------------------------------------------------------------------- async callers


def test_async_callers_submit_core_coroutines_from_another_loop(
    bx: CcxtExchange, bsim: Sim
) -> None:
    core = bx.core

    async def main() -> tuple[Decimal, OrderInfo, OrderInfo]:
        ticker = await bx.submit(core.fetch_ticker(BTC))
        price = (ticker.bid * D("0.9")).quantize(D("0.01"))
        placed = await bx.submit(
            core.create_order(BTC, "buy", "limit", D("0.001"), price, "GTC", "fsmasync")
        )
        fetched, _ = await asyncio.gather(
            bx.submit(core.fetch_order_by_client_id("fsmasync", BTC)),
            bx.submit(core.fetch_balance()),
        )
        await bx.submit(core.cancel_order(placed.id, BTC))
        return ticker.bid, placed, fetched

    bid, placed, fetched = asyncio.run(main())
    assert bid > 0 and placed.id == fetched.id
    assert bsim.order("fsmasync")["status"] == "canceled"  # type: ignore[index]


# --------------------------------------------------------------------------- pure mapping


def _mapped(exc: Exception, op: Op = Op.CREATE, **kw: Any) -> ExchangeError:
    return map_error(exc, venue="binance", op=op, action="test", redactor=Redactor([KEY]), **kw)


def test_error_table_for_answers_the_server_does_not_give() -> None:
    dup = _mapped(cx.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'))
    assert isinstance(dup, DuplicateOrder)
    unknown = _mapped(cx.OperationFailed('binance {"code":-1006,"msg":"Unexpected response"}'))
    assert isinstance(unknown, NetworkError) and unknown.maybe_sent
    assert not retryable(unknown, Op.CREATE) and retryable(unknown, Op.READ)
    upkeep = _mapped(cx.OnMaintenance("binance System is under maintenance."))
    assert isinstance(upkeep, ExchangeUnavailable) and not upkeep.maybe_sent
    assert not retryable(upkeep, Op.CREATE)
    refused = cx.ExchangeNotAvailable("binance GET http://127.0.0.1:1/api/v3/order")
    refused.__cause__ = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None),
        ConnectionRefusedError(111, "refused"),
    )
    not_sent = _mapped(refused)
    assert isinstance(not_sent, NetworkError) and not not_sent.maybe_sent
    assert retryable(not_sent, Op.CREATE)
    dropped = _mapped(cx.ExchangeNotAvailable("binance POST http://x/api/v3/order 502"))
    assert isinstance(dropped, ExchangeUnavailable) and dropped.maybe_sent
    limited = _mapped(cx.RateLimitExceeded("binance 429"), retry_after=2.5)
    assert isinstance(limited, RateLimited) and limited.retry_after_s == 2.5
    assert retryable(limited, Op.CREATE)
    mexc_gone = _mapped(cx.BadRequest('mexc {"code":-2011,"msg":"Unknown order sent."}'))
    assert isinstance(mexc_gone, OrderNotFound)
    mexc_key = _mapped(cx.BadRequest('mexc {"code":10072,"msg":"Api key info invalid"}'))
    assert type(mexc_key) is AuthenticationFailed and "authentication" in str(mexc_key)
    parse_bug = _mapped(KeyError("price"))
    assert isinstance(parse_bug, NetworkError) and parse_bug.maybe_sent
    assert type(_mapped(KeyError("price"), Op.READ)) is ExchangeError


def test_reasons_codes_headers_and_redaction() -> None:
    assert invalid_reason("Filter failure: PRICE_FILTER") == "tick"
    assert invalid_reason("Filter failure: LOT_SIZE") == "step"
    assert invalid_reason("Filter failure: MIN_NOTIONAL") == "min_notional"
    assert invalid_reason("Filter failure: NOTIONAL") == "min_notional"
    assert invalid_reason("Filter failure: PERCENT_PRICE_BY_SIDE") == "percent_price"
    assert invalid_reason("Filter failure: PERCENT_PRICE") == "percent_price"
    assert invalid_reason("Filter failure: MARKET_LOT_SIZE") == "market_lot_size"
    assert invalid_reason("Filter failure: LOT_SIZE") == "step"
    text = "The minimum transaction volume cannot be less than:5USDT"
    assert invalid_reason(text, "USDT") == "min_notional"
    assert invalid_reason(text.replace("5USDT", "0.0001BTC"), "USDT") == "min_qty"
    assert invalid_reason("something else") == "invalid"
    assert venue_error('binance {"code":-2013,"msg":"Order does not exist."}') == (
        "-2013",
        "Order does not exist.",
    )
    assert venue_error("binance GET http://x 503 <html>{oops</html>") == (None, None)
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_s({"Content-Type": "x"}) is None
    r = Redactor([KEY, SECRET, None, ""])
    leaky = (
        f"binance POST http://h/api/v3/order?symbol=BTCUSDT&signature=abc123 "
        f"{{'X-MBX-APIKEY': '{KEY}'}} {SECRET}"
    )
    clean = r.redact(leaky)
    assert KEY not in clean and SECRET not in clean and "abc123" not in clean
    assert "symbol=BTCUSDT" not in clean and "http://h/api/v3/order" in clean
    assert KEY not in repr(r) and SECRET not in repr(r)
    timeout = _mapped(cx.RequestTimeout(f"binance POST http://h/api/v3/order?signature=ff {KEY}"))
    assert KEY not in str(timeout) and "signature=ff" not in str(timeout)


@pytest.mark.parametrize(
    ("venue", "status", "calls"),
    [
        ("binance", "open", ["create"]),
        ("mexc", "closed", ["create", "fetch"]),
    ],
)
def test_ack_only_venues_read_the_order_after_create(
    venue: str, status: str, calls: list[str]
) -> None:
    """VenueProfile.create_acks_only decides, not the answer's shape: MEXC's create answer
    is read again even when it carries a status; Binance's FULL answer is taken as is.
    The ccxt client's two order calls are stubbed (no server: only the profile differs)."""
    seen: list[str] = []
    answer: dict[str, Any] = {"id": "1", "side": "buy", "amount": 0.001, "price": 90000}

    async def create(*_: Any) -> dict[str, Any]:
        seen.append("create")
        return {**answer, "status": "open"}

    async def fetch(*_: Any) -> dict[str, Any]:
        seen.append("fetch")
        return {**answer, "status": "closed", "filled": 0.001}

    async def main() -> OrderInfo:
        core = AsyncCcxtExchange(CcxtOptions(venue, api_key=None, api_secret=None))  # type: ignore[arg-type]
        market = {
            "id": "BTCUSDT",
            "symbol": BTC,
            "base": "BTC",
            "quote": "USDT",
            "spot": True,
            "linear": None,
            "inverse": None,
            "precision": {"price": 0.01, "amount": 0.00001},
        }
        core._client.set_markets([market])
        core._markets_loaded = True  # installed above instead of loaded from a venue
        core._client.create_order, core._client.fetch_order = create, fetch
        try:
            return await core.create_order(BTC, "buy", "limit", D("0.001"), D("90000"), "IOC", "c1")
        finally:
            await core.close()

    assert asyncio.run(main()).status == status
    assert seen == calls


def test_inline_mode_trades_on_the_calling_thread(bsim: Sim) -> None:
    """inline=True (what the synchronous engine uses): no loop thread, same behaviour;
    submit() (for async callers) refuses clearly instead of deadlocking."""
    import threading

    before = threading.active_count()
    ex = adapter(bsim, inline=True)
    try:
        assert threading.active_count() == before  # no loop thread was started
        markets = ex.load_markets()
        assert markets[BTC].tick_size == D("0.01")
        ask = ex.fetch_ticker(BTC).ask
        info = ex.create_order(BTC, "buy", "limit", D("0.001"), ask, "IOC", "inline-1")
        again = ex.fetch_order_by_client_id("inline-1", BTC)
        assert again.id == info.id and again.filled == info.filled > 0
        with pytest.raises(RuntimeError, match="inline"):
            asyncio.run(ex.submit(ex.core.fetch_order(info.id, BTC)))
    finally:
        ex.close()
    ex.close()  # idempotent
