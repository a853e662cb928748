"""The fast driver gives the very trades and audit trail of stepping every candle.

Each case runs the same candles twice through ``Backtest`` (``backtest.fast`` off, then
on) and compares the run folders' ``trades.jsonl`` and ``audit.jsonl`` byte for byte."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsmtrader.feeds import Candles
from fsmtrader.research.fast import (
    count,
    entry_candidates,
    exit_reach,
    make_track,
    reprime,
    rolling_max,
    sma_running_sums,
)
from fsmtrader.research.synthetic_year import pair_models, synthetic_pair
from fsmtrader.runner import Backtest, filters_for
from fsmtrader.strategy import DropSignal, ExitRule, calm, open_exit
from fsmtrader_testing.harness import settings as make_settings

COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def as_lists(c: Candles) -> Candles:
    """Python-list columns, as the step loop on main reads them."""
    return Candles(c.symbol, *(np.asarray(getattr(c, f)).tolist() for f in COLUMNS))


def year_part(pairs: int, days: int, seed: int, first: int = 0) -> list[Candles]:
    models = pair_models(first + pairs)[first:]
    return [synthetic_pair(m, days * 1440, seed, first + i) for i, m in enumerate(models)]


def backtest(tmp: Path, name: str, series: Sequence[Candles], fast: bool, **over: Any) -> Backtest:
    over = {k: dict(v) for k, v in over.items()}
    over.setdefault("market", {})["symbols"] = [c.symbol for c in series]
    over.setdefault("backtest", {})["fast"] = fast
    s = make_settings(**over)
    bt = Backtest(s, series, filters_for(series), tmp / name)
    assert bt.run().summary["fast"] is fast
    return bt


def run(tmp: Path, name: str, series: Sequence[Candles], fast: bool, **over: Any) -> Path:
    return backtest(tmp, name, series, fast, **over).run_dir


def digest(run_dir: Path, name: str) -> str:
    return hashlib.sha256((run_dir / name).read_bytes()).hexdigest()


def end_state(bt: Backtest) -> dict[str, tuple[object, ...]]:
    """What the run leaves in each symbol: phase, exit tracker, signal, the venue's quote."""
    out = {}
    for sym, state in bt.engine.states.items():
        sig = state.signal
        out[sym] = (
            state.phase,
            state.exit,
            list(sig._maxq),
            list(sig._sma),
            sig._sma_sum,
            sig.first_ts,
            sig.last_close,
            sig.last_volume,
            bt.exchange.fetch_ticker(sym),
            bt.clock.now_ms(),
        )
    return out


def same_run(tmp: Path, series: Sequence[Candles], **over: Any) -> int:
    """Step and fast runs of ``series``: identical trades, audit and end state; the
    trade count."""
    step_bt = backtest(tmp, "step", series, False, **over)
    fast_bt = backtest(tmp, "fast", series, True, **over)
    step, fast = step_bt.run_dir, fast_bt.run_dir
    for name in ("trades.jsonl", "audit.jsonl"):
        a, b = (step / name).read_text().splitlines(), (fast / name).read_text().splitlines()
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        assert first is None and len(a) == len(b), f"{name}: line {first}: {a[first or 0]}"
        assert digest(step, name) == digest(fast, name)
    assert end_state(step_bt) == end_state(fast_bt)
    return len((step / "trades.jsonl").read_text().splitlines())


