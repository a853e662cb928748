"""The fast backtest driver: skip the candles where nothing can happen, step the rest.

A candle can do something only when its symbol's phase looks at bars (``fsm.table.ON_BAR``)
and the bar reaches what that look tests, when an order of the symbol is open or a signal
waits for its open, or when an engine timer is due by its close. Everything else a candle
does is bookkeeping: the symbol's :class:`~fsmtrader.strategy.DropSignal`, the simulated
exchange's last bar, a held position's peak and the clock. So per symbol the driver
precomputes with numpy

* IDLE: the candles whose close is at or below the rolling maximum of the anchor window
  times the trigger (the very float rule of ``DropSignal.triggered``, warm-up included);
* POSITION: scanned on entry to it, the first candle ``strategy.calm`` would refuse (the
  test ``bar_exit`` itself starts with: no level met inside the candle, no trailing stop
  armed, the peak raised to its high), vectorised with the running peak;
* phases that do not look at bars (COOLDOWN, ...) wait for a timer;

and drives, in the one global order (ts, series order) of the step loop, only those
candles and the ones whose close reaches a due timer, each through the same
:func:`fsmtrader.drive.step_bar` as the step loop. Before a symbol's candle is stepped,
its signal (the monotonic deque of the anchor window, the SMA window and its running sum,
rebuilt so every float equals the stepped one), its simulated bar and a position's peak
are brought to what stepping would have left; before timers run (or a next-open entry is
decided), every symbol's simulated bar and peak, and the clock (the close of the candle
before, in the global order). A protective stop, or any other phase: every candle is
stepped. The same trades, audit trail and end state as the step loop, byte for byte
(tests/unit/research/test_fast.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fsmtrader.drive import BarRules, step_bar
from fsmtrader.engine import Engine
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.feeds import Candles
from fsmtrader.fsm.phases import Phase
from fsmtrader.fsm.table import ON_BAR, BarCheck
from fsmtrader.progress import Progress
from fsmtrader.strategy import DropSignal, ExitState

F64 = np.ndarray
CHUNK = 512  # candles an exit scan looks at per numpy call (it widens as it goes)


@dataclass(slots=True)
class Track:
    """One symbol's columns (numpy) and what the driver precomputed for it."""

    symbol: str
    order: int  # position in the series (ties at one ts go in this order)
    interval: int  # a candle acts at its close, ts + interval
    ts: np.ndarray  # open times
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    cands: np.ndarray  # indices where an IDLE symbol's entry can trigger
    sma_sums: F64 | None  # DropSignal._sma_sum after each candle (SMA filter on)
    n: int
    span: int  # candles in the anchor window when the series has no gap, else 0
    first: int  # the first open time
    synced: int = -1  # last candle the simulated bar (and a position's peak) reflect
    primed: int = -1  # last candle the signal reflects
    nxt: int = 0  # next candle that must be stepped (n: none before a timer)
    planned: tuple[object, ...] = ()  # (phase, seq) when ``nxt`` was planned


def rolling_max(x: F64, window: int) -> F64:
    """Max over the trailing ``window`` values of each position (fewer at the start), in
    O(n) with block prefix/suffix maxima (van Herk / Gil-Werman). Exact: a max only
    selects."""
    n = len(x)
    pad = (-n) % window
    blocks = np.concatenate([x, np.full(pad, -np.inf)]).reshape(-1, window)
    fwd = np.maximum.accumulate(blocks, axis=1).ravel()[:n]
    back = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()[:n]
    if n >= window:  # (in place: fwd[i] is read before it is written, back is apart)
        np.maximum(back[: n - window + 1], fwd[window - 1 :], out=fwd[window - 1 :])
    return fwd


