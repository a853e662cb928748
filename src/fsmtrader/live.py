"""Sessions on a real venue through the ccxt adapter: live (real orders) or paper with
live prices (the venue's tickers, fills on our simulated exchange). Same engine, same
store, same recovery as the paper session; only the plugs differ.

Prices are polled tickers: each poll is one "bar" at the wall-clock time of the poll. On
start the drop anchor is warmed up from the venue's 1-minute candles (WARMUP backfill).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.clock import WallClock
from fsmtrader.config import Settings, credentials
from fsmtrader.engine import Engine
from fsmtrader.errors import ConfigError, ExchangeError
from fsmtrader.exchange.ccxt_adapter import CcxtExchange, local_urls
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.reconcile import ReconcileReport
from fsmtrader.runner import sim_params
from fsmtrader.session import DurableSession, open_sim_exchange

log = logging.getLogger("fsmtrader.live")
Progress = Callable[[Engine, int, int], None]


class LiveSession(DurableSession):
    def __init__(self, settings: Settings, state_dir: Path, *, paper: bool) -> None:
        super().__init__(settings, state_dir)
        self.paper = paper
        self.venue: CcxtExchange | None = None
        try:
            self._open()
        except BaseException:
            if self.venue is not None:
                self.venue.close()
            self.store.close()
            self.lock.release()
            raise

    def _open(self) -> None:
        s = self.s
        creds = credentials(s)
        key, secret = creds if creds is not None else (None, None)
        if not self.paper and creds is None:
            raise ConfigError("exchange.api_key: live trading needs credentials")
        ex = s.exchange
        urls = local_urls(ex.name, ex.base_url) if ex.base_url else None
        # inline: the engine calls from this one thread, so the adapter's loop runs here
        self.venue = CcxtExchange(
            ex.name,
            api_key=key,
            api_secret=secret,
            urls=urls,
            timeout_ms=ex.timeout_ms,
            inline=True,
        )
        markets = self.venue.load_markets()
        missing = [sym for sym in s.market.symbols if sym not in markets]
        if missing:
            known = ", ".join(sorted(markets)[:12])
            raise ConfigError(
                f"market.symbols: {', '.join(missing)} not traded on {ex.name} (e.g. {known})"
            )
        self.filters = {sym: markets[sym] for sym in s.market.symbols}
        self.clock = WallClock()
        cash: Decimal | None = None
        exchange: SimExchange | CcxtExchange
        if self.paper:  # the simulator is the venue: its fees, not the real venue's
            self.filters = sim_params(s).with_fees(self.filters)
            exchange = open_sim_exchange(s, self.state_dir, self.filters, self.clock)
        else:
            self.exact_balances = False  # the account may hold more than the bot manages
            exchange = self.venue
            if not (self.snap.symbols or self.snap.orders):
                free = self.venue.fetch_balance().get(s.market.quote)
                have = free.free if free is not None else Decimal(0)
                cash = min(s.market.starting_balance, have)  # never budget what isn't there
        self.exchange = exchange
        self._make_engine(self.clock, exchange, self.filters, starting_cash=cash)
        # which exchange these books belong to, so reconcile can find it again
        self.store.set_meta("venue", json.dumps({"paper": self.paper, "exchange": ex.name}))

    def start(self) -> ReconcileReport:
        """Warm the anchors from the venue's candles, then recover and reconcile."""
        assert self.venue is not None
        now = self.clock.now_ms()
        window = self.s.entry.anchor_window_min
        for sym in self.s.market.symbols:
            try:
                bars = self.venue.fetch_ohlcv(
                    sym, "1m", since=now - (window + 2) * 60_000, limit=window + 5
                )
            except ExchangeError as exc:
                log.warning("%s: no candle history for warm-up (%s)", sym, exc)
                continue
            closed = [(int(b[0]), float(b[4]), float(b[5])) for b in bars if b[0] + 60_000 <= now]
            self.engine.signals[sym].prime(closed)
            if self.paper and closed:
                ts, close, vol = closed[-1]
                self.exchange_sim().update_market(sym, ts, close, close, close, vol)
        return self._recover(now)

    def exchange_sim(self) -> SimExchange:
        assert isinstance(self.exchange, SimExchange)
        return self.exchange

    def run(
        self,
        *,
        stop_after_s: float | None = None,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> dict[str, Any]:
        """Poll prices and trade until stopped (or ``stop_after_s`` of wall time)."""
        assert self.venue is not None
        engine, venue = self.engine, self.venue
        sim = self.exchange if isinstance(self.exchange, SimExchange) else None
        poll = self.s.exchange.poll_s
        wall_stop = time.monotonic() + stop_after_s if stop_after_s is not None else None
        ticks = 0
        while not should_stop():
            started = time.monotonic()
            for sym in self.s.market.symbols:
                try:
                    t = venue.fetch_ticker(sym)
                except ExchangeError as exc:
                    log.warning("%s: no price this round (%s)", sym, exc)
                    continue
                if t.bid <= 0 or t.ask <= 0:
                    continue
                now = self.clock.now_ms()
                due = engine.next_due()
                if due is not None and due <= now:
                    engine.run_timers(now)
                price = float((t.bid + t.ask) / 2)
                vol = float(t.volume)
                if sim is not None:
                    sim.update_market(sym, now, price, price, price, vol)
                # live, the polled ticker is the venue's quote: the engine reuses it
                engine.on_bar(now, sym, price, price, price, vol, quote=None if sim else t)
                ticks += 1
            engine.run_timers(self.clock.now_ms())
            engine.check_stuck()
            if progress is not None:
                progress(engine, ticks, 0)
            if wall_stop is not None and time.monotonic() >= wall_stop:
                break
            time.sleep(max(poll - (time.monotonic() - started), 0.0))
        return engine.summary()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.venue is not None and self.venue is not self.exchange:
                self.venue.close()
