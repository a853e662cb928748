"""One step of every driver. The paper and live sessions and the test harness feed a bar
(or a polled tick) to the engine through :func:`step`, the backtest feeds each candle
through :func:`step_bar`, so the order of "timers, then the exchange, then the engine"
cannot drift apart between them.

A candle in a backtest (:func:`step_bar`) acts at its close, ``open + interval``: every
fill, transition and trade it causes is stamped then. Its path (open, low and high in the
order ``both_touch`` says, close) is walked by ``strategy.bar_exit``; a take-profit,
stop-loss or trailing stop met inside it sells at the level it met: the driver tells the
simulated exchange that the market trades there (``quote_at``: the bid is the level on
the tick grid, rounded towards the candle's inside, with no half spread, because the level
is a price the candle traded at), then the engine's exit runs as always, confirmed on that
bid and sold down the IOC ladder from it. Then the exchange sees the close, and the engine
the close (the entry signal). Timers due before the close fire first, on the last price;
one due at the close fires after the candle's path, on the close (an exact max hold).
With ``entry_on = next_open`` a signal on a close is entered at the next candle's open
(``Engine.open_entries``), on a quote at that open, before that candle's path; it is
stamped at that open (the signal candle's close), or later if another symbol's candle of
the same open time has already acted at its close (the clock never goes back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from fsmtrader.exchange.types import Ticker
from fsmtrader.strategy import BothTouch

#: One candle as the backtest feeds it: (open time ms, symbol, open, high, low, close, volume).
CandleBar = tuple[int, str, float, float, float, float, float]


class Driven(Protocol):
    """The engine as a driver sees it."""

    def next_due(self) -> int | None: ...

    def run_timers(self, now: int, /) -> None: ...

    def on_bar(
        self,
        ts: int,
        symbol: str,
        high: float,
        low: float,
        close: float,
        vol: float,
        quote: Ticker | None = None,
        at_open: bool = False,
        /,
    ) -> None: ...


class Market(Protocol):
    """A simulated exchange, which moves only when the driver feeds it a bar."""

    def update_market(
        self, symbol: str, ts_ms: int, price: float, high: float, low: float, volume: float, /
    ) -> None: ...


class BarDriven(Driven, Protocol):
    """The engine as the backtest's candle driver sees it. ``watching``: the symbols whose
    candle needs more than a bar (a held position, whose exits the path may meet, or a
    signal waiting in ``open_entries`` for this open)."""

    watching: set[str]
    open_entries: dict[str, tuple[int, float, float]]

    def candle_exit(
        self, ts: int, symbol: str, o: float, h: float, lo: float, c: float, rule: BothTouch, /
    ) -> tuple[str, Decimal] | None: ...

    def fire_exit(self, symbol: str, reason: str, /) -> None: ...

    def enter_at_open(self, ts: int, symbol: str, /) -> None: ...


class BarMarket(Market, Protocol):
    """The simulated exchange as the candle driver sees it."""

    def quote_at(self, symbol: str, ts_ms: int, bid: Decimal, volume: float, /) -> None: ...


@dataclass(frozen=True, slots=True)
class BarRules:
    """How a backtest reads a candle (the ``[backtest]`` settings): which extreme of a
    candle that reaches both the stop and the target comes first, and whether an entry
    signal buys at the signal candle's close or at the next candle's open."""

    both_touch: BothTouch = "stop_first"
    next_open: bool = False


def step_bar(
    engine: BarDriven,
    market: BarMarket,
    bar: CandleBar,
    interval_ms: int,
    rules: BarRules,
    before: Callable[[int], None] | None = None,
) -> None:
    """One candle of a backtest (see the module docstring for the order of things).
    ``before(ts)`` moves the backtest's clock (to the open for a next-open entry, then to
    the close). The hot path of a backtest: a candle of a symbol the engine is not
    watching, with no timer due, costs what :func:`step` costs."""
    ts, sym, _o, h, lo, c, v = bar
    t = ts + interval_ms
    due = engine.next_due()
    timed = due is not None and due <= t
    if timed or sym in engine.watching:
        _eventful(engine, market, bar, t, rules, before, timed)
        return
    if before is not None:
        before(t)
    market.update_market(sym, t, c, h, lo, v)
    engine.on_bar(t, sym, h, lo, c, v, None, rules.next_open)


def _eventful(
    engine: BarDriven,
    market: BarMarket,
    bar: CandleBar,
    t: int,
    rules: BarRules,
    before: Callable[[int], None] | None,
    timed: bool,
) -> None:
    """A candle with something to do besides its close: a signal waiting for its open,
    timers due by its close (``timed``), a held position's exits along its path. (A
    timer armed while the candle acts is due after its close.)"""
    ts, sym, o, h, lo, c, v = bar
    if sym in engine.open_entries:
        engine.run_timers(ts)  # (and to the open: a backtest's clock, never back)
        market.update_market(sym, ts, o, o, o, v)
        engine.enter_at_open(ts, sym)
        timed = True  # (its buy may have armed a timer: look again)
    if timed:
        _run_timers(engine, t - 1)  # inside the candle: on the last price
    if before is not None:
        before(t)
    if sym in engine.watching:
        hit = engine.candle_exit(t, sym, o, h, lo, c, rules.both_touch)
        if hit is not None:
            market.quote_at(sym, t, hit[1], v)
            engine.fire_exit(sym, hit[0])
    market.update_market(sym, t, c, h, lo, v)
    if timed:
        _run_timers(engine, t)  # at the close (a max hold ends here), on the close
    engine.on_bar(t, sym, h, lo, c, v, None, rules.next_open)


def _run_timers(engine: Driven, now: int) -> None:
    due = engine.next_due()
    if due is not None and due <= now:
        engine.run_timers(now)


def step(
    engine: Driven,
    market: Market | None,
    ts: int,
    symbol: str,
    high: float,
    low: float,
    close: float,
    volume: float,
    quote: Ticker | None = None,
    before: Callable[[int], None] | None = None,
) -> None:
    """One bar of ``symbol`` at ``ts``. Timers due by ``ts`` fire first (they still see the
    old price); then ``before(ts)`` (a backtest moves its clock there, the paper session
    records the bar as seen); then the simulated exchange, so resting orders fill against
    the bar; then the engine. ``market`` is None where the venue moves by itself (live);
    ``quote`` is the venue's ticker the bar was made from, when the caller has one, so the
    engine does not ask for it again. The hot path of a backtest: keep it lean."""
    due = engine.next_due()
    if due is not None and due <= ts:
        engine.run_timers(ts)
    if before is not None:
        before(ts)
    if market is not None:
        market.update_market(symbol, ts, close, high, low, volume)
    engine.on_bar(ts, symbol, high, low, close, volume, quote)
