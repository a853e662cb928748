"""The simulated exchange server, driven by the REAL ccxt clients (binance and mexc) with
only their base URLs pointed at it: ccxt's own signing, parsing and error mapping run.

Every test starts its own server on a free loopback port and closes clients and server
in ``finally``; no pytest plugin is needed (each test body runs under ``asyncio.run``).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import hashlib
import hmac
import itertools
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import aiohttp
import ccxt
import ccxt.async_support as ccxta
import pytest
from ccxt.base import errors as cx

from fsmtrader.exchange.ccxt_adapter.market_filters import filters_from_ccxt
from fsmtrader.exchange.ccxt_adapter.urls import local_urls
from fsmtrader_testing.simserver import QUIRKS, create_app, serve, start_server
from fsmtrader_testing.simserver.client import CCXT_OPTIONS, point_ccxt_at
from fsmtrader_testing.simserver.market import build_market

from conftest import shared_file

KEY = "sim-api-key"
SECRET = "sim-api-secret"
MIN = 60_000


def arun(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body with asyncio.run (no pytest plugin)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


@dataclass
class Sim:
    """A running server plus helpers: ccxt clients and the /__sim control endpoints."""

    flavour: str
    base: str
    http: aiohttp.ClientSession
    clients: list[Any] = field(default_factory=list)

    def client(self, **overrides: Any) -> Any:
        cfg = ccxt_config(
            self.flavour,  # type: ignore[arg-type]
            self.base,
            api_key=KEY,
            api_secret=SECRET,
            timeout_ms=2000,
            rate_limit=False,
        )
        cfg["timeout_on_exit"] = 0  # plain http: no TLS close to wait for in close()
        options = overrides.pop("options", {})
        cfg.update(overrides)
        cfg["options"].update(options)
        ex = getattr(ccxta, self.flavour)(cfg)
        self.clients.append(ex)
        return ex

    async def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body) as r:
            return r.status, await r.json(content_type=None)

    async def fault(self, **body: Any) -> None:
        status, answer = await self.control("POST", "/__sim/fault", body)
        assert status == 200, answer

    async def price(self, symbol: str, price: str, **extra: Any) -> dict[str, Any]:
        status, answer = await self.control(
            "POST", "/__sim/price", {"symbol": symbol, "price": price, **extra}
        )
        assert status == 200, answer
        return dict(answer)

    async def state(self) -> dict[str, Any]:
        status, answer = await self.control("GET", "/__sim/state")
        assert status == 200
        return dict(answer)

    async def raw(
        self, method: str, path: str, *, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        async with self.http.request(method, self.base + path, headers=headers) as r:
            text = await r.text()
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            return r.status, body, dict(r.headers)


@asynccontextmanager
async def running(flavour: str = "binance", **kwargs: Any) -> AsyncIterator[Sim]:
    kwargs.setdefault("speed", 0.0)  # frozen prices unless a test moves them
    app = create_app(flavour=flavour, api_key=KEY, api_secret=SECRET, **kwargs)  # type: ignore[arg-type]
    runner, port = await start_server(app)
    http = aiohttp.ClientSession()
    sim = Sim(flavour, f"http://127.0.0.1:{port}", http)
    try:
        yield sim
    finally:
        for ex in sim.clients:
            await ex.close()
        await http.close()
        await runner.cleanup()


async def place(ex: Any, side: str, amount: float, price: float, cid: str, **params: Any) -> Any:
    return await ex.create_order(
        "BTC/USDT", "limit", side, amount, price, {"clientOrderId": cid, **params}
    )


async def place_on(ex: Any, symbol: str, price: float, cid: str, **params: Any) -> Any:
    return await ex.create_order(
        symbol, "limit", "buy", 0.1, price, {"clientOrderId": cid, **params}
    )


# ---------------------------------------------------------------------------- markets


@arun
async def test_binance_load_markets_gives_real_filters() -> None:
    async with running() as sim:
        ex = sim.client()
        markets = await ex.load_markets()
        btc = markets["BTC/USDT"]
        assert btc["spot"] is True and btc["active"] is True
        assert btc["precision"]["price"] == 0.01
        assert btc["precision"]["amount"] == 0.00001
        assert btc["limits"]["cost"]["min"] == 5
        assert btc["limits"]["amount"]["min"] == 0.00001
        f = filters_from_ccxt(btc)
        assert (f.tick_size, f.step_size, f.min_qty, f.min_notional) == (
            Decimal("0.01"),
            Decimal("0.00001"),
            Decimal("0.00001"),
            Decimal("5"),
        )
        eth = filters_from_ccxt(markets["ETH/USDT"])
        assert (eth.tick_size, eth.step_size) == (Decimal("0.01"), Decimal("0.0001"))
        # ccxt's own rounding uses the TICK_SIZE precision it parsed
        assert ex.price_to_precision("BTC/USDT", 95000.123) == "95000.12"
        assert ex.amount_to_precision("BTC/USDT", 0.0007856509959147719) == "0.00078"
        assert set(btc["info"]["orderTypes"]) == {
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS_LIMIT",  # executed: the protective stop
        }


@arun
async def test_default_ccxt_clients_load_markets_without_special_options() -> None:
    """A client with only its URLs repointed (no options) still loads: the server
    answers sapi currencies/margin pairs, futures exchangeInfo and MEXC contracts."""
    for flavour in ("binance", "mexc"):
        async with running(flavour) as sim:
            cfg = {"apiKey": KEY, "secret": SECRET, "enableRateLimit": False}
            ex = getattr(ccxta, flavour)({**cfg, "timeout_on_exit": 0})
            sim.clients.append(ex)
            point_ccxt_at(ex, sim.base)  # every API URL, path kept, now local
            assert all(u.startswith(sim.base) for u in _leaves(ex.urls["api"]))
            markets = await ex.load_markets()
            assert set(markets) == {"BTC/USDT", "ETH/USDT"}
            assert "BTC" in ex.currencies
    assert local_urls({"sapi": "https://api.binance.com/sapi/v1"}, "http://h:1") == {
        "sapi": "http://h:1/sapi/v1"
    }


def _leaves(tree: Any) -> list[str]:
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in _leaves(v)]
    return [tree] if isinstance(tree, str) else []


def test_embedded_filters_match_the_shared_binance_fixture() -> None:
    path = shared_file("ccxt_binance_spot_markets.json")
    derived = json.loads(path.read_text())["derived"]
    for symbol, d in derived.items():
        f = build_market(symbol).filters
        assert f.tick_size == Decimal(d["tick_size"]), symbol
        assert f.step_size == Decimal(d["step_size"]), symbol
        assert f.min_qty == Decimal(d["min_qty"]), symbol
        assert f.min_notional == Decimal(d["min_notional"]), symbol


@arun
async def test_markets_file_supplies_raw_exchange_info() -> None:
    path = shared_file("ccxt_binance_spot_markets.json")
    async with running(markets_file=path, symbols=("BTC/USDT", "DOGE/USDT")) as sim:
        ex = sim.client()
        markets = await ex.load_markets()
        doge = filters_from_ccxt(markets["DOGE/USDT"])
        assert (doge.tick_size, doge.step_size) == (Decimal("0.00001"), Decimal("1"))
        info = markets["BTC/USDT"]["info"]
        assert "STOP_LOSS_LIMIT" in info["orderTypes"]  # executed here (kept from the file)
        assert "TAKE_PROFIT_LIMIT" not in info["orderTypes"]  # in the file, not executed here
        assert info["permissionSets"][0][0] == "SPOT"


# ---------------------------------------------------------------------------- market data


@arun
async def test_binance_market_data_ticker_book_and_klines_with_history() -> None:
    async with running() as sim:
        ex = sim.client()
        now = await ex.fetch_time()
        assert abs(now - time.time() * 1000) < 5000
        t = await ex.fetch_ticker("BTC/USDT")
        assert 0 < t["bid"] < t["ask"] and t["last"] > 0
        assert t["high"] >= t["low"] > 0 and t["baseVolume"] > 0
        book = await ex.fetch_order_book("BTC/USDT", 5)
        assert len(book["bids"]) == 5 and len(book["asks"]) == 5
        assert book["bids"][0][0] == t["bid"] and book["asks"][0][0] == t["ask"]
        assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
        # two days of 1m history before start-up: a warm-up backfill works
        since = now - now % MIN - 36 * 60 * MIN
        bars = await ex.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=1000)
        assert len(bars) == 1000 and bars[0][0] == since
        assert all(b[0] - a[0] == MIN for a, b in itertools.pairwise(bars))
        assert all(row[3] <= min(row[1], row[4]) <= max(row[1], row[4]) <= row[2] for row in bars)
        until = since + 9 * MIN
        window = await ex.fetch_ohlcv("BTC/USDT", "1m", since=since, params={"until": until})
        assert [b[0] for b in window] == [since + i * MIN for i in range(10)]
        hourly = await ex.fetch_ohlcv("BTC/USDT", "1h", limit=5)
        assert len(hourly) == 5 and all(b[0] % (60 * MIN) == 0 for b in hourly)
        latest = await ex.fetch_ohlcv("BTC/USDT", "1m", limit=2)
        assert latest[-1][0] == now - now % MIN
        assert latest[-1][4] == t["last"]


@arun
async def test_raw_klines_shape_limits_and_errors() -> None:
    async with running() as sim:
        status, rows, headers = await sim.raw(
            "GET", "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1500"
        )
        assert status == 200 and len(rows) == 1000  # Binance's max
        assert "X-MBX-USED-WEIGHT-1M" in headers
        row = rows[-1]
        assert len(row) == 12 and isinstance(row[0], int) and isinstance(row[1], str)
        assert row[6] == row[0] + MIN - 1 and row[1].count(".") == 1
        end = rows[10][0]
        status, rows2, _ = await sim.raw(
            "GET", f"/api/v3/klines?symbol=BTCUSDT&interval=1m&endTime={end}&limit=3"
        )
        assert [r[0] for r in rows2] == [end - 2 * MIN, end - MIN, end]
        status, body, _ = await sim.raw("GET", "/api/v3/klines?symbol=BTCUSDT&interval=7m")
        assert (status, body["code"]) == (400, -1120)
        status, body, _ = await sim.raw("GET", "/api/v3/klines?symbol=NOPE&interval=1m")
        assert (status, body["code"]) == (400, -1121)


@arun
async def test_prices_move_with_speed_and_resting_orders_fill_over_time() -> None:
    async with running(speed=6000.0) as sim:  # 100 synthetic minutes per wall second
        ex = sim.client()
        first = second = (await ex.fetch_ticker("BTC/USDT"))["last"]
        deadline = time.monotonic() + 5
        while second == first:
            assert time.monotonic() < deadline, "the price never moved"
            await asyncio.sleep(0.1)
            second = (await ex.fetch_ticker("BTC/USDT"))["last"]
        # a buy resting just under the market fills as the market wanders down: hold the
        # price while placing it (so it cannot cross at once), then let the driver go
        held = await sim.price("BTC/USDT", str(second))
        o = await place(ex, "buy", 0.001, round(float(held["bid"]) * 0.998, 2), "rest-1")
        assert o["status"] == "open"
        status, _ = await sim.control("POST", "/__sim/price", {"symbol": "BTCUSDT", "hold": False})
        assert status == 200
        deadline = time.monotonic() + 10
        while (await ex.fetch_order(o["id"], "BTC/USDT"))["status"] == "open":
            assert time.monotonic() < deadline, "the resting order never filled"
            await asyncio.sleep(0.1)
        trades = await ex.fetch_my_trades("BTC/USDT")
        assert trades[-1]["takerOrMaker"] == "maker"


# ---------------------------------------------------------------------------- trading


@arun
async def test_binance_trading_happy_path() -> None:
    async with running() as sim:
        ex = sim.client()
        await ex.load_markets()
        t = await ex.fetch_ticker("BTC/USDT")
        ask, bid = t["ask"], t["bid"]

        ioc = await place(ex, "buy", 0.002, ask * 1.002, "ioc-1", timeInForce="IOC")
        assert ioc["status"] == "closed" and ioc["filled"] == 0.002
        assert ioc["clientOrderId"] == "ioc-1" and ioc["timeInForce"] == "IOC"
        assert len(ioc["trades"]) >= 1 and ioc["fee"]["currency"] == "USDT"

        # an IOC that cannot fill expires (Binance says EXPIRED)
        dead = await place(ex, "buy", 0.001, round(bid * 0.95, 2), "ioc-2", timeInForce="IOC")
        assert dead["status"] == "expired" and dead["filled"] == 0

        low = round(bid * 0.98, 2)
        gtc = await place(ex, "buy", 0.001, low, "gtc-1")
        assert gtc["status"] == "open" and gtc["id"]
        by_id = await ex.fetch_order(gtc["id"], "BTC/USDT")
        by_cid = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "gtc-1"})
        assert by_id["id"] == by_cid["id"] == gtc["id"] and by_cid["clientOrderId"] == "gtc-1"
        also = await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "gtc-1"})
        assert also["id"] == gtc["id"]
        opens = await ex.fetch_open_orders("BTC/USDT")
        assert [o["clientOrderId"] for o in opens] == ["gtc-1"]

        # the market trades through the limit: the resting buy fills as maker, at its limit
        await sim.price("BTC/USDT", str(round(low * 0.999, 2)))
        filled = await ex.fetch_order(gtc["id"], "BTC/USDT")
        assert filled["status"] == "closed" and filled["average"] == low

        gtc2 = await place(ex, "sell", 0.001, round(ask * 1.05, 2), "gtc-2")
        canceled = await ex.cancel_order(gtc2["id"], "BTC/USDT")
        assert canceled["status"] == "canceled"
        assert canceled["info"]["origClientOrderId"] == "gtc-2"
        with pytest.raises(cx.OrderNotFound):  # Binance: -2011 for a final order
            await ex.cancel_order(gtc2["id"], "BTC/USDT")
        gtc3 = await place(ex, "sell", 0.001, round(ask * 1.06, 2), "gtc-3")
        by_cid_cancel = await ex.cancel_order(None, "BTC/USDT", {"clientOrderId": "gtc-3"})
        assert by_cid_cancel["id"] == gtc3["id"] and by_cid_cancel["status"] == "canceled"

        sold = await ex.create_order(
            "BTC/USDT", "market", "sell", 0.001, None, {"clientOrderId": "mkt-1"}
        )
        assert sold["status"] == "closed" and sold["type"] == "market" and sold["average"] > 0

        mine = await ex.fetch_my_trades("BTC/USDT")
        assert {tr["order"] for tr in mine} == {ioc["id"], gtc["id"], sold["id"]}
        balance = await ex.fetch_balance()
        state = await sim.state()
        assert set(state["orders"]) == {"ioc-1", "ioc-2", "gtc-1", "gtc-2", "gtc-3", "mkt-1"}
        for asset in ("BTC", "USDT"):
            assert Decimal(str(balance[asset]["free"])) == Decimal(state["balances"][asset]["free"])
        assert balance["BTC"]["total"] == pytest.approx(0.5 + 0.002 + 0.001 - 0.001)
        all_orders = await ex.fetch_orders("BTC/USDT")
        assert [o["clientOrderId"] for o in all_orders][:2] == ["ioc-1", "ioc-2"]


@arun
async def test_binance_post_only_that_would_take_is_rejected() -> None:
    async with running() as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        with pytest.raises(cx.OrderImmediatelyFillable):
            await place(ex, "buy", 0.001, t["ask"], "po-1", postOnly=True)
        ok = await place(ex, "buy", 0.001, round(t["bid"] * 0.99, 2), "po-2", postOnly=True)
        assert ok["status"] == "open" and ok["postOnly"] is True


@arun
async def test_binance_order_errors_map_to_ccxt_classes() -> None:
    async with running() as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        bid = round(t["bid"] * 0.98, 2)
        # Filter failure: NOTIONAL is -1013, which ccxt maps to BadRequest
        with pytest.raises(cx.BadRequest, match="Filter failure: NOTIONAL"):
            await place(ex, "buy", 0.00002, bid, "tiny")
        with pytest.raises(cx.InsufficientFunds):
            await place(ex, "buy", 1.0, bid, "too-big")
        with pytest.raises(cx.InsufficientFunds):
            await place(ex, "sell", 2.0, round(t["ask"] * 1.1, 2), "too-big-sell")
        await place(ex, "buy", 0.001, bid, "dup")
        with pytest.raises(cx.InvalidOrder, match="Duplicate order sent"):
            await place(ex, "buy", 0.001, bid, "dup")
        with pytest.raises(cx.OrderNotFound):
            await ex.fetch_order("999999", "BTC/USDT")
        with pytest.raises(cx.OrderNotFound):
            await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "never-sent"})
        with pytest.raises(cx.OrderNotFound):
            await ex.cancel_order("999999", "BTC/USDT")
        with pytest.raises(cx.BadRequest, match="Illegal characters"):
            await place(ex, "buy", 0.001, bid, "x" * 37)
        # filter failures ccxt's own rounding never produces, injected
        await sim.fault(endpoint="POST /api/v3/order", kind="reject", reason="tick")
        with pytest.raises(cx.InvalidOrder, match="PRICE_FILTER"):
            await place(ex, "buy", 0.001, bid, "tick-1")
        await sim.fault(endpoint="POST /api/v3/order", kind="reject", reason="step")
        with pytest.raises(cx.InvalidOrder, match="LOT_SIZE"):
            await place(ex, "buy", 0.001, bid, "step-1")
        assert "tick-1" not in (await sim.state())["orders"]


@pytest.mark.parametrize(("flavour", "longest"), [("binance", 36), ("mexc", 32)])
@arun
async def test_client_order_id_length_limit_is_the_venues(flavour: str, longest: int) -> None:
    """Each venue's clientOrderId rule (DESIGN invariant 12): the longest legal id is taken,
    one more character is refused with the venue's own legal range in the message."""
    async with running(flavour) as sim:
        ex = sim.client()
        bid = round((await ex.fetch_ticker("BTC/USDT"))["bid"] * 0.98, 2)
        await place(ex, "buy", 0.001, bid, "a" * longest)
        assert "a" * longest in (await sim.state())["orders"]
        with pytest.raises(cx.BadRequest) as refused:
            await place(ex, "buy", 0.001, bid, "b" * (longest + 1))
        body = json.loads(str(refused.value).removeprefix(flavour))
        legal = r"^[\.A-Z\:/a-z0-9_-]{1,LEN}$".replace("LEN", str(longest))
        assert body["msg"].endswith(f"legal range is '{legal}'.")


