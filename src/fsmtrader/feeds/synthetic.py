"""Deterministic synthetic 1-minute markets for demos, tests and backtests without data.

The generator is built so that a drop-buy strategy has something to do: besides a noisy
mean-reverting walk with calm / normal / wild volatility regimes, it injects sharp drops
(3-9 % over 1-5 minutes, about every four hours) followed by a partial or full rebound.
A small upward drift pays back what the partial rebounds lose on average, and mean
reversion towards the base price keeps a year-long series from drifting to zero.

Every symbol gets its own random stream derived from (seed, symbol), so adding a symbol
or reordering the list never changes the other symbols' series.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence

from fsmtrader.errors import ConfigError
from fsmtrader.feeds.candles import ONE_MINUTE_MS, Candles

DEFAULT_START_MS = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC

#: Typical prices for well-known base assets; anything else is derived from the name.
KNOWN_BASE_PRICES: dict[str, float] = {
    "BTC": 95_000.0,
    "ETH": 3_300.0,
    "BNB": 700.0,
    "SOL": 150.0,
    "LTC": 60.0,
    "XRP": 2.2,
    "ADA": 0.7,
    "DOGE": 0.25,
    "TRX": 0.25,
}
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "USD", "EUR", "BTC", "ETH")

SIGNIFICANT_DIGITS = 6

# Volatility regimes: per-minute log-return sigma, volume multiplier, and the Markov
# chain (chance to leave per minute, then where to go).
_CALM, _NORMAL, _WILD = 0, 1, 2
_SIGMA = (0.0004, 0.0008, 0.0018)
_REGIME_VOLUME = (0.6, 1.0, 2.2)
_LEAVE = (1 / 300, 1 / 240, 1 / 90)
#: (first choice, chance of it, other choice) when leaving a regime.
_NEXT = ((_NORMAL, 0.85, _WILD), (_CALM, 0.6, _WILD), (_NORMAL, 0.8, _CALM))

# Sharp drops: chance to start one per idle minute, depth and length ranges, rebound.
_DROP_CHANCE = 1 / 200
_DROP_DEPTH = (0.03, 0.09)
_DROP_MINUTES = (1, 5)
_REBOUND_SHARE = (0.5, 1.0)
_REBOUND_MINUTES = (10, 60)
_DROP_VOLUME = (3.0, 8.0)
_REBOUND_VOLUME = 1.8

#: Mean reversion of log(price / base) per minute: a half-life of about a week.
_KAPPA = math.log(2) / (7 * 24 * 60)
#: log(price / base) is kept above this (price >= ~8 % of base) whatever happens.
_FLOOR = -2.5


def _expected_drop_loss_per_minute() -> float:
    """Average log-price lost per minute to drops that do not fully rebound.

    Paid back by a constant drift so the series neither bleeds down nor needs strong
    mean reversion (which would make the price look pinned).
    """
    lo, hi = _DROP_DEPTH

    def antiderivative(d: float) -> float:  # of -log(1 - d)
        return (1 - d) * math.log(1 - d) - (1 - d)

    mean_log_drop = (antiderivative(hi) - antiderivative(lo)) / (hi - lo)  # E[-log(1-D)]
    kept_loss = 1 - sum(_REBOUND_SHARE) / 2
    cycle = 1 / _DROP_CHANCE + sum(_DROP_MINUTES) / 2 + sum(_REBOUND_MINUTES) / 2
    return mean_log_drop * kept_loss / cycle


_DRIFT = _expected_drop_loss_per_minute()


def _digest(*parts: str) -> int:
    """A stable 64-bit integer from text (``hash()`` of str is salted per process)."""
    data = "\x1f".join(parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def _base_asset(symbol: str) -> str:
    s = symbol.upper()
    for sep in ("/", "-", "_", ":"):
        if sep in s:
            return s.split(sep, 1)[0]
    for quote in _QUOTES:
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)]
    return s


def default_base_price(symbol: str) -> float:
    """A plausible start price: the usual one for known coins, else 0.5..50,000 from the name."""
    known = KNOWN_BASE_PRICES.get(_base_asset(symbol))
    if known is not None:
        return known
    u = _digest("base-price", symbol) / 2.0**64
    price = 0.5 * 10.0 ** (5.0 * u)
    return float(f"{price:.4g}")


def price_decimals(price: float) -> int:
    """Decimal places that give about SIGNIFICANT_DIGITS at ``price``, like a fixed tick size
    (the simulated server's derived tick is this grid, so its prices sit on ticks)."""
    return max(0, SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(price)))


def synthetic_candles(
    symbol: str,
    *,
    minutes: int,
    seed: int,
    start_ms: int = DEFAULT_START_MS,
    base_price: float | None = None,
) -> Candles:
    """One symbol's synthetic 1-minute candles; identical for identical arguments."""
    base = _checked_base(symbol, minutes, base_price)
    rng = random.Random(_digest("synthetic", str(seed), symbol))
    # One random stream feeds both: the walk is a lazy generator, so its draws for a minute
    # come right before that minute's wick and volume draws, as they always have.
    opens, highs, lows, closes, vols = _candles_along(base, _walk(rng, minutes), rng.random)
    ts = list(range(start_ms, start_ms + minutes * ONE_MINUTE_MS, ONE_MINUTE_MS))
    return Candles(symbol, ts, opens, highs, lows, closes, vols)


