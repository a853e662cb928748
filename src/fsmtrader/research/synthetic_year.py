"""A deterministic synthetic market for benchmarks: N pairs of one-minute candles.

Each pair follows a random walk whose volatility clusters (an hourly AR(1) in log-volatility,
a UTC intraday profile) with fat-tailed minute returns (Student t, 3 degrees of freedom)
and rare jumps, so sharp drops happen about as often as on real exchange data and the
drop-buy strategy trades a realistic number of times: with the default settings, seed 1,
the five default pairs trade 584 times in the year (BTC 11, ETH 67, LTC 120, SOL 166,
DOGE 220; one real month of LTC/USDT in ../shared/data gives 22). Wicks scale with the
volatility of the hour. Prices are rounded to each pair's tick, the open is the previous
close, and ``low <= open, close <= high``.

Same seed, same numpy: the same files, byte for byte (each pair has its own stream, so
the first pairs do not change when ``pairs`` grows).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from fsmtrader.errors import DataError
from fsmtrader.feeds import Candles

MINUTES_PER_DAY = 1440
#: 2025-01-01T00:00:00Z, the first candle's open time.
DEFAULT_START_MS = 1_735_689_600_000
FORMATS = ("feather", "csv")
HEADER = "timestamp_ms,open,high,low,close,volume\n"


@dataclass(frozen=True, slots=True)
class PairModel:
    """One pair's parameters: start price, tick decimals, a typical minute volatility and
    yearly drift, and the base volume per minute."""

    symbol: str
    price: float
    decimals: int
    minute_vol: float
    drift_year: float
    volume: float


PAIRS: tuple[PairModel, ...] = (
    PairModel("BTC/USDT", 60_000.0, 2, 0.00055, 0.0, 12.0),
    PairModel("ETH/USDT", 3_000.0, 2, 0.00075, 0.15, 150.0),
    PairModel("SOL/USDT", 150.0, 2, 0.00100, 0.05, 2_000.0),
    PairModel("DOGE/USDT", 0.15, 5, 0.00105, -0.10, 2_000_000.0),
    PairModel("LTC/USDT", 80.0, 2, 0.00090, -0.05, 900.0),
    PairModel("XRP/USDT", 0.6, 4, 0.00095, 0.10, 400_000.0),
    PairModel("ADA/USDT", 0.45, 4, 0.00100, 0.00, 500_000.0),
)


def pair_models(pairs: int) -> list[PairModel]:
    """The first ``pairs`` models; beyond the named ones, more with made-up names."""
    if pairs < 1:
        raise DataError(f"--pairs must be >= 1, got {pairs}")
    out = list(PAIRS[:pairs])
    for i in range(len(out), pairs):
        base = PAIRS[i % len(PAIRS)]
        out.append(
            PairModel(f"SYN{i}/USDT", base.price, base.decimals, base.minute_vol, 0.0, base.volume)
        )
    return out


def synthetic_pair(
    model: PairModel, minutes: int, seed: int, index: int, start_ms: int = DEFAULT_START_MS
) -> Candles:
    """``minutes`` one-minute candles of one pair (numpy columns), from its own stream."""
    if minutes < 2:
        raise DataError(f"minutes must be >= 2, got {minutes}")
    rng = np.random.default_rng([seed, index])
    sigma = _minute_sigma(rng, model.minute_vol, minutes)
    t = rng.standard_t(3, minutes) / np.sqrt(3.0)  # unit variance
    jumps = (rng.random(minutes) < 2e-5) * rng.normal(-0.004, 0.012, minutes)
    drift = model.drift_year / 525_600 - 0.5 * sigma**2
    log_close = np.log(model.price) + np.cumsum(drift + sigma * t + jumps)
    close = np.round(np.exp(log_close), model.decimals)
    tick = 10.0**-model.decimals
    close = np.maximum(close, tick)
    open_ = np.empty_like(close)
    open_[0] = close[0]
    open_[1:] = close[:-1]
    body_hi, body_lo = np.maximum(open_, close), np.minimum(open_, close)
    up = np.exp(rng.exponential(0.45, minutes) * sigma)
    down = np.exp(-rng.exponential(0.45, minutes) * sigma)
    high = np.maximum(np.round(body_hi * up, model.decimals), body_hi)
    low = np.minimum(np.maximum(np.round(body_lo * down, model.decimals), tick), body_lo)
    move = np.abs(np.log(close / open_)) / sigma
    volume = np.round(model.volume * rng.lognormal(0.0, 0.6, minutes) * (0.5 + move), 3)
    ts = start_ms + np.arange(minutes, dtype=np.int64) * 60_000
    return Candles(model.symbol, ts, open_, high, low, close, volume)


def _minute_sigma(rng: np.random.Generator, base: float, minutes: int) -> np.ndarray:
    """Per-minute volatility: an hourly AR(1) regime in log-volatility (calm weeks and
    stormy days) times a UTC intraday profile (busier US/EU hours)."""
    hours = -(-minutes // 60)
    shocks = rng.normal(0.0, 0.08, hours)
    level = np.empty(hours)
    x = 0.0
    for i, e in enumerate(shocks.tolist()):  # 8,760 steps a year: cheap in Python
        x = 0.985 * x + e
        level[i] = x
    hourly = base * np.exp(level - level.var() / 2)
    hour_of_day = np.arange(hours) % 24
    profile = 1.0 + 0.35 * np.exp(-(((hour_of_day - 15) / 3.5) ** 2))
    return np.repeat(hourly * profile, 60)[:minutes]


def file_name(symbol: str, fmt: str) -> str:
    """freqtrade's data-folder name of a pair's one-minute candles: ``BTC_USDT-1m.csv``."""
    return f"{symbol.replace('/', '_')}-1m.{fmt}"


def write_year(
    out: Path,
    pairs: int = 5,
    days: int = 365,
    seed: int = 1,
    fmt: str = "feather",
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write ``pairs`` pairs of ``days`` × 1,440 candles into ``out`` (one file each, each
    written to a temporary name and renamed); the paths written."""
    if fmt not in FORMATS:
        raise DataError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if days < 1:
        raise DataError(f"--days must be >= 1, got {days}")
    out.mkdir(parents=True, exist_ok=True)
    models = pair_models(pairs)
    written: list[Path] = []
    for i, model in enumerate(models):
        candles = synthetic_pair(model, days * MINUTES_PER_DAY, seed, i)
        path = out / file_name(model.symbol, fmt)
        _atomic(path, partial(_WRITERS[fmt], c=candles, decimals=model.decimals))
        written.append(path)
        if progress is not None:
            progress(i + 1, len(models))
    return written


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` then rename it to ``path``: never a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # (mkstemp makes it private; these are plain data files)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_csv(path: Path, *, c: Candles, decimals: int) -> None:
    """Our CSV format, prices with the pair's decimals (each reads back to the same float:
    the values were rounded to them)."""
    cols: Sequence[np.ndarray] = (
        np.asarray(c.ts),
        np.asarray(c.open),
        np.asarray(c.high),
        np.asarray(c.low),
        np.asarray(c.close),
        np.asarray(c.volume),
    )
    p = f"%.{decimals}f"
    fmt = f"%d,{p},{p},{p},{p},%.3f\n"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        rows = np.rec.fromarrays(cols)
        step = 65_536
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step].tolist()
            fh.write("".join(fmt % row for row in chunk))


def _write_feather(path: Path, *, c: Candles, decimals: int) -> None:
    """freqtrade's Feather layout: ``date`` (UTC ms timestamps) and the five prices."""
    pa = importlib.import_module("pyarrow")  # lazy (and untyped): only this writer needs it
    feather = importlib.import_module("pyarrow.feather")

    table = pa.table(
        {
            "date": pa.array(np.asarray(c.ts), pa.timestamp("ms", tz="UTC")),
            "open": np.asarray(c.open),
            "high": np.asarray(c.high),
            "low": np.asarray(c.low),
            "close": np.asarray(c.close),
            "volume": np.asarray(c.volume),
        }
    )
    feather.write_feather(table, str(path), compression="uncompressed")


_WRITERS: dict[str, Callable[..., None]] = {
    "csv": _write_csv,
    "feather": _write_feather,
}
