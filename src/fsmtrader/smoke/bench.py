"""A real engine on the real simulated exchange, in this process, fed bar by bar through
the drivers' own ``drive.step`` on a simulated clock: what scenarios A-C play is what a
backtest or a paper session does, in milliseconds."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any, cast

from fsmtrader.audit import EventBus, MemorySink
from fsmtrader.clock import SimClock
from fsmtrader.config import Settings
from fsmtrader.config_wiring import build_engine
from fsmtrader.drive import step
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.markets import MarketFilters
from fsmtrader.runner import sim_params

T0 = 1_767_225_600_000  # 2026-01-01
MIN = 60_000
SECOND = 1_000
PAST_LAG_MS = 700_000  # beyond the longest visibility lag a setting allows (600 s)
Doc = dict[str, Any]  # a published record, read as plain data


def market(symbol: str, tick: str, step_: str, min_qty: str, min_notional: str) -> MarketFilters:
    base, _, quote = symbol.partition("/")
    return MarketFilters(
        symbol=symbol,
        tick_size=Decimal(tick),
        step_size=Decimal(step_),
        min_qty=Decimal(min_qty),
        min_notional=Decimal(min_notional),
        base=base,
        quote=quote,
    )


class Bench:
    """One symbol's engine on a SimExchange of the settings' venue, with ``depth_quote``
    and ``spread_bps`` of the scenario's own book."""

    def __init__(
        self, s: Settings, filters: MarketFilters, *, depth_quote: str, spread_bps: str = "2"
    ) -> None:
        self.s = s
        self.symbol = filters.symbol
        self.clock = SimClock(T0)
        params = replace(
            sim_params(s), spread_bps=Decimal(spread_bps), depth_quote=Decimal(depth_quote)
        )
        markets = params.with_fees({self.symbol: filters})
        self.filters = markets[self.symbol]
        balances = {s.market.quote: s.market.starting_balance}
        self.exchange = SimExchange(markets, balances, clock=self.clock, params=params)
        self.sink = MemorySink()
        bus = EventBus()
        bus.subscribe(self.sink)
        self.engine = build_engine(
            s, clock=self.clock, exchange=self.exchange, filters=markets, bus=bus
        )
        self.ts = T0
        self.volume = max(1e9, s.entry.min_volume * 10)

    def bar(self, price: float) -> None:
        """One bar a minute after the previous one."""
        self.ts += MIN
        step(
            self.engine, self.exchange, self.ts, self.symbol,
            price, price, price, self.volume, None, self.clock.set,
        )  # fmt: skip

    def warm(self, price: float) -> None:
        """Flat bars until the signal is warm and the symbol IDLE (or an hour past both)."""
        e = self.s.entry
        need = e.anchor_window_min + 2
        limit = need + int(self.s.timeouts.warmup_timeout_s // 60) + 60
        for i in range(limit):
            self.bar(price)
            if i >= need and self.phase() == "IDLE":
                return

    def drop_price(self, price: float) -> float:
        """A close far enough below the anchor to be a signal (half a percent more)."""
        return price * (1 - (self.s.entry.drop_trigger_pct + 0.5) / 100)

    def advance(self, ms: int) -> None:
        """Time passes with no bar: timers fire."""
        self.ts += ms
        self.clock.set(self.ts)
        self.engine.run_timers(self.ts)

    def settle(self, *, until: frozenset[str], limit_ms: int) -> None:
        """Let time pass a second at a time until the symbol is in one of ``until``."""
        waited = 0
        while self.phase() not in until and waited < limit_ms:
            self.advance(SECOND)
            waited += SECOND

    def past_lag(self) -> None:
        """Move the clock past any venue's visibility lag (MEXC's: a new order or fill is
        not seen at once), so what the scenario reads of the exchange is all there is."""
        self.clock.set(self.ts + PAST_LAG_MS)

    def phase(self) -> str:
        return self.engine.states[self.symbol].phase.value

    def all(self) -> list[Doc]:
        """Every record published so far, as plain dicts."""
        return cast(list[Doc], self.sink.records)

    def records(self, kind: str, **match: Any) -> list[Doc]:
        return [
            r
            for r in self.all()
            if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())
        ]


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@contextlib.contextmanager
def engine_log(into: list[str]) -> Iterator[None]:
    """What the engine logs while a scenario runs goes to the scenario's report, not to
    the terminal (where it would break up the progress lines)."""
    logger = logging.getLogger("fsmtrader")
    kept, before = _Kept(), logger.propagate
    logger.addHandler(kept)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(kept)
        logger.propagate = before
        into.extend(kept.lines)