@arun
async def test_binance_signature_timestamp_and_key_are_verified() -> None:
    async with running() as sim:
        good = sim.client()
        assert (await good.fetch_balance())["USDT"]["free"] == 10_000
        with pytest.raises(cx.AuthenticationError, match="-1022"):
            await sim.client(secret="wrong-secret").fetch_balance()
        with pytest.raises(cx.AuthenticationError, match="-2015"):
            await sim.client(apiKey="wrong-key").fetch_balance()
        stale = sim.client(options={"timeDifference": 120_000})  # signs 2 minutes late
        with pytest.raises(cx.InvalidNonce, match="recvWindow"):
            await stale.fetch_balance()
        ahead = sim.client(options={"timeDifference": -5_000})
        with pytest.raises(cx.InvalidNonce, match="ahead"):
            await ahead.fetch_balance()
        # -1131 is in ccxt's spot-URL table only, so over http it stays an ExchangeError
        with pytest.raises(cx.ExchangeError, match="-1131"):
            await sim.client(options={"recvWindow": 70_000}).fetch_balance()
        status, body, _ = await sim.raw("GET", "/api/v3/account?timestamp=1&signature=00")
        assert (status, body["code"]) == (401, -2014)
        status, body, _ = await sim.raw(
            "GET", "/api/v3/account?timestamp=1", headers={"X-MBX-APIKEY": KEY}
        )
        assert (status, body["code"]) == (400, -1102)