CASES: dict[str, tuple[int, int, int, dict[str, Any]]] = {
    # name: (pairs, days, seed, settings)
    "one symbol": (1, 12, 1, {}),
    "three symbols, one shared slot": (
        3,
        8,
        2,
        {"risk": {"max_open_positions": 1, "max_total_exposure": 25}},
    ),
    "four symbols, two slots, no trailing, SMA filter": (
        4,
        8,
        3,
        {
            "risk": {"max_open_positions": 2, "max_total_exposure": 50},
            "exit": {"trailing_activation_pct": 0},
            "entry": {"sma_filter": True, "sma_window_min": 90},
        },
    ),
    "three symbols, short hold, no cooldown, smaller drop": (
        3,
        6,
        4,
        {
            "exit": {"max_hold_min": 4, "cooldown_s": 0},
            "entry": {"drop_trigger_pct": 2.0, "anchor_window_min": 30},
        },
    ),
    "three symbols, entry at the next open, target first, net take-profit": (
        3,
        6,
        8,
        {
            "backtest": {"entry_on": "next_open", "both_touch": "target_first"},
            "exit": {"take_profit_net_of_fees": True},
        },
    ),
    "three symbols, a resting protective stop under each position": (
        3,
        10,
        5,
        {"protect": {"enabled": True}},
    ),
    "three symbols, one observed, one off": (
        3,
        10,
        6,
        {"market": {"modes": {"SOL/USDT": "observe", "ETH/USDT": "off"}}},
    ),
    "three symbols, MEXC's rules, resting GTC orders": (
        3,
        10,
        7,
        {"sim": {"venue": "mexc"}, "router": {"time_in_force": "GTC"}},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_equals_step_on_synthetic_portfolios(tmp_path: Path, case: str) -> None:
    pairs, days, seed, over = CASES[case]
    first = 2 if pairs == 1 else 1  # (SOL/USDT alone: it trades more than BTC)
    trades = same_run(tmp_path, year_part(pairs, days, seed, first), **over)
    assert trades >= 3, "a case that does not trade proves nothing"


def test_fast_equals_step_with_gaps_in_the_candles(tmp_path: Path) -> None:
    """Missing minutes: the anchor window is a time window, found by time."""
    series = []
    for c in year_part(2, 8, 5, 2):
        keep = [i for i in range(len(c)) if (i // 97) % 5 != 3 and i % 13 != 7]
        cols = [[getattr(c, f)[i] for i in keep] for f in COLUMNS]
        series.append(Candles(c.symbol, *cols))
    assert same_run(tmp_path, series) >= 3


def test_fast_equals_step_when_the_series_start_and_end_apart(tmp_path: Path) -> None:
    """A pair listed two days late, another delisted a day early: the global order of
    candles (ts, series order) still decides where each timer runs."""
    a, b, c = year_part(3, 8, 9, 1)
    series = [a, b.slice(2 * 1440 + 17, len(b)), c.slice(0, len(c) - 1440 - 5)]
    assert same_run(tmp_path, series, exit={"max_hold_min": 7}) >= 3


def test_the_comparison_can_fail(tmp_path: Path) -> None:
    """A setting changed on one side only: the audit differs (so equality means something)."""
    series = year_part(2, 6, 6, 2)
    step = run(tmp_path, "step", series, False)
    fast = run(tmp_path, "fast", series, True, exit={"take_profit_pct": 2.1})
    assert (step / "trades.jsonl").read_text()
    assert digest(step, "audit.jsonl") != digest(fast, "audit.jsonl")


def test_the_summary_says_fast_and_records_the_loop_time(tmp_path: Path) -> None:
    fast = run(tmp_path, "fast", year_part(1, 2, 7, 2), True)
    summary = json.loads((fast / "summary.json").read_text())
    assert summary["fast"] is True and summary["loop_s"] > 0
    assert summary["candles"] == 2 * 1440


# --- the precomputed pieces, against the objects they stand for -------------------------


def random_closes(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)


def test_rolling_max_is_the_trailing_window_max() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=1000)
    for w in (1, 2, 7, 60, 999, 1000, 1500):
        want = [max(x[max(0, i - w + 1) : i + 1]) for i in range(len(x))]
        assert rolling_max(x, w).tolist() == want


def test_precomputed_signal_equals_drop_signal_after_every_candle() -> None:
    """The candidates, the SMA running sum and a re-primed signal are float for float
    what DropSignal computes candle by candle (with gaps in the times), each candle seen
    at its close as the backtest feeds it."""
    rng = np.random.default_rng(2)
    n = 3000
    ts = np.cumsum(rng.choice([60_000, 60_000, 60_000, 120_000, 600_000], n)).astype(np.int64)
    close = random_closes(rng, n)
    c = Candles(
        "X/USDT",
        ts.tolist(),
        close.tolist(),
        close.tolist(),
        close.tolist(),
        close.tolist(),
        [1.0] * n,
    )
    sig = DropSignal(45, 2.5, 30)
    t = make_track(c, 0, DropSignal(45, 2.5, 30))
    triggered = []
    for k in range(n):
        sig.update(int(ts[k]) + t.interval, float(close[k]), 1.0)  # (at the close)
        triggered.append(sig.triggered(float(close[k])))
        assert sig._sma_sum == t.sma_sums[k]  # type: ignore[index]
        if k % 37 == 0:
            fresh = DropSignal(45, 2.5, 30)
            fresh.first_ts, fresh.warm_after_ms = sig.first_ts, sig.warm_after_ms
            reprime(fresh, t, k)
            assert list(fresh._maxq) == list(sig._maxq)
            assert list(fresh._sma) == list(sig._sma) and fresh._sma_sum == sig._sma_sum
            assert fresh.anchor == sig.anchor and fresh.sma() == sig.sma()
    assert np.flatnonzero(triggered).tolist() == t.cands.tolist()
    assert 0 < len(t.cands) < n
    assert entry_candidates(ts, close, 45 * 60_000, sig.trigger).tolist() == t.cands.tolist()


def test_the_calm_scan_is_strategy_calm_candle_by_candle() -> None:
    """exit_reach stops at the first candle strategy.calm says False to, with the peak
    raised to each calm candle's high on the way (armed trailing stop or not)."""
    rng = np.random.default_rng(3)
    rule = ExitRule(2.0, 2.0, 0.6, 0.3)
    for trial in range(200):
        n = int(rng.integers(1, 1500))
        close = random_closes(rng, n) * 0.1 + 100
        high = close * (1 + rng.exponential(0.0015, n))
        low = close * (1 - rng.exponential(0.0015, n))
        c = Candles("X/USDT", 60_000 * np.arange(n), close, high, low, close, np.ones(n))
        t = make_track(c, 0, DropSignal(5, 1.0))
        ex = open_exit(100.0, rule, peak=100.0 + trial % 3 * 0.4, trail_active=trial % 2 == 1)
        start = int(rng.integers(0, n))
        want, peak = n, ex.peak
        for k in range(start, n):
            probe = replace(ex, peak=peak)
            if not calm(probe, float(high[k]), float(low[k])):
                want = k
                break
            peak = max(peak, float(high[k]))
        assert exit_reach(t, ex, start) == want


def test_count_is_the_binary_search_on_gapless_and_gappy_series() -> None:
    for ts in (60_000 * np.arange(5, 50), np.array([0, 60_000, 180_000, 240_000, 600_000])):
        close = np.ones(len(ts))
        t = make_track(
            Candles("X/USDT", ts, close, close, close, close, close), 0, DropSignal(3, 1.0)
        )
        for x in range(-120_000, int(ts[-1]) + 180_000, 15_000):
            for inclusive in (False, True):
                side = "right" if inclusive else "left"
                assert count(t, x, inclusive) == np.searchsorted(ts, x, side), (x, inclusive)


def test_sma_running_sums_short_series() -> None:
    close = np.array([1.1, 2.2, 3.3])
    assert sma_running_sums(close, 5).tolist() == [1.1, 1.1 + 2.2, 1.1 + 2.2 + 3.3]


# --- a property: any small market ---------------------------------------------------------


def small_market(seed: int, n: int, symbols: int, vol: float) -> list[Candles]:
    rng = np.random.default_rng(seed)
    out = []
    for i, sym in enumerate(("SOL/USDT", "ETH/USDT", "LTC/USDT")[:symbols]):
        close = random_closes(rng, n) * (1 + i) * np.exp(np.cumsum(rng.normal(0, vol, n)))
        close = np.round(close, 2)
        opens = np.concatenate([[close[0]], close[:-1]])
        high = np.round(np.maximum(opens, close) * (1 + rng.exponential(vol / 2, n)), 2)
        low = np.round(np.minimum(opens, close) * (1 - rng.exponential(vol / 2, n)), 2)
        ts = 1_700_000_000_000 + 60_000 * np.arange(n)
        vol_col = rng.uniform(1, 100, n)
        cols = (
            ts,
            opens,
            np.maximum(high, np.maximum(opens, close)),
            np.minimum(low, np.minimum(opens, close)),
            close,
            vol_col,
        )
        out.append(Candles(sym, *(np.asarray(x).tolist() for x in cols)))
    return out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(30, 400),
    symbols=st.integers(1, 3),
    slots=st.integers(1, 2),
    hold=st.integers(1, 30),
    cooldown=st.sampled_from([0, 60, 300]),
    trailing=st.booleans(),
    sma=st.booleans(),
    entry_on=st.sampled_from(["close", "next_open"]),
    both_touch=st.sampled_from(["stop_first", "target_first", "nearer_open_first"]),
)
def test_fast_equals_step_on_any_small_market(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    n: int,
    symbols: int,
    slots: int,
    hold: int,
    cooldown: int,
    trailing: bool,
    sma: bool,
    entry_on: str,
    both_touch: str,
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    over: dict[str, Any] = {
        "risk": {"max_open_positions": slots, "max_total_exposure": 25 * slots},
        "entry": {
            "drop_trigger_pct": 1.0,
            "anchor_window_min": 5,
            "sma_filter": sma,
            "sma_window_min": 12,
        },
        "exit": {
            "take_profit_pct": 0.8,
            "stop_loss_pct": 0.8,
            "trailing_activation_pct": 0.5 if trailing else 0,
            "trailing_distance_pct": 0.2,
            "max_hold_min": hold,
            "cooldown_s": cooldown,
        },
        "timeouts": {"warmup_timeout_s": 120},
        "backtest": {"entry_on": entry_on, "both_touch": both_touch},
    }
    same_run(tmp, small_market(seed, n, symbols, 0.006), **over)
