"""What our adapter and router cost per order on top of ccxt itself.

Target: ours − bare < 1 ms per order, over 1,000 orders, against the local Binance-flavour
server (frozen prices, a fresh book, generous balances). Each mode does ``orders`` ×
(limit IOC at the touch, then fetch_order), alternating buy and sell so balances do not
drain:

* **bare**: a raw ``ccxt.async_support.binance`` client (rate limiter off), awaited on an
  event loop in this thread: the floor any ccxt-based engine pays.
* **core**: our ``AsyncCcxtExchange`` on a loop in this thread: the adapter's checks,
  Decimal conversions and tenacity wrapper, without the sync facade.
* **adapter**: ``CcxtExchange.create_order`` + ``fetch_order``, what the engine calls: the
  core plus two thread hops per call (caller -> adapter loop thread -> caller).
* **ours**: an ``Intent`` through the real ``OrderRouter`` + ``Portfolio`` (preflight,
  reservation, create, fills absorbed from the answer, settle) over ``CcxtExchange``, then
  ``fetch_order``. The router also reads the ticker before every *buy* (its slippage
  guard); a calibration pass counts the router's exchange calls per order.
* **router**: the same router and portfolio over recorded real answers and no I/O: the
  router's own CPU per order.

"ours − bare" is the headline; "like for like" = (adapter − bare) + router alone is the
overhead with the same two requests per order. Modes run in alternating rounds, so a busy
machine hurts all alike; the book is refreshed (``POST /__sim/price``, same price) every
``--reset-every`` orders outside the timed sections, because taker fills consume a bar's
depth. Run from the repository root:

    .venv/bin/python benchmarks/adapter_overhead.py [--orders 1000] [--rounds 5]
        [--server thread|process] [--profile]

``--server thread`` (default) runs the server in a thread of this process, sharing the
GIL with the client; ``process`` runs it in a child process, closer to a network peer.
``--profile`` adds a cProfile of one more ours-round, for the caller thread and for the
adapter's loop thread (top 10 by tottime, with and without the waits).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import ROUND_CEILING, Decimal
from typing import Any

import ccxt.async_support as ccxt_async  # a benchmark may: it measures ccxt itself

from fsmtrader.audit import EventBus
from fsmtrader.clock import WallClock
from fsmtrader.exchange.ccxt_adapter.client import AsyncCcxtExchange
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.orders.intent import Intent
from fsmtrader.orders.router import OrderRouter, RouterConfig
from fsmtrader.portfolio import Portfolio
from fsmtrader_testing.simserver import CCXT_OPTIONS, create_app, point_ccxt_at, serve
from fsmtrader_testing.simserver.threaded import admin, serving_in_thread

from bench_profile import profile_threads
from recorded_exchange import Canned, Counting

KEY = "benchApiKey0123456789"
SECRET = "benchApiSecret0123456789"
SYMBOL = "BTC/USDT"
THREADED = "--threaded" in sys.argv  # measure the loop-thread facade instead of inline
BALANCES = {"USDT": "1000000000", "BTC": "100000", "ETH": "100000"}
NOTIONAL = Decimal(7)  # quote per order: above Binance's 5 USDT minimum, tiny vs the book
STEP = Decimal("0.00001")


# --------------------------------------------------------------------------- server


def _serve_child(ready: Any) -> None:
    serve(
        flavour="binance",
        api_key=KEY,
        api_secret=SECRET,
        port=0,
        speed=0,
        balances=BALANCES,
        on_ready=ready.put,
    )


@contextmanager
def server(mode: str) -> Iterator[str]:
    """The local Binance server's base URL, in a thread of this process or a child."""
    if mode == "process":
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Queue()
        proc = ctx.Process(target=_serve_child, args=(ready,), daemon=True)
        proc.start()
        try:
            yield str(ready.get(timeout=60))
        finally:
            proc.terminate()  # SIGTERM: serve() shuts down cleanly
            proc.join(10)
        return
    app = create_app(flavour="binance", api_key=KEY, api_secret=SECRET, speed=0, balances=BALANCES)
    with serving_in_thread(app, "sim-binance") as base:
        yield base