# ---------------------------------------------------------------------------- faults


@arun
async def test_rate_limit_and_ban_faults() -> None:
    async with running() as sim:
        ex = sim.client()
        await sim.fault(endpoint="GET /api/v3/account", kind="rate_limit", retry_after_s=7)
        with pytest.raises(cx.DDoSProtection):  # ccxt binance: any 429/418
            await ex.fetch_balance()
        assert ex.last_response_headers["Retry-After"] == "7"
        assert (await ex.fetch_balance())["BTC"]["free"] == 0.5  # one-shot
        await sim.fault(endpoint="GET /api/v3/ticker/24hr", kind="ban", retry_after_s=120)
        with pytest.raises(cx.DDoSProtection, match="418"):
            await ex.fetch_ticker("BTC/USDT")
        assert ex.last_response_headers["Retry-After"] == "120"
    async with running("mexc") as sim:
        ex = sim.client()
        await sim.fault(endpoint="GET /api/v3/account", kind="rate_limit", retry_after_s=3)
        with pytest.raises(cx.RateLimitExceeded):
            await ex.fetch_balance()
        assert ex.last_response_headers["Retry-After"] == "3"


@arun
async def test_timeout_after_creates_the_order_but_the_client_cannot_know() -> None:
    async with running() as sim:
        ex = sim.client(timeout=500)
        t = await ex.fetch_ticker("BTC/USDT")
        price = round(t["bid"] * 0.97, 2)
        # the server performs the order, then stalls past the client's 500 ms timeout
        await sim.fault(endpoint="POST /api/v3/order", kind="timeout_after", delay_s=0.8)
        with pytest.raises(cx.RequestTimeout):
            await place(ex, "buy", 0.001, price, "lost-1")
        found = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "lost-1"})
        assert found["status"] == "open"
        assert (await sim.state())["orders"]["lost-1"]["status"] == "open"
        # without a stall: Binance's 503 -1007 "execution status unknown"
        await sim.fault(endpoint="POST /api/v3/order", kind="timeout_after")
        with pytest.raises(cx.RequestTimeout, match="-1007"):
            await place(ex, "buy", 0.001, price, "lost-2")
        assert "lost-2" in (await sim.state())["orders"]
        # timeout_before: the same answer, but nothing happened
        await sim.fault(endpoint="POST /api/v3/order", kind="timeout_before", delay_s=0.8)
        with pytest.raises(cx.RequestTimeout):
            await place(ex, "buy", 0.001, price, "never-1")
        with pytest.raises(cx.OrderNotFound):
            await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "never-1"})
        await sim.fault(endpoint="DELETE /api/v3/order", kind="unavailable")
        with pytest.raises(cx.ExchangeNotAvailable):
            await ex.cancel_order(found["id"], "BTC/USDT")
        assert (await ex.fetch_order(found["id"], "BTC/USDT"))["status"] == "open"
        await sim.fault(endpoint="*", kind="error", status=400, code=-1013, msg="Market is closed.")
        with pytest.raises(cx.MarketClosed):
            await ex.fetch_open_orders("BTC/USDT")


