"""The drop-buy strategy: indicator math in floats, decisions as plain answers.

Entry: the price falls ``drop_trigger_pct`` below its anchor (the rolling max over
``anchor_window_min``). Exit: take-profit, stop-loss, trailing stop or max hold. These
objects are updated on every bar, so they are small and allocation-free.

Two exit checks share one tracker: :func:`check_exit` sees one price (a tick: paper and
live), :func:`bar_exit` walks a candle's path (a backtest), open, then its low and high in
the order ``both_touch`` says, then its close, and reports the level it met and where.
A tick (o = h = l = c) gives :func:`bar_exit` exactly what :func:`check_exit` gives.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

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

    def restore(
        self,
        anchors: list[tuple[int, float]],
        sma_closes: list[float] | None,
        sma_sum: float,
        first_ts: int,
        last: tuple[float, float],
    ) -> None:
        """Put the state ``update`` would have left, computed elsewhere (the fast driver's
        numpy precomputation): the anchor deque (strictly falling maxima), the SMA window
        and its sum, the first bar's time and the last (close, volume)."""
        q = self._maxq
        q.clear()
        q.extend(anchors)
        if sma_closes is not None:
            self._sma = deque(sma_closes)
            self._sma_sum = sma_sum
        if self.first_ts < 0:
            self.first_ts = first_ts
            self.warm_after_ms = first_ts + self.window_ms
        self.last_close, self.last_volume = last

    def prime(self, bars: list[tuple[int, float, float]]) -> None:
        """Warm up from history (ts, close, volume) so trading can start at once."""
        for ts, close, volume in bars:
            self.update(ts, close, volume)

    @property
    def sma_window(self) -> int:
        """Closes the SMA averages (0: no SMA filter)."""
        return self._sma_window

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
    # the levels themselves (the ``*_px`` above carry the EPS tolerance of the tests):
    # where a candle that crosses one meets it
    tp_at: float = math.inf
    sl_at: float = -math.inf
    trail_keep: float = 0.0  # the trailing stop sits at peak * trail_keep


@dataclass(frozen=True, slots=True)
class ExitRule:
    take_profit_pct: float
    stop_loss_pct: float
    trailing_activation_pct: float  # 0 = off
    trailing_distance_pct: float
    # true: the target is the gain after the buy's and the sell's fee (see ``target``)
    take_profit_net_of_fees: bool = False


def target(entry: float, rule: ExitRule, fee_rate: float = 0.0) -> float:
    """The take-profit price. Net of fees, the sale at it returns ``take_profit_pct`` on
    what the buy cost with its fee: ``x (1 - f) = entry (1 + f) (1 + tp)``, the ROI the
    peers (freqtrade) compute; otherwise the plain ``entry (1 + tp)``."""
    gross = entry * (1 + rule.take_profit_pct / 100)
    if not rule.take_profit_net_of_fees:
        return gross
    return gross * (1 + fee_rate) / (1 - fee_rate)


def open_exit(
    entry: float,
    rule: ExitRule,
    peak: float | None = None,
    trail_active: bool = False,
    fee_rate: float = 0.0,
) -> ExitState:
    """The exit tracker of a position opened at ``entry``: its levels precomputed so a bar
    costs two comparisons (``peak``/``trail_active`` restore a saved tracker; ``fee_rate``
    is each leg's fee, for a take-profit net of fees)."""
    on = rule.trailing_activation_pct > 0
    tp = target(entry, rule, fee_rate)
    sl = entry * (1 - rule.stop_loss_pct / 100)
    keep = 1 - rule.trailing_distance_pct / 100
    return ExitState(
        peak=entry if peak is None else peak,
        trail_active=trail_active,
        tp_px=tp * (1 - EPS),
        sl_px=sl * (1 + EPS),
        trail_px=(
            entry * (1 + rule.trailing_activation_pct / 100) * (1 - EPS) if on else float("inf")
        ),
        trail_factor=keep * (1 + EPS),
        tp_at=tp,
        sl_at=sl,
        trail_keep=keep,
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


BothTouch = Literal["stop_first", "target_first", "nearer_open_first"]


def bar_exit(
    ex: ExitState, o: float, h: float, lo: float, c: float, both_touch: BothTouch = "stop_first"
) -> tuple[str, float]:
    """(reason, price) of the first exit level a candle's path meets, ("", close) if none;
    moves the peak (and arms the trailing stop) along the path, as ``check_exit`` does.

    The path: the open (checked like a tick: a candle opening past a level meets it at the
    open), then the low and the high, then the close, the price moving straight between
    them. Rising, the peak follows and the target is met at its level; falling, the
    higher of the stop-loss and the armed trailing stop is met at its level (a tie is the
    stop-loss, as at one price). Which extreme comes first is ``both_touch``:
    ``stop_first`` (the conservative default: the low first, so a candle that reaches
    both levels is a loss), ``target_first`` (the high first), ``nearer_open_first`` (the
    extreme on the side of the level nearer the open; a tie goes to the stop). The price
    is the level itself, so it is always within the candle."""
    if calm(ex, h, lo):  # the common candle, in a few comparisons
        if h > ex.peak:
            ex.peak = h
        return "", c
    reason = check_exit(ex, o)
    if reason:
        return reason, o
    if _low_first(ex, o, both_touch):
        first, second = lo, h
    else:
        first, second = h, lo
    a = o
    for b in (first, second, c):
        if b > a:
            if b >= ex.tp_px:
                price = min(b, ex.tp_at)
                ex.peak = max(ex.peak, price)
                return "take_profit", price
            if b > ex.peak:
                ex.peak = b
                if not ex.trail_active and b >= ex.trail_px:
                    ex.trail_active = True
        elif b < a:
            hit = _falling(ex, b)
            if hit[0]:
                return hit
        a = b
    return "", c


def calm(ex: ExitState, h: float, lo: float) -> bool:
    """True when no path within [lo, h] meets an exit level or arms the trailing stop
    (then :func:`bar_exit` only raises the peak to ``h``): below the target, above the
    stop-loss, and above the armed trailing stop of its highest peak. A driver that skips
    candles must not skip one this says False to."""
    if h >= ex.tp_px or lo <= ex.sl_px:
        return False
    if ex.trail_active:
        return lo > max(ex.peak, h) * ex.trail_factor
    return h < ex.trail_px


def _falling(ex: ExitState, low: float) -> tuple[str, float]:
    """The stop a fall down to ``low`` meets first: the higher of the two."""
    if ex.trail_active and ex.peak * ex.trail_factor > ex.sl_px:
        if low <= ex.peak * ex.trail_factor:
            return "trailing_stop", max(low, ex.peak * ex.trail_keep)
        return "", low
    if low <= ex.sl_px:
        return "stop_loss", max(low, ex.sl_at)
    return "", low


def _low_first(ex: ExitState, o: float, both_touch: BothTouch) -> bool:
    if both_touch == "stop_first":
        return True
    if both_touch == "target_first":
        return False
    stop = ex.sl_at
    if ex.trail_active:
        stop = max(stop, ex.peak * ex.trail_keep)
    return o - stop <= ex.tp_at - o
