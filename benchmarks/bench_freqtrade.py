"""freqtrade on the same candles and strategy, in its own venv (never this project's).

freqtrade reads the synthetic year's Feather files as they are (its own layout), runs
``DropBuy`` (benchmarks/freqtrade/DropBuy.py: fsmtrader's default drop-buy in its terms:
ROI 2 % then out at 120 minutes, stop-loss 3 %, trailing 0.5 % once 1 % up, a 15-candle
cooldown, 3 slots of 25 USDT, fee 0.1 %), offline: ccxt's Binance markets come from
../shared/data (``ft_offline.py``). Its ROI is net of fees, ours gross by default, so the
trades differ a little."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench_process import run_process

HERE = Path(__file__).resolve().parent / "freqtrade"
CONFIG: dict[str, Any] = {
    "max_open_trades": 3,
    "stake_currency": "USDT",
    "stake_amount": 25,
    "dry_run": True,
    "dry_run_wallet": 1000,
    "trading_mode": "spot",
    "timeframe": "1m",
    "exchange": {"name": "binance", "key": "", "secret": "", "pair_whitelist": []},
    "pairlists": [{"method": "StaticPairList"}],
    "entry_pricing": {"price_side": "same", "use_order_book": False},
    "exit_pricing": {"price_side": "same", "use_order_book": False},
    "dataformat_ohlcv": "feather",
}


def run_freqtrade(venv: Path, data: Path, ours: dict[str, Any]) -> None:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"\nfreqtrade: no {python}; skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "user_data" / "strategies").mkdir(parents=True)
        shutil.copy(HERE / "DropBuy.py", work / "user_data" / "strategies")
        config = dict(CONFIG, exchange=dict(CONFIG["exchange"], pair_whitelist=ours["symbols"]))
        (work / "config.json").write_text(json.dumps(config))
        argv = [
            str(python),
            str(HERE / "ft_offline.py"),
            "backtesting",
            "--config", "config.json",
            "--strategy", "DropBuy",
            "--datadir", str(data),
            "--userdir", "user_data",
            "--fee", "0.001",
            "--enable-protections",
            "--cache", "none",
            "--export", "none",
        ]  # fmt: skip
        proc = run_process(argv, work)
    if proc.code != 0:
        print(f"\nfreqtrade failed ({proc.code}): {proc.err.strip().splitlines()[-1:]}")
        return
    trades = re.search(r"Total/Daily Avg Trades\s*│\s*(\d+)", proc.out)
    profit = re.search(r"Absolute profit\s*│\s*(-?[\d.]+)", proc.out)
    candles = ours["candles"]
    print(
        f"\nfreqtrade process {proc.wall_s:6.2f} s wall ({candles / proc.wall_s:>10,.0f} "
        f"candles/s), {proc.cpu_s:5.2f} s CPU ({candles / proc.cpu_s:>10,.0f} candles/CPU-s), "
        f"peak RSS {proc.rss_mb:5.0f} MB"
    )
    print(
        f"{'':9s} trades {trades.group(1) if trades else '?'}, absolute profit "
        f"{profit.group(1) if profit else '?'} USDT (fsmtrader: {ours['trades']} trades, "
        f"{ours['realized_pnl']})"
    )
