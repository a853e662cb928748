"""The settings of a backtest: how a candle is read (which level a candle that touches
both the stop and the target reaches first, when an entry signal buys) and whether the
driver skips the candles where nothing can happen. Paper and live sessions ignore them:
there the same exit rules see ticks."""

from __future__ import annotations

from typing import Literal

from fsmtrader.config.sections import _Section

__all__ = ["BacktestSettings"]


class BacktestSettings(_Section):
    """Bars in a backtest. A candle's high and low are reached inside it: take-profit,
    stop-loss and trailing stop trigger there and fill at their level (bounded by the
    candle). ``both_touch`` says which comes first when one candle reaches both levels:
    ``stop_first`` (the conservative default: the loss), ``target_first``, or
    ``nearer_open_first`` (whichever level is closer to the candle's open). ``entry_on``:
    buy on the signal candle's ``close`` or at the ``next_open``. ``fast``: skip ahead over
    candles where nothing can trigger (the same trades as stepping every candle)."""

    both_touch: Literal["stop_first", "target_first", "nearer_open_first"] = "stop_first"
    entry_on: Literal["close", "next_open"] = "close"
    fast: bool = False
