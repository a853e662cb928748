"""A real engine on the real simulated exchange, driven bar by bar: the harness the engine
tests and the benchmarks share. It feeds bars through the same ``drive.step`` as the
backtest and the sessions, so what a test plays is what a run does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from fsmtrader.audit import EventBus, MemorySink
from fsmtrader.clock import SimClock
from fsmtrader.config import Settings, load_settings
from fsmtrader.config_wiring import build_engine
from fsmtrader.drive import step
from fsmtrader.exchange.simulated import FaultInjector, SimExchange, SimVenue
from fsmtrader.markets import MarketFilters
from fsmtrader.runner import sim_params
from fsmtrader.smoke.bench import market
from fsmtrader.state.records import OrderEvent

T0 = 1_767_225_600_000  # 2026-01-01, where the harness's clock starts
MIN = 60_000


def settings(**overrides: Any) -> Settings:
    """The defaults with ``overrides``, and no environment or file read."""
    return load_settings(None, env={}, overrides=overrides)


# Filters of a symbol from their text, as a venue lists them (the smoke scenarios' own).
mf = market


BTC = mf("BTC/USDT", "0.01", "0.00001", "0.00001", "10")
BLESS = mf("BLESS/USDT", "0.000001", "1", "1", "5")


class Harness:
    """An engine wired to a SimExchange (through a FaultInjector) and a SimClock, with
    helpers to play prices."""

    def __init__(
        self,
        s: Settings,
        markets: dict[str, MarketFilters],
        *,
        depth_quote: str = "100000",
        spread_bps: str = "2",
        start_ms: int = T0,
        venue: SimVenue | None = None,
        wire: Callable[[SimExchange], FaultInjector[SimExchange]] = FaultInjector,
    ) -> None:
        """``venue`` replaces the settings' simulated venue (a visibility lag, say);
        ``wire`` builds what the engine trades through (a test's own answers at the wire)."""
        self.s = s
        self.clock = SimClock(start_ms)
        params = replace(
            sim_params(s), spread_bps=Decimal(spread_bps), depth_quote=Decimal(depth_quote)
        )
        if venue is not None:
            params = replace(params, venue=venue)
        markets = params.with_fees(markets)
        balances = {s.market.quote: s.market.starting_balance}
        self.exchange = SimExchange(markets, balances, clock=self.clock, params=params)
        # The engine trades through the injector; tests inject faults there and look at
        # the exchange directly (their own look-ups never consume a fault).
        self.faults = wire(self.exchange)
        self.sink = MemorySink()
        bus = EventBus()
        bus.subscribe(self.sink)
        self.engine = build_engine(
            s, clock=self.clock, exchange=self.faults, filters=markets, bus=bus
        )
        self.ts = start_ms

    def bar(self, symbol: str, price: float, ts: int | None = None, volume: float = 1e6) -> None:
        """One bar at ``ts`` (default: one minute after the previous)."""
        ts = self.ts = self.ts + MIN if ts is None else ts
        p, set_clock = price, self.clock.set
        step(self.engine, self.exchange, ts, symbol, p, p, p, volume, None, set_clock)

    def warm(self, symbol: str, price: float, bars: int = 61) -> None:
        for _ in range(bars):
            self.bar(symbol, price)

    def advance(self, ms: int) -> None:
        """Let time pass with no new bar (timers fire)."""
        self.ts += ms
        self.engine.run_timers(self.ts)

    def phases(self, symbol: str) -> list[str]:
        return [
            r["to"] for r in self.sink.records if r["kind"] == "phase" and r["symbol"] == symbol
        ]

    def orders(self, **match: Any) -> list[OrderEvent]:
        return [
            r
            for r in self.sink.records
            if r["kind"] == "order" and all(r.get(k) == v for k, v in match.items())
        ]

    def phase(self, symbol: str) -> str:
        return self.engine.states[symbol].phase.value