@arun
async def test_sim_control_validates_its_input() -> None:
    async with running() as sim:
        bad = {"endpoint": "x", "kind": "rate_limit"}
        status, body = await sim.control("POST", "/__sim/fault", bad)
        assert status == 400 and "endpoint" in body["error"]
        status, body = await sim.control("POST", "/__sim/fault", {"endpoint": "*", "kind": "boom"})
        assert status == 400 and "kind" in body["error"]
        status, body = await sim.control(
            "POST", "/__sim/fault", {"endpoint": "*", "kind": "reject", "reason": "nope"}
        )
        assert status == 400 and "reason" in body["error"]
        status, body = await sim.control("POST", "/__sim/price", {"symbol": "XXX/USDT", "price": 1})
        assert status == 400
        status, body = await sim.control("DELETE", "/__sim/fault")
        assert status == 200


@arun
async def test_signature_covers_query_string_then_body_and_resp_types() -> None:
    """Binance signs totalParams = query string + body; a raw client that splits its
    parameters between the two must be accepted, and a tampered body refused."""
    async with running(symbols=("BTC/USDT", "SOL/USDT")) as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("SOL/USDT")  # a symbol outside Binance's fixture
        price = f"{t['bid'] * 0.97:.3f}"
        now_ms = int(time.time() * 1000)
        query = f"symbol=SOLUSDT&side=BUY&type=LIMIT&timeInForce=GTC&timestamp={now_ms}"
        body = f"quantity=0.100&price={price}&newClientOrderId=raw-1&newOrderRespType=ACK"
        sig = hmac.new(SECRET.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
        headers = {"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}
        url = f"{sim.base}/api/v3/order?{query}"
        async with sim.http.post(url, data=f"{body}&signature={sig}", headers=headers) as r:
            ack = await r.json()
        assert r.status == 200, ack
        assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        tampered = body.replace("raw-1", "raw-2")
        async with sim.http.post(url, data=f"{tampered}&signature={sig}", headers=headers) as r:
            assert r.status == 400 and (await r.json())["code"] == -1022
        result = await place_on(ex, "SOL/USDT", float(price), "raw-3", newOrderRespType="RESULT")
        assert "fills" not in result["info"] and result["info"]["status"] == "NEW"
        assert (await ex.fetch_order(None, "SOL/USDT", {"origClientOrderId": "raw-1"}))["id"]


def test_serve_runs_until_sigint() -> None:
    """The blocking entry point the CLI calls: prints its URL, serves, stops on SIGINT."""
    code = (
        "from fsmtrader_testing.simserver import serve\n"
        "serve(flavour='mexc', api_key='k', api_secret='s', port=0, speed=0,\n"
        "      on_ready=lambda url: print(url, flush=True))\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:"), url
            with urllib.request.urlopen(url + "/api/v3/time", timeout=5) as r:
                assert "serverTime" in json.loads(r.read())
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_sim_server_command_takes_the_venue_and_fault_options() -> None:
    """The torture starts ``fsmtrader sim-server`` as a subprocess with these flags."""
    cmd = [
        sys.executable, "-m", "fsmtrader", "sim-server", "--flavour", "mexc", "--port", "0",
        "--speed", "0", "--visibility-lag-ms", "250", "--fee-asset", "bnb",
        "--fault-rate", "0.25", "--fault-seed", "9", "--fault-kind", "rate_limit",
        "--fault-kind", "ioc_open",
    ]  # fmt: skip
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert "listening on http://127.0.0.1:" in line, line
            url = line.rsplit(" ", 1)[1]
            with urllib.request.urlopen(url + "/__sim/state", timeout=5) as r:
                state = json.loads(r.read())
            assert state["fault_rate"] == 0.25 and state["faults_injected"] == {}
            assert state["venue"]["visibility_lag_ms"] == "250"
            assert state["venue"]["fee_asset"] == "bnb" and state["venue"]["id"] == "mexc"
            assert state["balances"]["BNB"]["free"] == "10"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    bad = subprocess.run(
        [sys.executable, "-m", "fsmtrader", "sim-server", "--port", "0", "--fault-kind", "ioc_open",
         "--fault-rate", "0.1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "ioc_open" in bad.stderr


def test_sim_server_command_without_test_support_is_one_line_hint() -> None:
    """The product does not need fsmtrader_testing; ``sim-server`` says what is missing."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'fsmtrader_testing':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['fsmtrader', 'sim-server', '--port', '0']\n"
        "from fsmtrader.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "test-support package (fsmtrader_testing" in lines[0], lines


def test_refuses_non_loopback_hosts() -> None:
    app = create_app(flavour="binance", api_key=KEY, api_secret=SECRET, speed=0)

    async def start() -> None:
        await start_server(app, host="0.0.0.0")

    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(start())
    with pytest.raises(ValueError, match="loopback"):
        serve(flavour="binance", api_key=KEY, api_secret=SECRET, host="192.168.1.5")
    with pytest.raises(ValueError, match="quirks"):
        create_app(flavour="binance", api_key=KEY, api_secret=SECRET, quirks={"ioc_returns_open"})
    with pytest.raises(ValueError, match="unknown quirks"):
        create_app(flavour="mexc", api_key=KEY, api_secret=SECRET, quirks={"nope"})


# ---------------------------------------------------------------------------- MEXC


@arun
async def test_mexc_happy_path() -> None:
    async with running("mexc") as sim:
        ex = sim.client()
        markets = await ex.load_markets()
        f = filters_from_ccxt(markets["BTC/USDT"])
        assert (f.tick_size, f.step_size, f.min_qty, f.min_notional) == (
            Decimal("0.01"),
            Decimal("0.00001"),
            Decimal("0.00001"),
            Decimal("5"),
        )
        t = await ex.fetch_ticker("BTC/USDT")
        assert 0 < t["bid"] < t["ask"] and abs(t["percentage"]) < 50
        bars = await ex.fetch_ohlcv("BTC/USDT", "1h", limit=10)
        assert len(bars) == 10
        book = await ex.fetch_order_book("BTC/USDT", 5)
        assert book["asks"][0][0] == t["ask"]

        ioc = await place(ex, "buy", 0.002, t["ask"] * 1.002, "m-ioc-1", timeInForce="IOC")
        assert ioc["id"].startswith("C02__") and ioc["info"]["type"] == "IMMEDIATE_OR_CANCEL"
        assert ioc["status"] is None  # MEXC's create answer carries no status
        got = await ex.fetch_order(ioc["id"], "BTC/USDT")
        assert got["status"] == "closed" and got["filled"] == 0.002
        assert got["clientOrderId"] == "m-ioc-1"

        far = round(t["bid"] * 0.95, 2)
        dead = await place(ex, "buy", 0.001, far, "m-ioc-2", timeInForce="IOC")
        assert (await ex.fetch_order(dead["id"], "BTC/USDT"))["status"] == "canceled"

        gtc = await place(ex, "buy", 0.001, round(t["bid"] * 0.97, 2), "m-gtc-1")
        by_cid = await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "m-gtc-1"})
        assert by_cid["id"] == gtc["id"] and by_cid["status"] == "open"
        assert [o["id"] for o in await ex.fetch_open_orders("BTC/USDT")] == [gtc["id"]]
        canceled = await ex.cancel_order(gtc["id"], "BTC/USDT")
        assert canceled["status"] == "canceled"
        trades = await ex.fetch_my_trades("BTC/USDT")
        assert {tr["order"] for tr in trades} == {ioc["id"]}
        balance = await ex.fetch_balance()
        assert balance["BTC"]["free"] == pytest.approx(0.502)
        sold = await ex.create_order("BTC/USDT", "market", "sell", 0.001)
        assert (await ex.fetch_order(sold["id"], "BTC/USDT"))["status"] == "closed"


@arun
async def test_mexc_errors_map_to_ccxt_classes() -> None:
    async with running("mexc") as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        bid = round(t["bid"] * 0.98, 2)
        with pytest.raises(cx.AuthenticationError, match="700002"):
            await sim.client(secret="wrong").fetch_balance()
        with pytest.raises(cx.InvalidNonce, match="700003"):
            await sim.client(options={"timeDifference": 60_000}).fetch_balance()
        with pytest.raises(cx.InsufficientFunds, match="10101"):
            await place(ex, "buy", 1.0, bid, "m-big")
        with pytest.raises(cx.InsufficientFunds, match="30004"):
            await place(ex, "sell", 2.0, round(t["ask"] * 1.1, 2), "m-big-sell")
        with pytest.raises(cx.InvalidOrder, match="30002"):
            await place(ex, "buy", 0.00002, bid, "m-tiny")
        with pytest.raises(cx.BadRequest, match="700008"):  # MEXC client ids: 32 max
            await place(ex, "buy", 0.001, bid, "y" * 33)
        # ccxt's mexc table has no -2013: an unknown order is a plain ExchangeError
        with pytest.raises(cx.ExchangeError, match="-2013") as info:
            await ex.fetch_order("C02__1", "BTC/USDT")
        assert not isinstance(info.value, cx.OrderNotFound)
        with pytest.raises(cx.BadRequest, match="-2011"):
            await ex.cancel_order("C02__1", "BTC/USDT")
        await sim.fault(endpoint="POST /api/v3/order", kind="timeout_after")
        with pytest.raises(cx.RequestTimeout):
            await place(ex, "buy", 0.001, bid, "m-lost")
        found = await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "m-lost"})
        assert found["status"] == "open"


@arun
async def test_mexc_quirk_order_not_found_after_create() -> None:
    async with running(
        "mexc", quirks={"order_not_found_after_create"}, not_found_window_ms=400
    ) as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        o = await place(ex, "buy", 0.001, round(t["bid"] * 0.97, 2), "young-1")
        with pytest.raises(cx.ExchangeError, match="-2013"):
            await ex.fetch_order(o["id"], "BTC/USDT")
        await asyncio.sleep(0.45)
        assert (await ex.fetch_order(o["id"], "BTC/USDT"))["status"] == "open"
    async with running("mexc") as sim:  # without the quirk it is there at once
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        o = await place(ex, "buy", 0.001, round(t["bid"] * 0.97, 2), "young-2")
        assert (await ex.fetch_order(o["id"], "BTC/USDT"))["status"] == "open"


@arun
async def test_mexc_quirk_ioc_returns_open() -> None:
    async with running("mexc", quirks={"ioc_returns_open"}) as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        low = round(t["bid"] * 0.98, 2)
        o = await place(ex, "buy", 0.001, low, "ioc-open-1", timeInForce="IOC")
        got = await ex.fetch_order(o["id"], "BTC/USDT")
        assert got["status"] == "open" and got["timeInForce"] == "IOC"
        assert got["info"]["status"] == "NEW"
        assert [x["id"] for x in await ex.fetch_open_orders("BTC/USDT")] == [o["id"]]
        await sim.price("BTC/USDT", str(round(low * 0.999, 2)))  # the rest stays live
        assert (await ex.fetch_order(o["id"], "BTC/USDT"))["status"] == "closed"
        o2 = await place(ex, "buy", 0.001, round(low * 0.9, 2), "ioc-open-2", timeInForce="IOC")
        assert (await ex.fetch_order(o2["id"], "BTC/USDT"))["status"] == "open"
        assert (await ex.cancel_order(o2["id"], "BTC/USDT"))["status"] == "canceled"


@arun
async def test_mexc_quirk_no_stop_limit() -> None:
    async def stop_limit(ex: Any, cid: str) -> Any:
        t = await ex.fetch_ticker("BTC/USDT")
        stop = round(t["bid"] * 0.95, 2)
        return await ex.create_order(
            "BTC/USDT", "STOP_LOSS_LIMIT", "sell", 0.001, stop, {"stopPrice": stop}
        )

    async with running("mexc", quirks={"no_stop_limit"}) as sim:
        with pytest.raises(cx.ExchangeError, match="invalid type") as info:
            await stop_limit(sim.client(), "stop-1")
        assert not isinstance(info.value, cx.InvalidOrder)
    async with running("mexc") as sim:
        with pytest.raises(cx.InvalidOrder, match="30041"):
            await stop_limit(sim.client(), "stop-2")


# ---------------------------------------------------------------------------- venue rules


@arun
async def test_binance_client_id_is_unique_among_open_orders_only() -> None:
    """Binance: newClientOrderId is "a unique id among open orders": refused while the
    first order is open, ACCEPTED once it is over (a re-send after a filled IOC is a
    second order); origClientOrderId then answers the most recent one."""
    async with running() as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        low, ask = round(t["bid"] * 0.97, 2), t["ask"] * 1.002
        first = await place(ex, "buy", 0.001, low, "reuse-1")
        with pytest.raises(cx.InvalidOrder, match="Duplicate order sent"):
            await place(ex, "buy", 0.001, low, "reuse-1")
        await ex.cancel_order(first["id"], "BTC/USDT")
        second = await place(ex, "buy", 0.001, low, "reuse-1")
        assert second["id"] != first["id"] and second["status"] == "open"
        got = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "reuse-1"})
        assert got["id"] == second["id"]
        ioc = await place(ex, "buy", 0.001, ask, "reuse-2", timeInForce="IOC")
        again = await place(ex, "buy", 0.001, ask, "reuse-2", timeInForce="IOC")
        assert ioc["status"] == again["status"] == "closed" and again["id"] != ioc["id"]
        by_cid = await ex.cancel_order(None, "BTC/USDT", {"origClientOrderId": "reuse-1"})
        assert by_cid["id"] == second["id"]
        state = await sim.state()
        cids = [o["client_order_id"] for o in state["all_orders"]]
        assert cids == ["reuse-1", "reuse-1", "reuse-2", "reuse-2"]
        assert Decimal(state["balances"]["BTC"]["free"]) == Decimal("0.502")  # two fills


@arun
async def test_a_young_order_is_not_found_inside_the_lag_and_found_after() -> None:
    async with running(visibility_lag_ms=600) as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        low = round(t["bid"] * 0.97, 2)
        o = await place(ex, "buy", 0.001, low, "young-b1")
        assert o["status"] == "open"  # the create answer knows it
        with pytest.raises(cx.OrderNotFound):
            await ex.fetch_order(o["id"], "BTC/USDT")
        with pytest.raises(cx.OrderNotFound):
            await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "young-b1"})
        assert await ex.fetch_open_orders("BTC/USDT") == []
        assert await ex.fetch_orders("BTC/USDT") == []
        doomed = await place(ex, "buy", 0.001, low, "young-b2")
        canceled = await ex.cancel_order(doomed["id"], "BTC/USDT")  # Binance's engine has it
        assert canceled["status"] == "canceled"
        await asyncio.sleep(0.65)
        assert (await ex.fetch_order(o["id"], "BTC/USDT"))["clientOrderId"] == "young-b1"
        assert [x["id"] for x in await ex.fetch_open_orders("BTC/USDT")] == [o["id"]]
    async with running("mexc", visibility_lag_ms=600) as sim:  # MEXC: nor can it cancel
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        o = await place(ex, "buy", 0.001, round(t["bid"] * 0.97, 2), "young-m1")
        with pytest.raises(cx.BadRequest, match="-2011"):
            await ex.cancel_order(o["id"], "BTC/USDT")
        await asyncio.sleep(0.65)
        assert (await ex.cancel_order(o["id"], "BTC/USDT"))["status"] == "canceled"


async def _commissions(ex: Any) -> list[tuple[str, Decimal, Decimal, Decimal, bool]]:
    rows = await ex.privateGetMyTrades({"symbol": "BTCUSDT"})
    return [
        (
            r["commissionAsset"],
            Decimal(r["commission"]),
            Decimal(r["qty"]),
            Decimal(r["quoteQty"]),
            r["isBuyer"],
        )
        for r in rows
    ]


@pytest.mark.parametrize("fee_asset", ["received", "bnb"])
@arun
async def test_fees_in_base_or_bnb_make_every_balance_exact(fee_asset: str) -> None:
    async with running(fee_asset=fee_asset) as sim:
        ex = sim.client()
        start = {a: Decimal(b["free"]) for a, b in (await sim.state())["balances"].items()}
        t = await ex.fetch_ticker("BTC/USDT")
        await place(ex, "buy", 0.01, t["ask"] * 1.002, "fee-1", timeInForce="IOC")
        await place(ex, "sell", 0.004, t["bid"] * 0.998, "fee-2", timeInForce="IOC")
        expect = dict(start)
        fills = await _commissions(ex)
        assert fills
        for asset, fee, qty, quote, buyer in fills:
            sign = 1 if buyer else -1
            expect["BTC"] += sign * qty
            expect["USDT"] -= sign * quote
            expect[asset] -= fee
            want = "BNB" if fee_asset == "bnb" else ("BTC" if buyer else "USDT")
            assert asset == want and fee > 0
        balance = await ex.fetch_balance()
        for asset, total in expect.items():
            assert Decimal(str(balance[asset]["total"])) == total, asset
        raw = (await ex.privateGetAccount())["balances"]
        if fee_asset == "bnb":
            assert any(b["asset"] == "BNB" for b in raw)


@arun
async def test_binance_history_pages_cursors_and_the_24h_window() -> None:
    async with running() as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        ids = []
        for i in range(5):
            o = await place(ex, "buy", 0.001, t["ask"] * 1.002, f"hist-{i}", timeInForce="IOC")
            ids.append(int(o["id"]))
        page = await ex.privateGetAllOrders({"symbol": "BTCUSDT", "limit": 2})
        assert [r["orderId"] for r in page] == ids[-2:]  # no cursor: the most recent
        page = await ex.privateGetAllOrders({"symbol": "BTCUSDT", "orderId": ids[1], "limit": 2})
        assert [r["orderId"] for r in page] == ids[1:3]  # from the cursor, forward
        page = await ex.privateGetAllOrders({"symbol": "BTCUSDT", "orderId": ids[-1] + 1})
        assert page == []  # past the last order: an empty page, not everything again
        now = (await ex.publicGetTime())["serverTime"]
        day = 24 * 3_600_000
        ok = await ex.privateGetAllOrders(
            {"symbol": "BTCUSDT", "startTime": now - day, "endTime": now}
        )
        assert len(ok) == 5
        with pytest.raises(cx.ExchangeError, match="-1127"):
            await ex.privateGetAllOrders(
                {"symbol": "BTCUSDT", "startTime": now - day - 1, "endTime": now}
            )
        with pytest.raises(cx.ExchangeError, match="-1127"):
            await ex.privateGetMyTrades(
                {"symbol": "BTCUSDT", "startTime": now - day - 1, "endTime": now}
            )
        trades = await ex.privateGetMyTrades({"symbol": "BTCUSDT"})
        assert "clientOrderId" not in trades[0]
        of_one = await ex.privateGetMyTrades({"symbol": "BTCUSDT", "orderId": ids[2]})
        assert of_one and {r["orderId"] for r in of_one} == {ids[2]}
        assert [r["id"] for r in of_one] == [r["id"] for r in trades if r["orderId"] == ids[2]]
        second = trades[1]["id"]
        page = await ex.privateGetMyTrades({"symbol": "BTCUSDT", "fromId": second, "limit": 2})
        assert [r["id"] for r in page] == [r["id"] for r in trades[1:3]]
        with pytest.raises(cx.ExchangeError, match="-1128"):
            await ex.privateGetMyTrades({"symbol": "BTCUSDT", "fromId": 1, "startTime": now})
        all_orders = await ex.fetch_orders("BTC/USDT")
        assert [int(o["id"]) for o in all_orders] == ids


@arun
async def test_mexc_history_window_limits() -> None:
    async with running("mexc") as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        await place(ex, "buy", 0.001, t["ask"] * 1.002, "mh-1", timeInForce="IOC")
        now = (await ex.spotPublicGetTime())["serverTime"]
        week = 7 * 24 * 3_600_000
        assert len(await ex.spotPrivateGetAllOrders({"symbol": "BTCUSDT"})) == 1
        assert (
            len(
                await ex.spotPrivateGetAllOrders(
                    {"symbol": "BTCUSDT", "startTime": now - week, "endTime": now}
                )
            )
            == 1
        )
        with pytest.raises(cx.ExchangeError, match="-1127"):
            await ex.spotPrivateGetAllOrders(
                {"symbol": "BTCUSDT", "startTime": now - week - 1, "endTime": now}
            )


@arun
async def test_queued_effect_faults_lag_spike_and_cancel_race() -> None:
    async with running() as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        low = round(t["bid"] * 0.97, 2)
        await sim.fault(endpoint="POST /api/v3/order", kind="lag_spike")
        spiked = await place(ex, "buy", 0.001, low, "spike-1")
        with pytest.raises(cx.OrderNotFound):
            await ex.fetch_order(spiked["id"], "BTC/USDT")
        assert (await sim.state())["orders"]["spike-1"]["status"] == "open"
        other = await place(ex, "buy", 0.001, low, "race-1")
        await sim.fault(endpoint="DELETE /api/v3/order", kind="cancel_race")
        with pytest.raises(cx.OrderNotFound):  # it filled in the instant of the cancel
            await ex.cancel_order(other["id"], "BTC/USDT")
        raced = (await sim.state())["orders"]["race-1"]
        assert raced["status"] == "closed" and Decimal(raced["filled"]) == Decimal("0.001")


async def _chaos_run(seed: int, rate: float) -> tuple[list[str], dict[str, int]]:
    """A fixed request sequence against a server with random faults: each request's
    outcome class, and what the server says it injected."""
    async with running(fault_rate=rate, fault_seed=seed) as sim:
        ex = sim.client()
        t = await ex.fetch_ticker("BTC/USDT")
        low = round(t["bid"] * 0.97, 2)
        outcomes = []
        for i in range(40):
            try:
                if i % 4 == 0:
                    await place(ex, "buy", 0.001, low, f"chaos-{i}")
                elif i % 4 == 1:
                    await ex.fetch_open_orders("BTC/USDT")
                elif i % 4 == 2:
                    await ex.fetch_balance()
                else:
                    await ex.fetch_my_trades("BTC/USDT")
                outcomes.append("ok")
            except cx.BaseError as exc:
                outcomes.append(type(exc).__name__)
        return outcomes, (await sim.state())["faults_injected"]


@arun
async def test_random_faults_at_a_rate_are_reproducible_for_a_seed_and_counted() -> None:
    first, counted = await _chaos_run(seed=11, rate=0.4)
    again, counted_again = await _chaos_run(seed=11, rate=0.4)
    other, _ = await _chaos_run(seed=12, rate=0.4)
    assert first == again and counted == counted_again
    assert other != first
    failed = sum(1 for o in first if o != "ok")
    effects = counted.get("lag_spike", 0) + counted.get("cancel_race", 0)
    assert failed > 0 and sum(counted.values()) - effects == failed
    assert set(counted) <= {
        "timeout_after",
        "timeout_before",
        "rate_limit",
        "unavailable",
        "error",
        "lag_spike",
        "cancel_race",
    }  # no ioc_open on Binance
    quiet, none = await _chaos_run(seed=11, rate=0.0)
    assert set(quiet) == {"ok"} and none == {}


def test_random_fault_options_are_checked() -> None:
    with pytest.raises(ValueError, match="fault_rate"):
        create_app(flavour="binance", api_key=KEY, api_secret=SECRET, fault_rate=1.5)
    with pytest.raises(ValueError, match="unknown fault kinds: nope"):
        create_app(
            flavour="binance", api_key=KEY, api_secret=SECRET, fault_rate=0.1, fault_kinds=["nope"]
        )
    with pytest.raises(ValueError, match="MEXC"):
        create_app(
            flavour="binance",
            api_key=KEY,
            api_secret=SECRET,
            fault_rate=0.1,
            fault_kinds=["ioc_open"],
        )
    with pytest.raises(ValueError, match="fee_asset"):
        create_app(flavour="binance", api_key=KEY, api_secret=SECRET, fee_asset="ETH")  # type: ignore[arg-type]


def test_quirk_names_are_the_documented_three() -> None:
    expected = {"order_not_found_after_create", "ioc_returns_open", "no_stop_limit"}
    assert expected == QUIRKS


def ccxt_config(  # raw ccxt: only tests may import ccxt outside the adapter package
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
