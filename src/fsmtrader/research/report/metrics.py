"""The report's figures: pure functions of the trades, the equity curve and the summary.

``metrics`` is flat (``dict[str, float | int | None]``) and its keys are the objective
names a sweep accepts (``OBJECTIVES`` says which way each is better). Conventions:
- percentages are in percent (``return_pct`` 12.5 = +12.5 %); ``win_rate`` is a fraction
  (0..1), as in summary.json; money is in the quote currency.
- Sharpe, Sortino and Calmar use daily returns: the equity at the last point of each UTC
  day (a candle closing at 00:00 ends the day before) against the day before (the first
  day against the starting balance), risk-free 0, annualised with 365 days (crypto
  trades every day): sharpe = mean / std (ddof 1) x sqrt(365); sortino = mean /
  sqrt(mean(min(r, 0)^2)) x sqrt(365); calmar = cagr_pct / max_drawdown_pct. CAGR
  compounds over the run's span in 365-day years.
- Buy and hold: the starting balance split equally across the pairs at each pair's first
  close, held to its last close, no fees, no rebalancing (= the mean of the pairs' returns).
- A figure that cannot be computed is None: Sharpe with fewer than two days or no
  variation, profit factor with no losing trade, Calmar with no drawdown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from fsmtrader.research.report.equity import F64, I64, Curve
from fsmtrader.research.report.trades import TradeRow

DAY_MS = 86_400_000
YEAR_DAYS = 365
Figure = float | int | None

#: Every key ``metrics`` returns, in the order a table shows them.
METRIC_KEYS: tuple[str, ...] = (
    "return_pct",
    "cagr_pct",
    "max_drawdown_pct",
    "max_drawdown_duration_ms",
    "max_drawdown_duration_days",
    "sharpe",
    "sortino",
    "calmar",
    "profit_factor",
    "expectancy",
    "avg_trade_pct",
    "win_rate",
    "trades",
    "wins",
    "losses",
    "avg_hold_ms",
    "avg_hold_hours",
    "exposure_pct",
    "buy_and_hold_return_pct",
    "excess_return_pct",
    "realized_pnl",
    "fees",
    "final_equity",
    "best_trade_pnl",
    "worst_trade_pnl",
    "days",
    "guards_blocked",
    "ghosts",
)

#: The keys a sweep may optimise, and which way is better.
OBJECTIVES: dict[str, Literal["maximize", "minimize"]] = {
    "return_pct": "maximize",
    "cagr_pct": "maximize",
    "max_drawdown_pct": "minimize",
    "max_drawdown_duration_days": "minimize",
    "sharpe": "maximize",
    "sortino": "maximize",
    "calmar": "maximize",
    "profit_factor": "maximize",
    "expectancy": "maximize",
    "avg_trade_pct": "maximize",
    "win_rate": "maximize",
    "trades": "maximize",
    "exposure_pct": "minimize",
    "excess_return_pct": "maximize",
    "realized_pnl": "maximize",
    "final_equity": "maximize",
}


def metrics(
    trades: Sequence[TradeRow], curve: Curve, summary: Mapping[str, Any]
) -> dict[str, Figure]:
    """The run's headline figures (see the module docstring for each convention)."""
    start, final = float(curve.equity[0]), float(curve.equity[-1])
    span_ms = int(curve.t[-1] - curve.t[0])
    ret = _pct(final, start)
    dd_pct, dd_ms = drawdown_stats(curve.t, curve.equity)
    daily = daily_returns(curve.t, curve.equity)
    cagr = _cagr(start, final, span_ms)
    bh = buy_and_hold_pct(curve.first_close, curve.last_close)
    pnls = [r.pnl for r in trades]
    wins = sum(1 for p in pnls if p > 0)
    holds = [r.hold_ms for r in trades]
    return {
        "return_pct": ret,
        "cagr_pct": cagr,
        "max_drawdown_pct": dd_pct,
        "max_drawdown_duration_ms": dd_ms,
        "max_drawdown_duration_days": round(dd_ms / DAY_MS, 4),
        "sharpe": sharpe(daily),
        "sortino": sortino(daily),
        "calmar": cagr / dd_pct if cagr is not None and dd_pct > 0 else None,
        "profit_factor": profit_factor(pnls),
        "expectancy": sum(pnls) / len(pnls) if pnls else None,
        "avg_trade_pct": _mean([100 * r.pnl / r.cost for r in trades if r.cost > 0]),
        "win_rate": wins / len(pnls) if pnls else 0.0,
        "trades": len(pnls),
        "wins": wins,
        "losses": sum(1 for p in pnls if p < 0),
        "avg_hold_ms": round(sum(holds) / len(holds)) if holds else None,
        "avg_hold_hours": sum(holds) / len(holds) / 3_600_000 if holds else None,
        "exposure_pct": exposure_pct(curve.t, curve.in_market),
        "buy_and_hold_return_pct": bh,
        "excess_return_pct": ret - bh if bh is not None else None,
        "realized_pnl": sum(pnls),
        "fees": sum(r.fees for r in trades),
        "final_equity": final,
        "best_trade_pnl": max(pnls) if pnls else None,
        "worst_trade_pnl": min(pnls) if pnls else None,
        "days": span_ms / DAY_MS,
        "guards_blocked": int(summary.get("guards_blocked", 0)),
        "ghosts": int(summary.get("ghosts", 0)),
    }