def entry_candidates(ts: np.ndarray, close: F64, window_ms: int, trigger: float) -> np.ndarray:
    """Indices where ``close <= anchor * trigger``, the anchor being the max close over
    (ts - window_ms, ts] as DropSignal keeps it. Candles off one time grid: all of them
    (always right, only slower)."""
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    spacing = np.diff(ts)
    d = int(spacing.min()) if n > 1 else 60_000
    span = -(-window_ms // d) if d > 0 else 0
    if n == 1 or (d > 0 and np.all(spacing == d)):  # no gap: the window is a count
        return np.flatnonzero(close <= rolling_max(close, max(span, 1)) * trigger)
    offsets = ts - ts[0]
    if d <= 0 or np.any(offsets % d):
        return np.arange(n, dtype=np.int64)
    slots = offsets // d
    dense = np.full(int(slots[-1]) + 1, -np.inf)
    dense[slots] = close
    anchor = rolling_max(dense, span)[slots]
    return np.flatnonzero(close <= anchor * trigger)


def sma_running_sums(close: F64, window: int) -> F64:
    """``DropSignal._sma_sum`` after each candle, float for float: it adds the close, then
    subtracts the close leaving the window, so one sequential cumulative sum over those
    operations in that order gives the same roundings."""
    n = len(close)
    if n <= window:
        return np.cumsum(close)
    ops = np.empty(2 * n - window)
    ops[:window] = close[:window]
    ops[window::2] = close[window:]
    ops[window + 1 :: 2] = -close[: n - window]
    sums = np.cumsum(ops)
    out = np.empty(n)
    out[:window] = sums[:window]
    out[window:] = sums[window + 1 :: 2]
    return out


def make_track(c: Candles, order: int, sig: DropSignal) -> Track:
    """The columns of ``c`` as numpy (no copy when they already are) and its candidates."""
    ts = np.asarray(c.ts, dtype=np.int64)
    close = np.asarray(c.close, dtype=np.float64)
    window = sig.sma_window
    return Track(
        c.symbol,
        order,
        c.interval_ms(),
        ts,
        np.asarray(c.open, dtype=np.float64),
        np.asarray(c.high, dtype=np.float64),
        np.asarray(c.low, dtype=np.float64),
        close,
        np.asarray(c.volume, dtype=np.float64),
        entry_candidates(ts, close, sig.window_ms, sig.trigger),
        sma_running_sums(close, window) if window else None,
        len(ts),
        _span(ts, sig.window_ms),
        int(ts[0]) if len(ts) else 0,
    )


def _span(ts: np.ndarray, window_ms: int) -> int:
    """How many candles the anchor window holds on a gapless series (0: it has gaps, so
    the window's start is looked up by time)."""
    if len(ts) < 2:
        return 0
    d = int(ts[1] - ts[0])
    if d <= 0 or not np.all(np.diff(ts) == d):
        return 0
    return -(-window_ms // d)


def reprime(sig: DropSignal, t: Track, k: int) -> None:
    """Put ``sig`` in the state ``update`` leaves after candle ``k`` of ``t``: the anchor
    deque is the strict suffix maxima of the window, the SMA deque its last closes. (The
    signal sees each candle at its close, ts + interval.)"""
    ts, close, d = t.ts, t.close, t.interval
    if t.span:
        lo = max(0, k + 1 - t.span)
    else:
        lo = int(np.searchsorted(ts, ts[k] - sig.window_ms, "right"))
    closes = close[lo : k + 1].tolist()
    times = (ts[lo : k + 1] + d).tolist()
    kept: list[tuple[int, float]] = []
    top = -math.inf
    for j in range(len(closes) - 1, -1, -1):  # a short window: plain Python is quickest
        x = closes[j]
        if x > top:
            kept.append((times[j], x))
            top = x
    kept.reverse()
    sma = None
    if t.sma_sums is not None:
        sma = close[max(0, k + 1 - sig.sma_window) : k + 1].tolist()
    sma_sum = float(t.sma_sums[k]) if t.sma_sums is not None else 0.0
    sig.restore(kept, sma, sma_sum, int(ts[0]) + d, (closes[-1], float(t.volume[k])))


def count(t: Track, x: int, inclusive: bool) -> int:
    """How many candles of ``t`` open before ``x`` (``inclusive``: at or before it): a
    division on a gapless series, a binary search otherwise."""
    if not t.span:
        return int(np.searchsorted(t.ts, x, "right" if inclusive else "left"))
    first = t.first
    if inclusive:
        return 0 if x < first else min(t.n, (x - first) // t.interval + 1)
    return 0 if x <= first else min(t.n, (x - first - 1) // t.interval + 1)


def exit_reach(t: Track, ex: ExitState, start: int) -> int:
    """The first candle from ``start`` that is not calm for the exit tracker (``t.n``:
    none): calm is ``strategy.bar_exit``'s own first test (below the target, above the
    stop, and either no trailing stop armed by it or, armed, none met under the peak the
    candle's high makes), on which neither it nor the close's ``check_exit`` can exit;
    all a calm candle does is raise the peak to its high."""
    peak, width = ex.peak, CHUNK
    while start < t.n:
        end = min(start + width, t.n)
        hs, ls = t.high[start:end], t.low[start:end]
        calm = (hs < ex.tp_px) & (ls > ex.sl_px)
        if ex.trail_active:
            running = np.maximum.accumulate(np.maximum(hs, peak))
            calm &= ls > running * ex.trail_factor
            peak = float(running[-1])
        else:
            calm &= hs < ex.trail_px
        j = int(calm.argmin())
        if not calm[j]:
            return start + j
        start, width = end, width * 4
    return t.n


class FastDriver:
    """Drives ``engine`` over ``series`` skipping what cannot act (see the module)."""

    def __init__(
        self,
        engine: Engine,
        exchange: SimExchange,
        series: Sequence[Candles],
        set_clock: Callable[[int], None],
        rules: BarRules,
    ) -> None:
        self.engine, self.exchange, self.set_clock = engine, exchange, set_clock
        self.rules = rules
        for c in series:
            if engine.states[c.symbol].signal.first_ts >= 0:
                raise ValueError(f"{c.symbol}: the fast driver needs unprimed signals")
        self.tracks = [
            make_track(c, i, engine.states[c.symbol].signal) for i, c in enumerate(series)
        ]
        self.total = sum(t.n for t in self.tracks)
        self.protect = engine.policy.protect is not None
        self.steps = 0  # candles stepped (the rest were skipped)

    def run(self, progress: Progress | None = None) -> int:
        """Drive every candle (stepped or skipped); the number of candles."""
        engine, tracks = self.engine, self.tracks
        timer: tuple[int, int, int] | None = None  # (ts, order, index) of the due timer
        timer_due: int | None = None
        cur = (-1, -1)
        while True:
            due = engine.next_due()
            if due != timer_due:
                timer_due, timer = due, (None if due is None else self._timer_at(due, cur))
            pick = self._next(timer)
            if pick is None:
                break
            ts, order, k = pick
            t = tracks[order]
            fires = due is not None and due <= ts + t.interval
            self._step(t, k, fires)
            cur = (ts, order)
            if fires:
                timer_due = timer = None  # (it fired: look again)
                for r in tracks:
                    if r is t or r.planned != self._key(r):
                        self._plan(r, self._after(r, ts, order))
            else:
                self._plan(t, k + 1)
            if progress is not None and self.steps % 4096 == 0:
                progress(sum(self._after(r, ts, order) for r in tracks), self.total)
        self._finish()
        if progress is not None:
            progress(self.total, self.total)
        return self.total

    def _step(self, t: Track, k: int, fires: bool) -> None:
        """Candle ``k`` of ``t`` through ``drive.step_bar``, after bringing what it reads
        (``fires``: every symbol's, for the timers) to what stepping would have left."""
        ts = int(t.ts[k])
        if fires or t.symbol in self.engine.open_entries:  # (these read the clock first)
            self._clock_before(ts, t.order)
        if fires:
            self._sync_all(ts, t.order)
        if t.primed < k - 1:
            self._sync(t, k - 1, signal=True)
        bar = (
            ts,
            t.symbol,
            float(t.open[k]),
            float(t.high[k]),
            float(t.low[k]),
            float(t.close[k]),
            float(t.volume[k]),
        )
        step_bar(self.engine, self.exchange, bar, t.interval, self.rules, self.set_clock)
        t.synced = t.primed = k
        self.steps += 1

    def _clock_before(self, ts: int, order: int) -> None:
        """The clock where stepping leaves it before candle (ts, order): at the close of
        the candle before it in the global order (timers due inside this candle then run
        at that time, as they do when every candle is stepped)."""
        last = -1
        for r in self.tracks:
            j = count(r, ts, r.order < order) - 1
            if j >= 0:
                last = max(last, int(r.ts[j]) + r.interval)
        if last > self.engine.clock.now_ms():
            self.set_clock(last)

    def _finish(self) -> None:
        """Every symbol, and the clock, as stepping leaves them after the last candle."""
        for t in self.tracks:
            if t.primed < t.n - 1:
                self._sync(t, t.n - 1, signal=True)
        ends = [(int(t.ts[-1]), t.order, t.interval) for t in self.tracks if t.n]
        if ends:  # the clock: at the close of the last candle in the global order
            ts, _, interval = max(ends)
            self.set_clock(ts + interval)

    def _next(self, timer: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        """The earliest candle that must be stepped, in (ts, series order)."""
        best = timer
        for t in self.tracks:
            k = t.nxt
            if k < t.n:
                key = (int(t.ts[k]), t.order, k)
                if best is None or key < best:
                    best = key
        return best

    def _timer_at(self, due: int, cur: tuple[int, int]) -> tuple[int, int, int] | None:
        """The first candle after ``cur`` that closes at or after ``due``: where the step
        loop runs the timers."""
        best: tuple[int, int, int] | None = None
        for t in self.tracks:
            k = count(t, due - t.interval, False)
            if due - t.interval <= cur[0]:  # (due already: the next candle of each)
                k = max(k, self._after(t, *cur))
            if k < t.n:
                key = (int(t.ts[k]), t.order, k)
                if best is None or key < best:
                    best = key
        return best

    @staticmethod
    def _after(t: Track, ts: int, order: int) -> int:
        """The first index of ``t`` after the candle (ts, order) in the global order."""
        if ts < 0:
            return 0
        return count(t, ts, t.order <= order)

    def _sync_all(self, ts: int, order: int) -> None:
        """Before timers: every symbol's simulated bar and exit tracker as stepping would
        have left them just before candle (ts, order). (Signals wait for their symbol's
        next stepped candle: only an entry reads one, and an entry is decided on a candle
        of its own symbol, never in a timer.)"""
        for r in self.tracks:
            last = count(r, ts, r.order < order) - 1
            if last > r.synced:
                self._sync(r, last, signal=False)

    def _sync(self, t: Track, k: int, *, signal: bool) -> None:
        """Candles up to ``k`` were skipped: catch the simulated bar and a position's peak
        up, and (``signal``) the signal."""
        st = self.engine.states[t.symbol]
        if signal and k > t.primed:
            reprime(st.signal, t, k)
            t.primed = k
        if k <= t.synced:
            return
        first = t.synced + 1
        self.exchange.update_market(
            t.symbol,
            int(t.ts[k]) + t.interval,
            float(t.close[k]),
            float(t.high[k]),
            float(t.low[k]),
            float(t.volume[k]),
        )
        ex = st.exit
        if ex is not None and st.phase is Phase.POSITION and first <= k:
            top = float(t.high[first : k + 1].max())  # (a calm candle's peak: its high)
            if top > ex.peak:
                ex.peak = top
        t.synced = k

    def _key(self, t: Track) -> tuple[object, ...]:
        st = self.engine.states[t.symbol]
        return (st.phase, st.seq, len(self.engine.router.open_intents(t.symbol)))

    def _plan(self, t: Track, start: int) -> None:
        """Set ``t.nxt``: the next candle from ``start`` that must be stepped for its
        phase (``t.n``: none, only a timer can change the phase)."""
        st = self.engine.states[t.symbol]
        t.planned = self._key(t)
        if start >= t.n:
            t.nxt = t.n
            return
        check = ON_BAR.get(st.phase)
        if self.engine.router.open_intents(t.symbol) or t.symbol in self.engine.open_entries:
            t.nxt = start
        elif check is None:
            t.nxt = t.n
        elif check is BarCheck.ENTRY:
            j = int(np.searchsorted(t.cands, start, "left"))
            t.nxt = int(t.cands[j]) if j < len(t.cands) else t.n
        elif check is BarCheck.EXIT and not self.protect and st.exit is not None:
            t.nxt = exit_reach(t, st.exit, start)
        else:
            t.nxt = start
