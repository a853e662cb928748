"""One step of every driver. The backtest, the paper and live sessions and the test harness
all feed a bar (or a polled tick) to the engine through :func:`step`, so the order of
"timers, then the exchange, then the engine" cannot drift apart between them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from fsmtrader.exchange.types import Ticker


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
        /,
    ) -> None: ...


class Market(Protocol):
    """A simulated exchange, which moves only when the driver feeds it a bar."""

    def update_market(
        self, symbol: str, ts_ms: int, price: float, high: float, low: float, volume: float, /
    ) -> None: ...


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