def _pct(now: float, then: float) -> float:
    return 100.0 * (now / then - 1.0) if then else 0.0


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _cagr(start: float, final: float, span_ms: int) -> float | None:
    years = span_ms / (YEAR_DAYS * DAY_MS)
    if years <= 0 or start <= 0 or final <= 0:
        return None
    try:
        return 100.0 * (math.pow(final / start, 1.0 / years) - 1.0)
    except OverflowError:  # a short run compounded over a year can leave the floats
        return None


def drawdown(equity: F64) -> F64:
    """Drawdown at each point, in percent below the running peak (0 or negative)."""
    peak = np.maximum.accumulate(equity)
    flat = ~(peak > 0)
    peak[flat] = 1.0  # each step in place on one array: the same operations, no temporaries
    dd = np.divide(equity, peak, out=peak)
    dd -= 1.0
    dd *= 100.0
    dd[flat] = 0.0
    return dd


def drawdown_stats(t: I64, equity: F64) -> tuple[float, int]:
    """Max drawdown (percent, positive) and the longest time spent below a peak (ms, to
    the point that regained it, or to the end when none did)."""
    if len(equity) == 0:
        return 0.0, 0
    peak = np.maximum.accumulate(equity)
    tops = np.flatnonzero(equity >= peak)  # the points at a (new or equal) peak
    peak[~(peak > 0)] = 1.0
    worst = float(np.min(np.divide(equity, peak, out=peak)))
    under = np.diff(tops) > 1  # a spell below water between two of them
    spells = (t[tops[1:]] - t[tops[:-1]])[under]
    tail = int(t[-1] - t[tops[-1]])  # below the last peak until the end
    longest = max(int(spells.max()) if len(spells) else 0, tail)
    return max(0.0, -100.0 * (worst - 1.0)), longest


def _last_points(t: I64, edges: I64) -> npt.NDArray[np.intp]:
    """For each period ending at ``edges[i]`` (inclusive: a close at the edge ends it),
    the index of its last point, for the periods that have one after t[0]."""
    last = np.searchsorted(t, edges, side="right") - 1
    keep = np.concatenate(([True], last[1:] != last[:-1])) & (last > 0)
    return last[keep]