class Book:
    """The touch, refreshed by re-applying the same price (a new bar: fresh depth)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.price = str(admin(base, "GET", "/__sim/state")["prices"][SYMBOL])
        self.bid = self.ask = Decimal(0)
        self.refresh()
        raw = NOTIONAL / self.bid / STEP
        self.amount = raw.to_integral_value(ROUND_CEILING) * STEP

    def refresh(self) -> None:
        top = admin(self.base, "POST", "/__sim/price", {"symbol": SYMBOL, "price": self.price})
        self.bid, self.ask = Decimal(top["bid"]), Decimal(top["ask"])


# --------------------------------------------------------------------------- loops

Timed = Callable[[int], int]  # runs order i, returns its nanoseconds


def run_orders(book: Book, n: int, one: Timed, reset_every: int) -> float:
    """n orders, the book refreshed (untimed) every ``reset_every``; ms per order."""
    book.refresh()
    total = 0
    for i in range(n):
        if i and i % reset_every == 0:
            book.refresh()
        total += one(i)
    return total / n / 1e6


class Bare:
    """Raw ccxt on an event loop in this thread."""

    def __init__(self, base: str, book: Book) -> None:
        self.loop = asyncio.new_event_loop()
        self.book = book
        self.seq = 0
        self.filled = 0
        self.ex = ccxt_async.binance(
            {
                "apiKey": KEY,
                "secret": SECRET,
                "enableRateLimit": False,
                "timeout": 10_000,
                "timeout_on_exit": 0,
                "options": copy.deepcopy(CCXT_OPTIONS["binance"]),  # as ours
            }
        )
        point_ccxt_at(self.ex, base)
        self.loop.run_until_complete(self.ex.load_markets())

    async def _pair(self, i: int) -> int:
        self.seq += 1
        side = "buy" if i % 2 == 0 else "sell"
        price = self.book.ask if side == "buy" else self.book.bid
        t0 = time.perf_counter_ns()
        order = await self.ex.create_order(
            SYMBOL,
            "limit",
            side,
            str(self.book.amount),
            str(price),
            {"timeInForce": "IOC", "clientOrderId": f"bare{self.seq}"},
        )
        got = await self.ex.fetch_order(order["id"], SYMBOL)
        dt = time.perf_counter_ns() - t0
        self.filled += got["status"] == "closed"
        return dt

    def one(self, i: int) -> int:
        return self.loop.run_until_complete(self._pair(i))

    def close(self) -> None:
        self.loop.run_until_complete(self.ex.close())
        self.loop.close()


def options(base: str) -> CcxtOptions:
    """Ours as the engine builds it, but with ccxt's throttle off (as in Bare) so the
    comparison with bare ccxt is like for like."""
    return CcxtOptions("binance", api_key=KEY, api_secret=SECRET, base_url=base, rate_limit=False)


class Core:
    """Our async core (``AsyncCcxtExchange``) awaited on a loop in this thread: the
    adapter's checks and conversions without the sync facade's thread hop."""

    def __init__(self, base: str, book: Book) -> None:
        self.loop = asyncio.new_event_loop()
        self.book = book
        self.seq = 0
        self.filled = 0

        async def build() -> AsyncCcxtExchange:
            return AsyncCcxtExchange(options(base))

        self.ex = self.loop.run_until_complete(build())
        self.loop.run_until_complete(self.ex.load_markets())

    async def _pair(self, i: int) -> int:
        self.seq += 1
        side = "buy" if i % 2 == 0 else "sell"
        price = self.book.ask if side == "buy" else self.book.bid
        t0 = time.perf_counter_ns()
        info = await self.ex.create_order(
            SYMBOL, side, "limit", self.book.amount, price, "IOC", f"core{self.seq}"
        )
        got = await self.ex.fetch_order(info.id, SYMBOL)
        dt = time.perf_counter_ns() - t0
        self.filled += got.status == "closed"
        return dt

    def one(self, i: int) -> int:
        return self.loop.run_until_complete(self._pair(i))

    def close(self) -> None:
        self.loop.run_until_complete(self.ex.close())
        self.loop.close()


class Ours:
    """CcxtExchange alone, and CcxtExchange under the real router."""

    def __init__(self, base: str, book: Book) -> None:
        self.book = book
        # inline: the engine is synchronous, so the adapter runs its loop on our thread
        # (as LiveSession does); the threaded mode serves async callers.
        self.ex = CcxtExchange(options(base), inline=not THREADED)
        self.markets = self.ex.load_markets()
        self.clock = WallClock()
        self.portfolio = Portfolio(quote="USDT", cash=Decimal(BALANCES["USDT"]))
        self.router = OrderRouter(
            self.ex, self.portfolio, self.markets, self.clock, EventBus(), RouterConfig()
        )
        self.seq = 0
        self.adapter_filled = 0
        self.router_filled = 0

    def adapter_one(self, i: int) -> int:
        self.seq += 1
        side = "buy" if i % 2 == 0 else "sell"
        price = self.book.ask if side == "buy" else self.book.bid
        t0 = time.perf_counter_ns()
        info = self.ex.create_order(
            SYMBOL, side, "limit", self.book.amount, price, "IOC", f"adp{self.seq}"
        )
        got = self.ex.fetch_order(info.id, SYMBOL)
        dt = time.perf_counter_ns() - t0
        self.adapter_filled += got.status == "closed"
        return dt

    def intent(self, i: int) -> Intent:
        self.seq += 1
        side = "buy" if i % 2 == 0 else "sell"
        price = self.book.ask if side == "buy" else self.book.bid
        return Intent.create(
            decision_id=f"bench-{self.seq}",
            symbol=SYMBOL,
            side=side,
            amount=self.book.amount,
            limit_price=price,
            ref_price=price,
            max_slippage_bps=Decimal(50),
            time_in_force="IOC",
            leg=0,
            created_ms=self.clock.now_ms(),
        )

    def router_one(self, i: int) -> int:
        it = self.intent(i)  # building the decision is the strategy's cost, not ours
        t0 = time.perf_counter_ns()
        # as the engine does: the ask it priced the buy with goes to the slippage guard
        rec = self.router.submit(it, live_ask=self.book.ask if it.side == "buy" else None)
        self.ex.fetch_order(rec.order_id, SYMBOL)
        dt = time.perf_counter_ns() - t0
        self.router_filled += rec.state.value == "RECONCILED" and rec.filled == it.amount
        return dt

    def close(self) -> None:
        self.ex.close()


def calibrate(ours: Ours, n: int = 20) -> tuple[dict[str, float], Counting]:
    """Exchange calls per order by the router (plus our explicit fetch_order), and a
    recording of real answers for the canned-exchange run."""
    counting = Counting(ours.ex)
    real = ours.router.exchange
    ours.router.exchange = counting  # type: ignore[assignment]
    try:
        ours.book.refresh()
        for i in range(n):
            it = ours.intent(i)
            rec = ours.router.submit(it, live_ask=ours.book.ask if it.side == "buy" else None)
            counting.fetch_order(rec.order_id, SYMBOL)
    finally:
        ours.router.exchange = real
    return {k: v / n for k, v in sorted(counting.calls.items())}, counting


class RouterOnly:
    """The real router and portfolio over :class:`Canned`."""

    def __init__(self, ours: Ours, recorded: Counting) -> None:
        self.ours = ours
        self.portfolio = Portfolio(quote="USDT", cash=Decimal(BALANCES["USDT"]))
        self.router = OrderRouter(
            Canned(recorded),  # type: ignore[arg-type]
            self.portfolio,
            ours.markets,
            ours.clock,
            EventBus(),
            RouterConfig(),
        )
        self.filled = 0

    def one(self, i: int) -> int:
        it = self.ours.intent(i)
        t0 = time.perf_counter_ns()
        rec = self.router.submit(it, live_ask=self.ours.book.ask if it.side == "buy" else None)
        dt = time.perf_counter_ns() - t0
        self.filled += rec.state.value == "RECONCILED"
        return dt


# --------------------------------------------------------------------------- profile


def profile_ours(ours: Ours, n: int, reset_every: int) -> None:
    """cProfile of the ours-loop, in this thread and in the adapter's loop thread."""
    runner = ours.ex._runner
    loop = runner.loop if runner is not None else None  # the adapter's private loop
    profile_threads(lambda: run_orders(ours.book, n, ours.router_one, reset_every), loop, n)


