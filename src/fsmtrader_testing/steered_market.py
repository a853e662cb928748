"""A durable paper session on a price path the test writes: the session's synthetic market
(and so its filters and its simulated exchange's file) is replaced, before ``start``, by
candles at the synthetic market's own price level times the test's factors. Everything
else is the real session: its SQLite store, the simulated exchange with its own database,
the wall clock (accelerated), the loop, the restart.

Reopening the same state directory must steer again with the same path (the session
rebuilds its market from the seed on every open)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from fsmtrader.config import Settings
from fsmtrader.feeds.candles import Candles, IntColumn
from fsmtrader.session import PaperSession

MIN = 60_000


def factors_cycle(
    *,
    flat: int = 12,
    dip: float = 0.99,
    hold: int = 3,
    fall: float = 0.97,
    low: int = 4,
    back: int = 11,
) -> list[float]:
    """One round trip that loses: ``flat`` minutes at the base price, a dip that triggers
    an entry (held ``hold`` minutes so the buy fills), a fall through the stop-loss
    (``low`` minutes, the ladder sells into it), then back to the base for ``back``."""
    return [1.0] * flat + [dip] * hold + [fall] * low + [1.0] * back


def steer(session: PaperSession, paths: Mapping[str, Sequence[float]], lead_in: int = 0) -> None:
    """Replace the session's market (before ``start``) with ``paths``: per symbol, one
    factor per minute of the session (the last one repeats to the session's end) on the
    synthetic market's first price, after ``lead_in`` flat minutes; the warm-up history
    is flat at that price.

    The lead-in absorbs the wall time between opening the session (its clock starts) and
    its first loop pass: bars before that are caught up by ``start`` without trading, so
    on a loaded machine a path's first moves would otherwise go by unseen."""
    info = session.info
    history, series = [], []
    for hist, ser in zip(session.history, session.series, strict=True):
        base = hist.close[0]
        factors = [1.0] * lead_in + list(paths.get(ser.symbol, [1.0]))
        factors += [factors[-1]] * (info.minutes - len(factors))
        hist_prices = [base] * len(hist)
        history.append(_candles(ser.symbol, hist.ts, hist_prices))
        ts = [info.start_sim_ms + i * MIN for i in range(info.minutes)]
        series.append(_candles(ser.symbol, ts, [base * f for f in factors[: info.minutes]]))
    session.history, session.series = history, series


def open_steered(
    s: Settings,
    state: Path,
    paths: Mapping[str, Sequence[float]],
    *,
    speed: float,
    lead_in: int = 0,
) -> PaperSession:
    """A PaperSession on ``state`` steered along ``paths`` after ``lead_in`` flat minutes
    (see ``steer``), long enough for both, not started."""
    minutes = lead_in + max(len(p) for p in paths.values())
    session = PaperSession(s, state, hours=minutes / 60, speed=speed)
    try:
        steer(session, paths, lead_in)
    except BaseException:
        session.close()
        raise
    return session


def _candles(symbol: str, ts: IntColumn, prices: list[float]) -> Candles:
    vol = [1_000.0] * len(ts)
    return Candles(
        symbol, [int(t) for t in ts], list(prices), list(prices), list(prices), list(prices), vol
    )