def daily_returns(t: I64, equity: F64) -> F64:
    """Each UTC day's return: its last equity against the previous day's last (the first
    day's against ``equity[0]``, the start). Days without a point have none."""
    if len(t) < 2:
        return np.zeros(0)
    days = np.arange((int(t[1]) - 1) // DAY_MS + 1, (int(t[-1]) - 1) // DAY_MS + 2)
    closes = np.concatenate((equity[:1], equity[_last_points(t, days * DAY_MS)]))
    return np.asarray(closes[1:] / closes[:-1] - 1.0, np.float64)


def sharpe(daily: F64) -> float | None:
    if len(daily) < 2:
        return None
    sd = float(np.std(daily, ddof=1))
    return float(np.mean(daily)) / sd * math.sqrt(YEAR_DAYS) if sd > 0 else None


def sortino(daily: F64) -> float | None:
    if len(daily) < 2:
        return None
    down = math.sqrt(float(np.mean(np.minimum(daily, 0.0) ** 2)))
    return float(np.mean(daily)) / down * math.sqrt(YEAR_DAYS) if down > 0 else None


def profit_factor(pnls: Sequence[float]) -> float | None:
    """Gross profit over gross loss; None with no losing trade."""
    loss = -sum(p for p in pnls if p < 0)
    return sum(p for p in pnls if p > 0) / loss if loss > 0 else None


def exposure_pct(t: I64, in_market: Any) -> float:
    """Share of the run's time with at least one position (each point stands for the
    time since the one before it)."""
    span = int(t[-1] - t[0]) if len(t) > 1 else 0
    if span <= 0:
        return 0.0
    return 100.0 * float(np.sum(np.diff(t)[np.asarray(in_market)[1:]])) / span


def buy_and_hold_pct(first: Mapping[str, float], last: Mapping[str, float]) -> float | None:
    """Equal weight at each pair's first close, held to its last: the mean return."""
    rets = [_pct(last[s], first[s]) for s in first if first[s] > 0]
    return sum(rets) / len(rets) if rets else None


def monthly_returns(t: I64, equity: F64) -> list[dict[str, Any]]:
    """Each calendar month (UTC): its last equity against the previous month's last (the
    first month against the start), in percent."""
    if len(t) < 2:
        return []
    first, last = (np.datetime64(int(x) - 1, "ms").astype("datetime64[M]") for x in (t[1], t[-1]))
    months = np.arange(first, last + 1)
    ends = (months + 1).astype("datetime64[ms]").astype(np.int64)
    idx = _last_points(t, ends)
    out, before = [], float(equity[0])
    for i in idx.tolist():
        now = float(equity[i])
        label = str(np.datetime64(int(t[i]) - 1, "ms").astype("datetime64[M]"))
        out.append({"month": label, "return_pct": _pct(now, before)})
        before = now
    return out


def group_table(
    trades: Sequence[TradeRow], key: Callable[[TradeRow], str], name: str
) -> list[dict[str, Any]]:
    """Per group (pair, exit reason): trades, wins, win rate, PnL, fees, profit factor,
    mean PnL per trade and mean hold."""
    groups: dict[str, list[TradeRow]] = {}
    for r in trades:
        groups.setdefault(key(r), []).append(r)
    rows = []
    for k, rs in sorted(groups.items()):
        pnls = [r.pnl for r in rs]
        wins = sum(1 for p in pnls if p > 0)
        rows.append(
            {
                name: k,
                "trades": len(rs),
                "wins": wins,
                "win_rate": wins / len(rs),
                "pnl": sum(pnls),
                "fees": sum(r.fees for r in rs),
                "profit_factor": profit_factor(pnls),
                "expectancy": sum(pnls) / len(rs),
                "avg_hold_hours": sum(r.hold_ms for r in rs) / len(rs) / 3_600_000,
            }
        )
    return rows


def pair_table(trades: Sequence[TradeRow], curve: Curve) -> list[dict[str, Any]]:
    """Per pair (every pair of the run, traded or not), with its own buy and hold."""
    traded = {row["symbol"]: row for row in group_table(trades, lambda r: r.symbol, "symbol")}
    rows = []
    for sym in sorted(curve.first_close):
        row = traded.get(sym) or {"symbol": sym, "trades": 0, "wins": 0, "pnl": 0.0}
        row["buy_and_hold_return_pct"] = _pct(curve.last_close[sym], curve.first_close[sym])
        rows.append(row)
    return rows