# --------------------------------------------------------------------------- main


def report(
    server_mode: str,
    base: str,
    book: Book,
    rounds: int,
    per_round: int,
    per: dict[str, list[float]],
    calls: dict[str, float],
    filled: tuple[int, ...],
) -> None:
    n = rounds * per_round
    ms = {m: statistics.fmean(v) for m, v in per.items()}
    requests_ours = sum(calls.values())
    extra = requests_ours - 2
    overhead = ms["ours"] - ms["bare"]
    verdict = "PASS" if overhead < 1 else "FAIL"
    print(f"server                   {server_mode}; {base}")
    print(
        f"orders                   {n} per mode ({rounds} alternating rounds of {per_round}), "
        f"IOC {book.amount} BTC at the touch, buy/sell alternating"
    )
    print(
        "filled                   "
        + ", ".join(f"{m} {f}/{n}" for m, f in zip(per, filled, strict=True))
    )
    print(f"bare ccxt                {ms['bare']:.3f} ms/order  (create + fetch_order)")
    print(
        f"adapter, async core      {ms['core']:.3f} ms/order  "
        f"(+{ms['core'] - ms['bare']:.3f}: checks, conversions, retry wrapper)"
    )
    print(
        f"adapter, CcxtExchange    {ms['adapter']:.3f} ms/order  "
        f"(+{ms['adapter'] - ms['bare']:.3f}; the sync facade "
        f"+{ms['adapter'] - ms['core']:.3f})"
    )
    print(
        f"ours (router + adapter)  {ms['ours']:.3f} ms/order  "
        f"({requests_ours:g} requests/order: "
        + ", ".join(f"{k} {v:g}" for k, v in calls.items())
        + ")"
    )
    like = ms["adapter"] - ms["bare"] + ms["router"]
    rest = ms["ours"] - ms["adapter"] - ms["router"]
    print(f"overhead ours - bare     {overhead:.3f} ms/order  -> target < 1 ms: {verdict}")
    print(f"  adapter - bare         {ms['adapter'] - ms['bare']:.3f} ms/order")
    print(
        f"  router alone           {ms['router']:.3f} ms/order  (real router + portfolio over "
        "canned exchange answers, no I/O)"
    )
    if extra > 0:
        print(
            f"  router's extra calls   {rest:.3f} ms/order  (ours - adapter - router alone: "
            f"{extra:g} more request(s)/order through the adapter)"
        )
    print(
        f"like for like            {like:.3f} ms/order  (same 2 requests: adapter - bare + "
        f"router alone) -> {'PASS' if like < 1 else 'FAIL'}"
    )
    for mode, values in per.items():
        print(f"rounds {mode:<8}          " + "  ".join(f"{v:.3f}" for v in values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--orders", type=int, default=1000, help="orders per mode (default 1000)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--warmup", type=int, default=40, help="untimed orders per mode first")
    ap.add_argument("--reset-every", type=int, default=100, help="refresh the book every N")
    ap.add_argument("--server", choices=("thread", "process"), default="thread")
    ap.add_argument("--profile", action="store_true", help="cProfile an extra ours-loop")
    ap.add_argument(
        "--threaded",
        action="store_true",
        help="measure the loop-thread facade (async callers) instead of inline",
    )
    args = ap.parse_args()
    per_round = max(2, args.orders // args.rounds // 2 * 2)  # even: buys and sells pair up
    rounds = max(1, args.orders // per_round)

    with server(args.server) as base:
        book = Book(base)
        bare = Bare(base, book)
        core = Core(base, book)
        ours = Ours(base, book)
        try:
            modes: dict[str, Timed] = {
                "bare": bare.one,
                "core": core.one,
                "adapter": ours.adapter_one,
                "ours": ours.router_one,
            }
            calls, recorded = calibrate(ours)
            router_only = RouterOnly(ours, recorded)
            modes["router"] = router_only.one
            for one in modes.values():
                run_orders(book, args.warmup, one, args.reset_every)
            bare.filled = core.filled = ours.adapter_filled = ours.router_filled = 0
            router_only.filled = 0
            per: dict[str, list[float]] = {m: [] for m in modes}
            for _ in range(rounds):
                for mode, one in modes.items():
                    per[mode].append(run_orders(book, per_round, one, args.reset_every))
            filled = (
                bare.filled,
                core.filled,
                ours.adapter_filled,
                ours.router_filled,
                router_only.filled,
            )
            report(args.server, base, book, rounds, per_round, per, calls, filled)
            if args.profile:
                profile_ours(ours, per_round, args.reset_every)
        finally:
            ours.close()
            core.close()
            bare.close()


if __name__ == "__main__":
    main()
