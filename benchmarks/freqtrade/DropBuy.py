"""fsmtrader's default drop-buy as a freqtrade strategy (benchmarks/bench_freqtrade.py):
buy 3 % below the 60-minute high; take profit 2 %, stop-loss 3 %, trailing 0.5 % once
1 % up, out after 120 minutes, 15 minutes' cooldown per pair."""

from __future__ import annotations

from typing import Any, ClassVar

from freqtrade.strategy import IStrategy
from pandas import DataFrame


class DropBuy(IStrategy):  # type: ignore[misc]
    INTERFACE_VERSION = 3
    timeframe = "1m"
    startup_candle_count = 60
    minimal_roi: ClassVar[dict[str, float]] = {"0": 0.02, "120": -1}
    stoploss = -0.03
    trailing_stop = True
    trailing_stop_positive = 0.005
    trailing_stop_positive_offset = 0.01
    trailing_only_offset_is_reached = True
    process_only_new_candles = True
    use_exit_signal = False

    @property
    def protections(self) -> list[dict[str, Any]]:
        return [{"method": "CooldownPeriod", "stop_duration_candles": 15}]

    def populate_indicators(self, df: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        df["anchor"] = df["close"].rolling(60, min_periods=1).max()
        return df

    def populate_entry_trend(self, df: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        df.loc[df["close"] <= df["anchor"] * 0.97, "enter_long"] = 1
        return df

    def populate_exit_trend(self, df: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        return df
