"""The drop-buy strategy: indicator math in floats, decisions as plain answers.

Entry: the price falls ``drop_trigger_pct`` below its anchor (the rolling max over
``anchor_window_min``). Exit: take-profit, stop-loss, trailing stop or max hold. These
objects are updated on every bar, so they are small and allocation-free.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

# Thresholds are float products (60 * 0.97 = 58.199999999999996); a relative epsilon makes
# a move of exactly the configured percentage count, as a user reading the config expects.
EPS = 1e-12


class DropSignal:
    """Rolling max (monotonic deque) and optional SMA for one symbol."""

    __slots__ = (
        "_maxq",
        "_sma",
        "_sma_sum",
        "_sma_window",
        "first_ts",
        "last_close",
        "last_volume",
        "trigger",
        "warm_after_ms",
        "window_ms",
    )

    def __init__(self, window_min: int, drop_pct: float, sma_window: int = 0) -> None:
        self.window_ms = window_min * 60_000
        self.trigger = (1.0 - drop_pct / 100.0) * (1 + EPS)
        self._maxq: deque[tuple[int, float]] = deque()
        self._sma_window = sma_window
        self._sma: deque[float] = deque()
        self._sma_sum = 0.0
        self.first_ts = -1
        self.warm_after_ms = 0
        self.last_close = 0.0
        self.last_volume = 0.0

    def update(self, ts: int, close: float, volume: float) -> None:
        q = self._maxq
        while q and q[-1][1] <= close:
            q.pop()
        q.append((ts, close))
        cutoff = ts - self.window_ms
        while q[0][0] <= cutoff:
            q.popleft()
        if self.first_ts < 0:
            self.first_ts = ts
            self.warm_after_ms = ts + self.window_ms
        if self._sma_window:
            self._sma.append(close)
            self._sma_sum += close
            if len(self._sma) > self._sma_window:
                self._sma_sum -= self._sma.popleft()
        self.last_close = close
        self.last_volume = volume

    def prime(self, bars: list[tuple[int, float, float]]) -> None:
        """Warm up from history (ts, close, volume) so trading can start at once."""
        for ts, close, volume in bars:
            self.update(ts, close, volume)

    @property
    def anchor(self) -> float:
        return self._maxq[0][1] if self._maxq else 0.0

    def warm(self, ts: int) -> bool:
        return self.first_ts >= 0 and ts >= self.warm_after_ms

    def triggered(self, close: float) -> bool:
        return bool(self._maxq) and close <= self._maxq[0][1] * self.trigger

    def sma(self) -> float | None:
        if not self._sma_window or len(self._sma) < self._sma_window:
            return None
        return self._sma_sum / len(self._sma)

    def sma_ok(self) -> bool:
        """The SMA filter: do not catch a falling knife in a downtrend. The drop must come
        from an anchor that is still above the long SMA (a dip in an up/flat market)."""
        sma = self.sma()
        return sma is None or self.anchor >= sma


@dataclass(slots=True)
class ExitState:
    """The exit tracker of an open position. ``peak`` and ``trail_active`` move with the
    price and are saved; the levels are fixed at entry by the exit rule and rebuilt from
    the position on restore (the defaults never trigger an exit)."""

    peak: float
    trail_active: bool = False
    tp_px: float = math.inf
    sl_px: float = -math.inf
    trail_px: float = math.inf
    trail_factor: float = 0.0


@dataclass(frozen=True, slots=True)
class ExitRule:
    take_profit_pct: float
    stop_loss_pct: float
    trailing_activation_pct: float  # 0 = off
    trailing_distance_pct: float


def open_exit(
    entry: float, rule: ExitRule, peak: float | None = None, trail_active: bool = False
) -> ExitState:
    """The exit tracker of a position opened at ``entry``: its levels precomputed so a bar
    costs two comparisons (``peak``/``trail_active`` restore a saved tracker)."""
    on = rule.trailing_activation_pct > 0
    return ExitState(
        peak=entry if peak is None else peak,
        trail_active=trail_active,
        tp_px=entry * (1 + rule.take_profit_pct / 100) * (1 - EPS),
        sl_px=entry * (1 - rule.stop_loss_pct / 100) * (1 + EPS),
        trail_px=(
            entry * (1 + rule.trailing_activation_pct / 100) * (1 - EPS) if on else float("inf")
        ),
        trail_factor=(1 - rule.trailing_distance_pct / 100) * (1 + EPS),
    )


def check_exit(ex: ExitState, price: float) -> str:
    """'' to hold, else the exit reason; moves the peak (and arms the trailing stop) first.

    The level checks repeat ``peek_exit``'s on purpose: this runs on every bar of every
    open position (the backtest's hot path), where the extra call cost 2 % of a year's
    backtest (benchmarks/backtest_speed.py, alternating runs)."""
    if price > ex.peak:
        ex.peak = price
        if not ex.trail_active and price >= ex.trail_px:
            ex.trail_active = True
    if price >= ex.tp_px:
        return "take_profit"
    if price <= ex.sl_px:
        return "stop_loss"
    if ex.trail_active and price <= ex.peak * ex.trail_factor:
        return "trailing_stop"
    return ""


def peek_exit(ex: ExitState, price: float) -> str:
    """'' to hold, else the exit reason, against the levels as they stand (pure: the peak
    does not move; re-checking a quote at EXIT_EVAL)."""
    if price >= ex.tp_px:
        return "take_profit"
    if price <= ex.sl_px:
        return "stop_loss"
    if ex.trail_active and price <= ex.peak * ex.trail_factor:
        return "trailing_stop"
    return ""
