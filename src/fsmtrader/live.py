"""Sessions on a real venue through the ccxt adapter: live (real orders) or paper with
live prices (the venue's tickers, fills on our simulated exchange). Same engine, same
store, same recovery as the paper session; only the plugs differ.

Prices are polled tickers: each poll is one "bar" at the wall-clock time of the poll. On
start the drop anchor is warmed up from the venue's 1-minute candles (WARMUP backfill).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.clock import WallClock
from fsmtrader.config import Settings, credentials
from fsmtrader.drive import step
from fsmtrader.engine.modes import LIVE, PAPER, check_mode_change, saved_modes, session_modes
from fsmtrader.errors import ConfigError, ExchangeError, StoreError
from fsmtrader.exchange.by_mode import (
    CANARY_SIM_FILE,
    DEPOSIT_META,
    ByModeExchange,
    decode_amounts,
    encode_amounts,
)
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.exchange.types import Ticker
from fsmtrader.progress import Progress
from fsmtrader.reconcile import ReconcileReport
from fsmtrader.runner import sim_exchange, sim_params
from fsmtrader.session import DurableSession, open_sim_exchange
from fsmtrader.store.owner import Owner, account_fingerprint

log = logging.getLogger("fsmtrader.live")


class LiveSession(DurableSession):
    def __init__(
        self, settings: Settings, state_dir: Path, *, paper: bool, send: bool = True
    ) -> None:
        super().__init__(settings, state_dir, live_owner(settings, paper=paper), send=send)
        self.paper = paper
        self.live_venue = not paper
        self.venue: CcxtExchange | None = None
        # paper trading: the simulator standing in for the venue, which the prices drive
        self.sim: SimExchange | None = None
        try:
            self._open()
        except BaseException:
            if self.sim is not None:
                self.sim.close()
            if self.venue is not None:
                self.venue.close()
            self.store.close()
            self.lock.release()
            raise

    def _open(self) -> None:
        s = self.s
        creds = credentials(s)
        key, secret = creds if creds is not None else (None, None)
        ex = s.exchange
        options = CcxtOptions(
            ex.name,
            api_key=key,
            api_secret=secret,
            base_url=ex.base_url or None,
            timeout_ms=ex.timeout_ms,
            profile=ex.profile,
        )
        # inline: the engine calls from this one thread, so the adapter's loop runs here
        self.venue = CcxtExchange(options, inline=True)
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
        exchange: SimExchange | CcxtExchange | ByModeExchange
        if self.paper:  # the simulator is the venue: its fees, not the real venue's
            self.filters = sim_params(s).with_fees(self.filters)
            sim_clock = self.price_path.exchange_clock(self.clock)
            exchange = self.sim = open_sim_exchange(s, self.state_dir, self.filters, sim_clock)
        else:
            self.exact_balances = False  # the account may hold more than the bot manages
            exchange = self._canary(self.venue) or self.venue
            if not (self.snap.symbols or self.snap.orders):
                free = self.venue.fetch_balance().get(s.market.quote)
                have = free.free if free is not None else Decimal(0)
                cash = min(s.market.starting_balance, have)  # never budget what isn't there
        self.exchange = exchange
        self._make_engine(self.clock, exchange, self.filters, starting_cash=cash)

    def _canary(self, venue: CcxtExchange) -> ByModeExchange | None:
        """Live with paper symbols (or a simulator from an earlier run of some): their
        orders go to a simulator in the state directory, fed by the venue's tickers, the
        live ones' to the venue (``exchange.by_mode``). None: every order is live."""
        s, path = self.s, self.state_dir / CANARY_SIM_FILE
        modes = session_modes(s, live=True)
        # a refused mode change must leave the directory as it was: check before creating
        check_mode_change(self.snap, saved_modes(self.snap, LIVE), modes)
        if PAPER not in modes.values() and not path.exists():
            return None
        deposit_text = self.snap.meta.get(DEPOSIT_META)
        if deposit_text is None and path.exists():
            raise StoreError(
                f"{path}: a simulator this live session did not create (no {DEPOSIT_META} "
                "recorded); move it away to trade paper symbols here"
            )
        sim_filters = sim_params(s).with_fees(self.filters)  # its fees, not the venue's
        try:
            self.sim = sim_exchange(s, sim_filters, self.clock, path=path)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        if deposit_text is None:  # created now: what it holds is what it was funded with
            deposit_text = encode_amounts({a: b.total for a, b in self.sim.fetch_balance().items()})
            self.store.set_meta(DEPOSIT_META, deposit_text)
        for sym, mode in modes.items():
            if mode == PAPER:
                self.filters[sym] = sim_filters[sym]
        return ByModeExchange(venue, self.sim, modes, decode_amounts(deposit_text))

    def start(self) -> ReconcileReport:
        """Warm the anchors from the venue's candles, then recover and reconcile."""
        venue = self._venue()
        now = self.clock.now_ms()
        window = self.s.entry.anchor_window_min
        self.price_path.restart(now)
        for sym in self.engine.symbols:
            try:
                bars = venue.fetch_ohlcv(
                    sym, "1m", since=now - (window + 2) * 60_000, limit=window + 5
                )
            except ExchangeError as exc:
                log.warning("%s: no candle history for warm-up (%s)", sym, exc)
                continue
            closed = [(int(b[0]), float(b[4]), float(b[5])) for b in bars if b[0] + 60_000 <= now]
            self.price_path.prime(sym, closed)
            self.engine.states[sym].signal.prime(closed)
            if self.sim is not None and closed:
                ts, close, vol = closed[-1]
                self.price_path.market(ts, sym, close, close, close, vol)
                self.sim.update_market(sym, ts, close, close, close, vol)
        return self._recover(now)

    def _venue(self) -> CcxtExchange:
        if self.venue is None:  # _open sets it or raises: a bug, even under python -O
            raise RuntimeError("LiveSession: the venue is not open")
        return self.venue

    def run(
        self,
        *,
        stop_after_s: float | None = None,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> dict[str, Any]:
        """Poll prices and trade until stopped (or ``stop_after_s`` of wall time)."""
        engine, poll = self.engine, self.s.exchange.poll_s
        wall_stop = time.monotonic() + stop_after_s if stop_after_s is not None else None
        ticks = 0
        while not should_stop():
            started = time.monotonic()
            ticks += self._poll_round()
            now = self.clock.now_ms()
            self.price_path.timers(now, engine.next_due())
            engine.run_timers(now)
            self.price_path.flush()
            engine.check_stuck()
            self.service()
            if progress is not None:
                progress(ticks, 0)
            if wall_stop is not None and time.monotonic() >= wall_stop:
                break
            self.idle(max(poll - (time.monotonic() - started), 0.0))
        return engine.summary()

    def _poll_round(self) -> int:
        """One ticker per symbol, each a bar at the time of its poll; returns how many."""
        venue, ticks = self._venue(), 0
        sim, mode = self.sim, self.engine.mode
        for sym in self.engine.symbols:
            try:
                t = venue.fetch_ticker(sym)
            except ExchangeError as exc:
                log.warning("%s: no price this round (%s)", sym, exc)
                continue
            if t.bid <= 0 or t.ask <= 0:
                continue
            price, vol = float((t.bid + t.ask) / 2), float(t.volume)
            # a paper symbol's bar moves the simulator, whose book quotes it; live, the
            # polled ticker is the venue's quote: the engine reuses it
            on_sim = sim if sim is not None and (self.paper or mode(sym) == PAPER) else None
            quote: Ticker | None = None if on_sim else t
            now = self.clock.now_ms()
            self.price_path.bar(now, sym, price, price, price, vol, now)
            step(self.engine, on_sim, now, sym, price, price, price, vol, quote)
            ticks += 1
        return ticks

    def retry_stats(self) -> Mapping[str, Any]:
        return self.venue.retry_stats() if self.venue is not None else {}

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.venue is not None and self.venue is not self.exchange:
                self.venue.close()


def live_owner(s: Settings, *, paper: bool) -> Owner:
    """Whose books a session on the configured venue keeps: paper ones on its prices, or
    a live account's, identified by its key's fingerprint (never the key)."""
    if paper:
        return Owner("paper-live", s.exchange.name)
    creds = credentials(s)
    if creds is None:
        raise ConfigError("exchange.api_key: live trading needs credentials")
    return Owner("live", s.exchange.name, account_fingerprint(creds[0]))