def _checked_base(symbol: str, minutes: int, base_price: float | None) -> float:
    """The base price to generate around; ConfigError for arguments no market can have."""
    if minutes < 1:
        raise ConfigError(f"synthetic market: minutes must be >= 1, got {minutes}")
    base = default_base_price(symbol) if base_price is None else float(base_price)
    if not 0.0 < base < math.inf:
        raise ConfigError(f"synthetic market: base price for {symbol} must be > 0, got {base}")
    return base


def _walk(rng: random.Random, minutes: int) -> Iterator[tuple[float, float, float, float]]:
    """Per minute ``(x, r, sigma, volume multiplier)``: x = log(price / base) after the
    minute's log-return r, which mixes drift, mean reversion, the regime's noise and the
    current drop or rebound (drawn lazily, one minute per ``next``)."""
    rnd, gauss, uniform, randint = rng.random, rng.gauss, rng.uniform, rng.randint
    sigma, regime_volume, leave, nxt = _SIGMA, _REGIME_VOLUME, _LEAVE, _NEXT
    kappa, drift, floor, drop_chance = _KAPPA, _DRIFT, _FLOOR, _DROP_CHANCE
    depth_lo, depth_hi = _DROP_DEPTH
    dvol_lo, dvol_hi = _DROP_VOLUME
    rebound_volume = _REBOUND_VOLUME
    regime = _NORMAL
    x = 0.0
    phase = 0  # 0 idle, 1 dropping, 2 rebounding
    left = 0  # minutes left in the current phase
    step = 0.0  # log-return added per minute in the current phase
    log_drop = 0.0
    drop_volume = 1.0
    for _ in range(minutes):
        if rnd() < leave[regime]:
            first, p_first, other = nxt[regime]
            regime = first if rnd() < p_first else other
        sig = sigma[regime]
        r = drift - kappa * x + sig * gauss()
        vmult = regime_volume[regime]
        if phase == 0 and rnd() < drop_chance:
            left = randint(*_DROP_MINUTES)
            log_drop = math.log(1.0 - uniform(depth_lo, depth_hi))
            step = log_drop / left
            phase = 1
            drop_volume = uniform(dvol_lo, dvol_hi)
        if phase == 1:
            r += step
            vmult *= drop_volume
            left -= 1
            if left == 0:
                phase, left, step = 2, *_rebound(log_drop, randint, uniform)
        elif phase == 2:
            r += step
            vmult *= rebound_volume
            left -= 1
            if left == 0:
                phase = 0
        x += r
        if x < floor:
            x = floor
        yield x, r, sig, vmult


def _rebound(
    log_drop: float, randint: Callable[[int, int], int], uniform: Callable[[float, float], float]
) -> tuple[int, float]:
    """(minutes, log-return per minute) of the rebound that follows a drop of ``log_drop``."""
    m = randint(*_REBOUND_MINUTES)
    return m, -log_drop * uniform(*_REBOUND_SHARE) / m


def _candles_along(
    base: float, walk: Iterator[tuple[float, float, float, float]], rnd: Callable[[], float]
) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    """Open, high, low, close and volume columns for the walk, rounded like a venue would."""
    dec = price_decimals(base)
    base_volume = 40_000.0 / base  # about 40k quote currency per minute
    # n / 10**k is the double nearest the decimal, so this rounds exactly like round(x, k)
    # for positive x (and is monotone, keeping low <= open, close <= high) at a third
    # of the cost.
    scale = 10.0**dec
    vol_scale = 10.0 ** max(0, 4 - math.floor(math.log10(base_volume)))
    min_volume = 1.0 / vol_scale
    opens: list[float] = []
    highs: list[float] = []
    lows: list[float] = []
    closes: list[float] = []
    vols: list[float] = []
    o_add, h_add, l_add = opens.append, highs.append, lows.append
    c_add, v_add = closes.append, vols.append
    exp, log = math.exp, math.log
    prev_close = round(base, dec)
    for x, r, sig, vmult in walk:
        o = prev_close
        c = base * exp(x)
        top = o if o > c else c
        bottom = c if o > c else o
        # wicks: exponential, scaled by the regime's volatility
        h = int(top * (1.0 - sig * log(1.0 - rnd())) * scale + 0.5) / scale
        lo = int(bottom * (1.0 + sig * log(1.0 - rnd())) * scale + 0.5) / scale
        c = int(c * scale + 0.5) / scale
        o_add(o)
        h_add(h)
        l_add(lo)
        c_add(c)
        move = abs(r) / sig
        v = (
            int(base_volume * vmult * (0.5 + rnd()) * (1.0 + 0.3 * move) * vol_scale + 0.5)
            / vol_scale
        )
        v_add(v if v > 0.0 else min_volume)
        prev_close = c
    return opens, highs, lows, closes, vols


def synthetic_market(
    symbols: Sequence[str],
    *,
    minutes: int,
    seed: int,
    start_ms: int = DEFAULT_START_MS,
    base_prices: Mapping[str, float] | None = None,
) -> list[Candles]:
    """Synthetic 1-minute candles for several symbols on the same clock, in ``symbols`` order."""
    if not symbols:
        raise ConfigError("synthetic market: no symbols given")
    dupes = sorted({s for s in symbols if list(symbols).count(s) > 1})
    if dupes:
        raise ConfigError(f"synthetic market: duplicate symbols {', '.join(dupes)}")
    prices = base_prices or {}
    return [
        synthetic_candles(
            s, minutes=minutes, seed=seed, start_ms=start_ms, base_price=prices.get(s)
        )
        for s in symbols
    ]
