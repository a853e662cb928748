"""Sessions on the simulated exchange: the backtest and demo drivers and their run folders.

A run folder is written as ``<name>.partial`` and renamed only when the run finished, so
an interrupted run is never presented as complete.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.audit import EventBus, JsonlWriter
from fsmtrader.clock import Clock, SimClock
from fsmtrader.config import Settings
from fsmtrader.config_wiring import bar_rules, build_engine
from fsmtrader.drive import step_bar
from fsmtrader.engine import Engine
from fsmtrader.errors import DataError, read_json
from fsmtrader.exchange.ccxt_adapter.market_filters import filters_from_ccxt
from fsmtrader.exchange.simulated import SIM_VENUES, SimExchange, SimParams
from fsmtrader.exchange.simulated.venue import BNB
from fsmtrader.feeds import Bar, Candles, bars
from fsmtrader.markets import MarketFilters, plain
from fsmtrader.progress import Progress
from fsmtrader.research.report import write_report

# Filters like Binance's for the demo's default symbols, so the demo needs no files.
BUILTIN_FILTERS: dict[str, tuple[str, str, str, str]] = {
    "BTC/USDT": ("0.01", "0.00001", "0.00001", "5"),
    "ETH/USDT": ("0.01", "0.0001", "0.0001", "5"),
    "SOL/USDT": ("0.01", "0.001", "0.001", "5"),
    "DOGE/USDT": ("0.00001", "1", "1", "5"),
    "LTC/USDT": ("0.01", "0.001", "0.001", "5"),
    "XRP/USDT": ("0.0001", "0.1", "0.1", "5"),
    "ADA/USDT": ("0.0001", "0.1", "0.1", "5"),
}


def filters_from_price(symbol: str, price: float, quote: str = "USDT") -> MarketFilters:
    """Sensible filters when none are given: a tick of about 1/10,000 of the price, a step
    that makes a 5-quote order a few hundred steps, min notional 5. (The simulated server
    derives finer ones from the synthetic price grid: a different source, kept apart.)"""
    if symbol in BUILTIN_FILTERS:
        tick, step, min_qty, min_notional = BUILTIN_FILTERS[symbol]
        return _filters(symbol, tick, step, min_qty, min_notional)
    if not math.isfinite(price) or price <= 0:
        raise DataError(f"{symbol}: cannot derive filters from price {price}")
    tick_exp = math.floor(math.log10(price)) - 4
    step_exp = min(math.floor(math.log10(5 / price)) - 2, 0)
    tick, step = f"1e{tick_exp}", f"1e{step_exp}"
    return _filters(symbol, tick, step, step, "5", quote)


def filters_for(series: Iterable[Candles], quote: str = "USDT") -> dict[str, MarketFilters]:
    """Filters for each series, from its first price (see ``filters_from_price``)."""
    return {c.symbol: filters_from_price(c.symbol, c.close[0], quote) for c in series}


def _filters(
    symbol: str, tick: str, step: str, min_qty: str, min_notional: str, quote: str = ""
) -> MarketFilters:
    base, _, q = symbol.partition("/")
    return MarketFilters(
        symbol=symbol,
        tick_size=plain(Decimal(tick)),
        step_size=plain(Decimal(step)),
        min_qty=plain(Decimal(min_qty)),
        min_notional=Decimal(min_notional),
        base=base,
        quote=q or quote,
    )


def load_markets_file(path: Path) -> dict[str, MarketFilters]:
    """Filters from a JSON file of CCXT markets: {symbol: market}, [market, ...], or a
    file with a top-level "markets" key (like ../shared/data's fixture)."""
    data = read_json(
        path, missing=f"{path}: markets file not found", bad=f"{path}: not a JSON markets file"
    )
    if isinstance(data, dict) and isinstance(data.get("markets"), dict | list):
        data = data["markets"]
    items = data.values() if isinstance(data, dict) else data
    out: dict[str, MarketFilters] = {}
    for market in items:
        if not isinstance(market, dict) or "symbol" not in market:
            continue
        try:
            f = filters_from_ccxt(market)
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from None
        out[f.symbol] = f
    if not out:
        raise DataError(f"{path}: no markets found")
    return out


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    engine: Engine = field(repr=False)


def sim_params(settings: Settings) -> SimParams:
    """The simulated venue the settings describe."""
    sim = settings.sim
    venue = SIM_VENUES[sim.venue].with_fee_asset(sim.fee_asset, sim.bnb_price)
    if sim.visibility_lag_ms is not None:
        venue = venue.with_lag(sim.visibility_lag_ms)
    return SimParams(
        seed=settings.seed,
        maker_fee_bps=sim.maker_fee_bps,
        taker_fee_bps=sim.taker_fee_bps,
        spread_bps=sim.spread_bps,
        depth_quote=sim.depth_quote,
        depth_levels=sim.depth_levels,
        level_step_bps=sim.level_step_bps,
        venue=venue,
    )


def sim_exchange(
    settings: Settings, filters: dict[str, MarketFilters], clock: Clock, path: Path | None = None
) -> SimExchange:
    """The simulated exchange the settings describe: in memory, or in its own database
    file at ``path`` (then it outlives the bot)."""
    params = sim_params(settings)
    balances = {settings.market.quote: settings.market.starting_balance}
    if settings.sim.starting_bnb > 0:
        balances[BNB] = settings.sim.starting_bnb  # pays the fees when fee_asset = bnb
    if path is None:
        return SimExchange(filters, balances, clock=clock, params=params)
    return SimExchange.open(path, filters, balances, clock=clock, params=params)


def new_run_dir(runs_dir: Path, label: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = runs_dir / f"{label}-{stamp}"
    path, n = base, 1
    while path.exists() or path.with_name(path.name + ".partial").exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


class Backtest:
    """A run of the engine over ``series`` on a fresh simulated exchange, writing the audit
    trail and summary into ``run_dir`` (via ``run_dir.partial``). Build it, then ``run`` it
    once; ``engine`` is there from the start, for a display to read while it runs."""

    def __init__(
        self,
        settings: Settings,
        series: Sequence[Candles],
        filters: dict[str, MarketFilters],
        run_dir: Path,
        *,
        backfill: Sequence[Candles] = (),
    ) -> None:
        self.settings, self.series, self.run_dir = settings, series, run_dir
        filters = sim_params(settings).with_fees(filters)  # the simulator is the venue
        self.partial = run_dir.with_name(run_dir.name + ".partial")
        self.partial.mkdir(parents=True, exist_ok=False)
        self.writer = JsonlWriter(self.partial / "audit.jsonl")
        bus = EventBus()
        bus.subscribe(self.writer)
        start_ms = int(series[0].ts[0]) if series and len(series[0]) else 0
        self.clock = SimClock(start_ms)
        self.exchange = sim_exchange(settings, filters, self.clock)
        self.engine = build_engine(
            settings, clock=self.clock, exchange=self.exchange, filters=filters, bus=bus
        )
        running = self.engine.states  # the symbols not off (market.modes)
        self.series = series = [c for c in series if c.symbol in running]
        self.fast = settings.backtest.fast and not backfill  # (fast: unprimed signals)
        self.stepped = 0
        for hist in (h for h in backfill if h.symbol in running):
            after = hist.interval_ms()  # each candle at its close, as the run's own candles
            prices = [(t + after, c, v) for t, _s, _o, _h, _l, c, v in bars([hist])]
            self.engine.states[hist.symbol].signal.prime(prices)

    def run(
        self,
        *,
        progress: Progress | None = None,
        speed: float = 0.0,
        extra_summary: dict[str, Any] | None = None,
        report_html: bool = True,
    ) -> RunResult:
        """Drive every bar (``speed`` > 0: at most that many simulated seconds per wall
        second), then write the summary, config, trades and report (``report_html``:
        its page too) and rename the folder."""
        engine, series, partial = self.engine, self.series, self.partial
        total = sum(len(c) for c in series)
        started, cpu = time.perf_counter(), time.process_time()
        try:
            fast = self.fast and speed <= 0
            bars = self._drive_fast(progress) if fast else self._drive(total, progress, speed)
        finally:
            self.writer.close()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        engine.check_stuck()
        if bars != total:
            raise RuntimeError(f"backtest drove {bars} bars of {total}")
        summary = {
            "candles": bars,
            "symbols": [c.symbol for c in series],
            **engine.summary(),
            "audit_sha256": self.writer.sha256,
            "audit_lines": self.writer.lines,
            "elapsed_s": round(elapsed, 3),
            "candles_per_s": round(bars / elapsed) if elapsed > 0 else None,
            "loop_s": round(elapsed, 4),
            "loop_cpu_s": round(cpu, 4),  # (the loop's own CPU time: a busy machine's wall)
            "fast": fast,
            "stepped": self.stepped if fast else bars,  # candles the engine saw one by one
            **(extra_summary or {}),
        }
        config = self.settings.redacted_dict()
        (partial / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        (partial / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (partial / "trades.jsonl").write_text(
            "".join(json.dumps(t.to_record()) + "\n" for t in engine.portfolio.trades)
        )
        write_report(
            partial,
            series,
            summary,
            engine.portfolio.trades,
            self.settings.market.starting_balance,
            open_positions=engine.portfolio.positions.values(),
            html=report_html,
        )
        os.replace(partial, self.run_dir)
        return RunResult(self.run_dir, summary, engine)

    def _drive(self, total: int, progress: Progress | None, speed: float) -> int:
        """The backtest loop: one :func:`~fsmtrader.drive.step_bar` per candle, which
        moves the clock to where the candle acts (its close). Reports progress (and
        paces) every 1/200 of the run."""
        engine, exchange, set_clock = self.engine, self.exchange, self.clock.set
        pace = _pacer(int(self.series[0].ts[0]) if total else 0, progress, speed)
        every = max(total // 200, 1)
        rules = bar_rules(self.settings)
        interval = _interval(self.series)
        n = 0
        for bar in _bars(self.series):
            step_bar(engine, exchange, bar, interval, rules, set_clock)
            n += 1
            if n % every == 0:
                pace(n, total, bar[0])
        if progress is not None:
            progress(n, total)
        return n

    def _drive_fast(self, progress: Progress | None) -> int:
        """``backtest.fast``: the same bars, skipping those where nothing can act
        (``research.fast``: the same trades and audit trail as ``_drive``)."""
        from fsmtrader.research.fast import FastDriver  # (numpy: only for fast runs)

        rules = bar_rules(self.settings)
        driver = FastDriver(self.engine, self.exchange, self.series, self.clock.set, rules)
        n = driver.run(progress)
        self.stepped = driver.steps
        return n


def _pacer(sim0: int, progress: Progress | None, speed: float) -> Callable[[int, int, int], None]:
    """``pace(done, total, ts)``: report progress, then sleep while the run is ahead of
    ``speed`` simulated seconds per wall second (0: as fast as possible)."""
    wall0 = time.monotonic()

    def pace(done: int, total: int, ts: int) -> None:
        if progress is not None:
            progress(done, total)
        if speed > 0:
            ahead = (ts - sim0) / 1000 / speed - (time.monotonic() - wall0)
            if ahead > 0:
                time.sleep(ahead)

    return pace


def _interval(series: Sequence[Candles]) -> int:
    """The series' candle interval (a candle acts at its close, open + interval)."""
    interval = {c.symbol: c.interval_ms() for c in series}
    if len(set(interval.values())) > 1:  # their closes would not come in time order
        spacing = ", ".join(f"{sym} {ms // 1000} s" for sym, ms in interval.items())
        raise DataError(f"backtest: the series have different candle intervals ({spacing})")
    return next(iter(interval.values()), 0)


def _bars(series: Sequence[Candles]) -> Iterator[Bar]:
    """The run's bars in (ts, series order) order, as plain Python values."""
    return bars(series)
