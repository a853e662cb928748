"""The report's figures on hand-made trades, curves and candles, each worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fsmtrader.feeds import Candles
from fsmtrader.research.report import (
    METRIC_KEYS,
    OBJECTIVES,
    Curve,
    OpenLot,
    TradeRow,
    equity_curve,
    metrics,
)
from fsmtrader.research.report.downsample import minmax_indices
from fsmtrader.research.report.metrics import (
    daily_returns,
    drawdown_stats,
    group_table,
    monthly_returns,
)

DAY = 86_400_000
JAN1 = 1_767_225_600_000  # 2026-01-01T00:00Z


def trade(
    pnl: float, symbol: str = "A/USDT", reason: str = "take_profit", hold: int = 1
) -> TradeRow:
    """A trade of cost 100 (qty 10 at 10, no fees) held ``hold`` hours."""
    return TradeRow(symbol, 0, hold * 3_600_000, 10.0, 10.0, 10 + pnl / 10, 0.0, 0.0, pnl, reason)


def day_curve(equity: list[float], held: list[bool] | None = None) -> Curve:
    """One point a day from JAN1 (point 0 = the start)."""
    n = len(equity)
    return Curve(
        np.array([JAN1 + i * DAY for i in range(n)], np.int64),
        np.array(equity, np.float64),
        np.array(held or [False] * n),
        {"A/USDT": 100.0, "B/USDT": 50.0},
        {"A/USDT": 150.0, "B/USDT": 40.0},
    )


# 100 -> +10 % -> -10 % -> +10 % -> +10 %: daily returns .1, -.1, .1, .1
CURVE = day_curve([100, 110, 99, 108.9, 119.79], [False, True, True, False, False])
TRADES = [
    trade(10),
    trade(-5, reason="stop_loss"),
    trade(20, "B/USDT"),
    trade(-5, "B/USDT"),
    trade(0),
]


def test_trade_figures() -> None:
    m = metrics(TRADES, CURVE, {"guards_blocked": 4, "ghosts": 1})
    assert (m["trades"], m["wins"], m["losses"]) == (5, 2, 2)  # a zero trade is neither
    assert m["win_rate"] == pytest.approx(0.4)
    assert m["profit_factor"] == pytest.approx(30 / 10)
    assert m["expectancy"] == pytest.approx(20 / 5)
    assert m["avg_trade_pct"] == pytest.approx(20 / 5)  # each trade cost 100
    assert m["avg_hold_hours"] == pytest.approx(1.0)
    assert m["realized_pnl"] == pytest.approx(20.0)
    assert (m["best_trade_pnl"], m["worst_trade_pnl"]) == (20.0, -5.0)
    assert (m["guards_blocked"], m["ghosts"]) == (4, 1)
    assert list(m) == list(METRIC_KEYS)
    assert set(OBJECTIVES) <= set(METRIC_KEYS)


def test_curve_figures() -> None:
    m = metrics(TRADES, CURVE, {})
    assert m["return_pct"] == pytest.approx(19.79)
    assert m["max_drawdown_pct"] == pytest.approx(10.0)  # 110 -> 99
    assert m["max_drawdown_duration_ms"] == 3 * DAY  # the peak of day 1, regained on day 4
    assert m["max_drawdown_duration_days"] == pytest.approx(3.0)
    # mean .05, sample sd .1; downside deviation sqrt(.01 / 4) = .05
    assert m["sharpe"] == pytest.approx(0.5 * math.sqrt(365))
    assert m["sortino"] == pytest.approx(math.sqrt(365))
    cagr = 100 * (1.1979 ** (365 / 4) - 1)
    assert m["cagr_pct"] == pytest.approx(cagr)
    assert m["calmar"] == pytest.approx(cagr / 10)
    assert m["exposure_pct"] == pytest.approx(50.0)  # two of the four days held
    assert m["buy_and_hold_return_pct"] == pytest.approx((50 - 20) / 2)  # A +50 %, B -20 %
    assert m["excess_return_pct"] == pytest.approx(19.79 - 15)
    assert m["days"] == pytest.approx(4.0)


def test_figures_that_do_not_exist_are_none() -> None:
    flat = day_curve([100, 100])
    m = metrics([trade(5), trade(1)], flat, {})
    assert m["profit_factor"] is None  # no losing trade
    assert m["sharpe"] is None and m["sortino"] is None  # one day
    assert m["calmar"] is None  # no drawdown
    none = metrics([], flat, {})
    assert none["trades"] == 0 and none["expectancy"] is None and none["avg_hold_ms"] is None


def test_drawdown_not_regained_lasts_to_the_end() -> None:
    t = np.array([0, 10, 20, 30, 40], np.int64)
    dd, ms = drawdown_stats(t, np.array([100, 120, 90, 96, 110.0]))
    assert dd == pytest.approx(25.0)  # 120 -> 90
    assert ms == 30  # below 120 from t=10 to the end
    _, short = drawdown_stats(t, np.array([100, 90, 101, 100, 102.0]))
    assert short == 20  # 0 -> 20 (regained at 20), then 20 -> 40 is 20 too, 30 -> 40 is 10


def test_daily_returns_use_each_days_last_point() -> None:
    hour = 3_600_000
    t = np.array([JAN1, JAN1 + 6 * hour, JAN1 + DAY, JAN1 + DAY + hour, JAN1 + 2 * DAY], np.int64)
    eq = np.array([100, 50, 120, 200, 150.0])  # a close at 00:00 ends the day before
    assert daily_returns(t, eq) == pytest.approx([0.2, 150 / 120 - 1])


def test_monthly_returns() -> None:
    feb1, mar1 = JAN1 + 31 * DAY, JAN1 + 59 * DAY
    t = np.array([JAN1, JAN1 + 19 * DAY, feb1, feb1 + 14 * DAY, mar1, mar1 + 9 * DAY], np.int64)
    eq = np.array([100, 105, 110, 90, 99, 108.9])
    got = monthly_returns(t, eq)
    assert [g["month"] for g in got] == ["2026-01", "2026-02", "2026-03"]
    assert [g["return_pct"] for g in got] == pytest.approx([10.0, -10.0, 10.0])


def test_tables_by_pair_and_reason() -> None:
    by_reason = {r["reason"]: r for r in group_table(TRADES, lambda r: r.reason, "reason")}
    assert by_reason["stop_loss"]["trades"] == 1 and by_reason["stop_loss"]["pnl"] == -5.0
    assert by_reason["take_profit"]["trades"] == 4
    assert by_reason["take_profit"]["profit_factor"] == pytest.approx(30 / 5)


def test_equity_curve_marks_positions_at_each_close() -> None:
    """A: closes 10, 11, 12, 9; 2 bought at 10 (+0.1 fee) on the first close, sold at 12
    (+0.1 fee) two closes later: PnL 3.8. B starts a candle later and ends with a lot still
    open (1 held for 9.5), valued at its last close, 10."""
    a = Candles(
        "A/USDT",
        [0, 60_000, 120_000, 180_000],
        [10.0] * 4,
        [13.0] * 4,
        [8.0] * 4,
        [10.0, 11.0, 12.0, 9.0],
        [1.0] * 4,
    )
    b = Candles(
        "B/USDT",
        [60_000, 120_000, 180_000, 240_000],
        [9.0] * 4,
        [11.0] * 4,
        [8.0] * 4,
        [9.0, 9.5, 11.0, 10.0],
        [1.0] * 4,
    )
    tr = TradeRow("A/USDT", 60_000, 180_000, 2.0, 10.0, 12.0, 0.1, 0.1, 3.8, "take_profit")
    lot = OpenLot("B/USDT", 180_000, 1.0, 9.5)
    c = equity_curve([a, b], [tr], 100.0, [lot])
    assert c.t.tolist() == [0, 60_000, 120_000, 180_000, 240_000, 300_000]
    # start; A held at 10 (-0.1); at 11 (+1.9); A sold (+3.8), B bought at 9.5, close 9.5;
    # B at 11 (+1.5); B at 10 (+0.5)
    assert c.equity.tolist() == pytest.approx([100, 99.9, 101.9, 103.8, 105.3, 104.3])
    assert c.in_market.tolist() == [False, True, True, True, True, True]
    assert c.first_close == {"A/USDT": 10.0, "B/USDT": 9.0}
    assert c.last_close == {"A/USDT": 9.0, "B/USDT": 10.0}


def test_downsampling_keeps_every_extreme() -> None:
    y = np.sin(np.arange(100_000) / 50.0) + np.random.default_rng(7).normal(0, 0.1, 100_000)
    y[12_345] = 9.0
    y[67_890] = -9.0
    keep = minmax_indices(y, 2_000)
    assert len(keep) <= 2_000 and keep[0] == 0 and keep[-1] == len(y) - 1
    assert np.all(np.diff(keep) > 0)
    assert {12_345, 67_890} <= set(keep.tolist())
    assert minmax_indices(y[:50], 2_000).tolist() == list(range(50))


def test_a_run_without_trades_is_flat_at_the_starting_balance() -> None:
    a = Candles(
        "A/USDT", [0, 60_000, 120_000], [1.0] * 3, [1.0] * 3, [1.0] * 3, [1.0, 2.0, 4.0], [1.0] * 3
    )
    c = equity_curve([a], [], 50.0)
    assert c.equity.tolist() == [50.0] * 4 and not c.in_market.any()
    m = metrics([], c, {})
    assert (m["return_pct"], m["max_drawdown_pct"], m["max_drawdown_duration_ms"]) == (0.0, 0.0, 0)
    assert m["exposure_pct"] == 0.0 and m["buy_and_hold_return_pct"] == pytest.approx(300.0)
