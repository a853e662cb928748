"""Market data feeds: columnar candles, candle files (CSV, Feather, Parquet, freqtrade
JSON) and a deterministic synthetic market."""

from fsmtrader.feeds.candles import Bar, Candles, bars, merge
from fsmtrader.feeds.csv_replay import load_csv, write_csv
from fsmtrader.feeds.synthetic import default_base_price, synthetic_candles, synthetic_market

__all__ = [
    "Bar",
    "Candles",
    "bars",
    "default_base_price",
    "load_csv",
    "merge",
    "synthetic_candles",
    "synthetic_market",
    "write_csv",
]
