"""Markets and moving prices for the simulated exchange server.

Markets carry Binance's real spot filters (transcribed from ccxt's static Binance fixture,
MIT) so a real ccxt client parses the same tick sizes, steps and minimums it would see
live. Prices come from the seeded synthetic generator: two days of history exist before
start-up (so ``klines`` with a past ``startTime`` work for warm-up and downloads), then a
:class:`PriceDriver` feeds one synthetic 1-minute bar every ``60 / speed`` wall seconds to
the :class:`SimExchange`, which moves tickers and fills resting orders.

Kline timestamps always sit on the *wall-clock* minute grid, so they agree with the
server time a client signs with: at ``speed`` 60 each wall-minute kline aggregates sixty
synthetic bars (an accelerated market), at ``speed`` 1 it is exactly one bar.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Final

from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.feeds.candles import ONE_MINUTE_MS, Candles
from fsmtrader.feeds.synthetic import default_base_price, price_decimals, synthetic_candles
from fsmtrader.markets import MarketFilters

HISTORY_MINUTES: Final = 2 * 24 * 60
#: Order types the server executes; exchangeInfo advertises only these, so ccxt refuses
#: the others (STOP_LOSS, TAKE_PROFIT...) client-side instead of sending something we
#: would silently mishandle. STOP_LOSS_LIMIT: sells only, GTC (the protective stop).
BINANCE_ORDER_TYPES: Final = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT")

# symbol: (tickSize, maxPrice, stepSize, maxQty, MARKET_LOT_SIZE maxQty). Every market in
# the fixture has minPrice = tick, minQty = step, minNotional 5 and maxNotional 9,000,000.
_BINANCE_FILTERS: Final[dict[str, tuple[str, str, str, str, str]]] = {
    "BTC/USDT": ("0.01", "1000000", "0.00001", "9000", "128.52621715"),
    "ETH/USDT": ("0.01", "1000000", "0.0001", "9000", "3277.54882761"),
    "ADA/USDT": ("0.0001", "1000", "0.1", "900000", "3734056.71171548"),
    "LTC/USDT": ("0.01", "100000", "0.001", "90000", "20716.23115062"),
    "XRP/USDT": ("0.0001", "10000", "1", "9222449", "6858819.29288702"),
    "DOGE/USDT": ("0.00001", "1000", "1", "9000000", "28160624.66945606"),
    "TRX/USDT": ("0.00001", "1000", "0.1", "9000000", "7601219.25355648"),
}
_MIN_NOTIONAL: Final = "5"
_MAX_NOTIONAL: Final = "9000000"
_PERMISSIONS: Final = ["SPOT", "MARGIN"]


def fmt8(value: Decimal | str | float) -> str:
    """Binance's fixed 8-decimal number string ("0.01000000")."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return f"{d.quantize(Decimal('1e-8'), rounding=ROUND_HALF_EVEN):f}"


def plain(value: Decimal | str | float) -> str:
    """MEXC's plain number string ("0.01", "95000"), at most 8 decimals."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    d = d.quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN).normalize()
    return "0" if d.is_zero() else f"{d:f}"


def decimals_of(unit: Decimal) -> int:
    """Decimal places of a power-of-ten grid unit (0.01 -> 2, 1 -> 0)."""
    exponent = unit.normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # NaN or infinity
        raise ValueError(f"{unit} is not a grid unit")
    return max(0, -exponent)


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One market: the filters the matching engine enforces and the raw Binance
    exchangeInfo entry a client receives (both describe the same numbers)."""

    filters: MarketFilters
    binance_info: dict[str, Any]
    max_price: Decimal
    max_qty: Decimal
    max_notional: Decimal

    @property
    def symbol(self) -> str:
        return self.filters.symbol

    @property
    def market_id(self) -> str:
        return self.filters.base + self.filters.quote


def _binance_entry(
    base: str,
    quote: str,
    tick: str,
    max_price: str,
    step: str,
    max_qty: str,
    market_max_qty: str,
) -> dict[str, Any]:
    """A spot exchangeInfo symbol in today's shape (permissionSets, int precisions)."""
    return {
        "symbol": base + quote,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(BINANCE_ORDER_TYPES),
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": False,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": _binance_filters(tick, max_price, step, max_qty, market_max_qty),
        "permissions": [],
        "permissionSets": [list(_PERMISSIONS)],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _binance_filters(
    tick: str, max_price: str, step: str, max_qty: str, market_max_qty: str
) -> list[dict[str, Any]]:
    """The symbol's filters as Binance lists them (price, lot, notional, order count)."""
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": fmt8(tick),
            "maxPrice": fmt8(max_price),
            "tickSize": fmt8(tick),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": fmt8(step),
            "maxQty": fmt8(max_qty),
            "stepSize": fmt8(step),
        },
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": fmt8(0),
            "maxQty": fmt8(market_max_qty),
            "stepSize": fmt8(0),
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": fmt8(_MIN_NOTIONAL),
            "applyMinToMarket": True,
            "maxNotional": fmt8(_MAX_NOTIONAL),
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ]


def _derived_filters(symbol: str) -> tuple[str, str, str, str, str]:
    """Filters for a symbol Binance's fixture lacks: the synthetic generator's own price
    grid and a step worth roughly 0.1 quote (at most 1). Not ``runner.filters_from_price``:
    that one fits a user's data file (5 significant digits, 5-quote orders), this one the
    synthetic prices this server quotes."""
    price = default_base_price(symbol)
    step_exp = min(max(math.ceil(math.log10(0.1 / price)), -8), 0)
    tick = f"{Decimal(1).scaleb(-price_decimals(price)):f}"
    step = f"{Decimal(1).scaleb(step_exp):f}"
    return tick, f"{Decimal(price) * 1000:.0f}", step, "9000000", "1000000"


def build_market(symbol: str, info: dict[str, Any] | None = None) -> MarketSpec:
    """A market from a raw Binance exchangeInfo entry, else from the embedded table
    (Binance's real values), else derived from the synthetic price."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"symbol must look like BASE/QUOTE, got {symbol!r}")
    if info is None:
        known = _BINANCE_FILTERS.get(symbol)
        tick, max_price, step, max_qty, market_max = known or _derived_filters(symbol)
        info = _binance_entry(base, quote, tick, max_price, step, max_qty, market_max)
    else:
        info = _normalise_fixture_entry(info)
    by_type = {f["filterType"]: f for f in info["filters"]}
    price_f, lot_f = by_type["PRICE_FILTER"], by_type["LOT_SIZE"]
    notional_f = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL") or {}
    filters = MarketFilters(
        symbol=symbol,
        tick_size=Decimal(price_f["tickSize"]).normalize(),
        step_size=Decimal(lot_f["stepSize"]).normalize(),
        min_qty=Decimal(lot_f["minQty"]).normalize(),
        min_notional=Decimal(str(notional_f.get("minNotional", "0"))).normalize(),
        base=base,
        quote=quote,
    )
    return MarketSpec(
        filters=filters,
        binance_info=info,
        max_price=Decimal(price_f["maxPrice"]),
        max_qty=Decimal(lot_f["maxQty"]),
        max_notional=Decimal(str(notional_f.get("maxNotional", _MAX_NOTIONAL))),
    )


def _normalise_fixture_entry(raw: dict[str, Any]) -> dict[str, Any]:
    """The fixture's entry in today's wire shape: integer precisions, permissionSets,
    and only the order types this server executes."""
    info = dict(raw)
    for key in (
        "baseAssetPrecision",
        "quotePrecision",
        "quoteAssetPrecision",
        "baseCommissionPrecision",
        "quoteCommissionPrecision",
    ):
        if key in info:
            info[key] = int(info[key])
    perms = [p for p in info.get("permissions", []) if isinstance(p, str)]
    info["permissions"] = []
    info["permissionSets"] = [perms or list(_PERMISSIONS)]
    info["orderTypes"] = [t for t in info.get("orderTypes", []) if t in BINANCE_ORDER_TYPES]
    info["filters"] = [dict(f) for f in info.get("filters", [])]
    return info


def load_fixture_infos(path: Path) -> dict[str, dict[str, Any]]:
    """Raw exchangeInfo entries by unified symbol from a ccxt markets JSON file
    ({symbol: market}, [market, ...] or {"markets": ...})."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("markets"), dict | list):
        data = data["markets"]
    items = data.values() if isinstance(data, dict) else data
    out: dict[str, dict[str, Any]] = {}
    for market in items:
        if isinstance(market, dict) and market.get("spot", True) and "info" in market:
            info = market["info"]
            if isinstance(info, dict) and "filters" in info and "symbol" in market:
                out[str(market["symbol"])] = info
    return out


def build_markets(
    symbols: tuple[str, ...] | list[str], markets_file: Path | None = None
) -> dict[str, MarketSpec]:
    """Markets for ``symbols``; a ccxt markets file, when given, supplies raw entries."""
    infos = load_fixture_infos(markets_file) if markets_file is not None else {}
    symbols = [s.strip().upper() for s in symbols]
    if not symbols:
        raise ValueError("at least one symbol is required")
    if len(set(symbols)) != len(symbols):
        raise ValueError("duplicate symbols")
    return {s: build_market(s, infos.get(s)) for s in symbols}


# ---------------------------------------------------------------------------- prices

#: One kline: [open_ms, open, high, low, close, volume, quote_volume, trades].
Kline = list[float]


@dataclass(slots=True)
class _Series:
    """One symbol's synthetic path and where the live driver is on it."""

    symbol: str
    decimals: int
    seed: int
    candles: Candles
    next_index: int
    scale: float = 1.0
    hold: bool = False
    last_close: float = 0.0
    klines: list[Kline] = field(default_factory=list)

    def raw(self, i: int) -> tuple[float, float, float, float, float]:
        """Bar ``i`` of the synthetic path (o, h, l, c, v), growing the path on demand.
        The generator is prefix-stable, so a longer run repeats the bars already used."""
        if i >= len(self.candles):
            self.candles = synthetic_candles(
                self.symbol, minutes=max(2 * len(self.candles), i + 1), seed=self.seed
            )
        c = self.candles
        return c.open[i], c.high[i], c.low[i], c.close[i], c.volume[i]


class PriceDriver:
    """Feeds synthetic bars to the SimExchange and keeps wall-minute klines.

    ``speed`` is simulated seconds per wall second: one synthetic 1-minute bar arrives
    every ``60 / speed`` wall seconds. ``speed`` 0 freezes prices (tests then move them
    with :meth:`set_price`).
    """

    def __init__(
        self,
        sim: SimExchange,
        markets: dict[str, MarketSpec],
        *,
        seed: int,
        speed: float,
        now_ms: int,
        history_minutes: int = HISTORY_MINUTES,
    ) -> None:
        if not math.isfinite(speed) or speed < 0:
            raise ValueError(f"speed must be a finite number >= 0, got {speed}")
        if history_minutes < 1:
            raise ValueError("history_minutes must be >= 1")
        self._sim = sim
        self.speed = speed
        self._start_ms = now_ms
        self._series: dict[str, _Series] = {}
        minute0 = now_ms - now_ms % ONE_MINUTE_MS
        first_ms = minute0 - history_minutes * ONE_MINUTE_MS
        for symbol, spec in markets.items():
            candles = synthetic_candles(symbol, minutes=history_minutes + 1024, seed=seed)
            s = _Series(
                symbol=symbol,
                decimals=decimals_of(spec.filters.tick_size),
                seed=seed,
                candles=candles,
                next_index=history_minutes,
            )
            for i in range(history_minutes):
                o, h, lo, c, v = s.raw(i)
                s.klines.append(_kline(first_ms + i * ONE_MINUTE_MS, o, h, lo, c, v))
            s.last_close = s.raw(history_minutes - 1)[3]
            self._series[symbol] = s
            self._feed(s, now_ms)  # the first live bar: every symbol has a price at once
        self._live_fed = 1

    # ------------------------------------------------------------------ driving

    def advance(self, now_ms: int) -> int:
        """Feed every bar due by ``now_ms``; returns how many bars were fed per symbol."""
        due = 1 + int((now_ms - self._start_ms) / 1000 * self.speed / 60)
        n = min(max(0, due - self._live_fed), 10_000)
        for _ in range(n):
            for s in self._series.values():
                if not s.hold:
                    self._feed(s, now_ms)
        self._live_fed += n
        for s in self._series.values():
            self._roll(s, now_ms)
        return n

    def set_price(
        self,
        symbol: str,
        price: float,
        now_ms: int,
        *,
        high: float | None = None,
        low: float | None = None,
        hold: bool = True,
    ) -> None:
        """Put ``symbol`` at ``price`` now (one bar with the given high/low, which can fill
        resting orders). With ``hold`` the driver leaves the symbol alone afterwards;
        without, the synthetic path continues from ``price``."""
        s = self._series[symbol]
        hi = max(price, high if high is not None else price)
        lo = min(price, low if low is not None else price)
        self._apply(s, now_ms, s.last_close, hi, lo, price, 0.0)
        s.hold = hold
        self._rescale(s)

    def release(self, symbol: str) -> None:
        """Let the driver move a held symbol again, continuing from its current price."""
        s = self._series[symbol]
        s.hold = False
        self._rescale(s)

    def last_price(self, symbol: str) -> float:
        return self._series[symbol].last_close

    # ------------------------------------------------------------------ klines

    def klines(
        self,
        symbol: str,
        interval_ms: int,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        now_ms: int,
    ) -> list[Kline]:
        """Klines of ``interval_ms`` (a multiple of one minute) whose open time lies in
        [start, end], oldest first, at most ``limit``: the first ``limit`` from ``start``,
        else the last ``limit`` up to ``end`` (or now)."""
        s = self._series[symbol]
        self._roll(s, now_ms)
        rows = s.klines if interval_ms == ONE_MINUTE_MS else _aggregate(s.klines, interval_ms)
        lo = start_ms if start_ms is not None else -(2**62)
        hi = end_ms if end_ms is not None else 2**62
        picked = [k for k in rows if lo <= k[0] <= hi]
        return picked[:limit] if start_ms is not None else picked[-limit:]

    def day_stats(self, symbol: str, now_ms: int) -> dict[str, float]:
        """Rolling 24h open/high/low/close/volumes from the 1-minute klines."""
        s = self._series[symbol]
        self._roll(s, now_ms)
        since = now_ms - 24 * 60 * ONE_MINUTE_MS
        window = [k for k in s.klines[-24 * 60 - 1 :] if k[0] > since]
        if not window:
            window = s.klines[-1:]
        return {
            "open": window[0][1],
            "high": max(k[2] for k in window),
            "low": min(k[3] for k in window),
            "close": window[-1][4],
            "volume": sum(k[5] for k in window),
            "quote_volume": sum(k[6] for k in window),
            "trades": sum(k[7] for k in window),
            "open_ms": window[0][0],
        }

    # ------------------------------------------------------------------ internals

    def _feed(self, s: _Series, now_ms: int) -> None:
        o, h, lo, c, v = s.raw(s.next_index)
        s.next_index += 1
        k = s.scale
        self._apply(s, now_ms, o * k, h * k, lo * k, c * k, v)

    def _apply(
        self, s: _Series, now_ms: int, o: float, h: float, lo: float, c: float, v: float
    ) -> None:
        d = s.decimals
        o, h, lo, c = round(o, d), round(h, d), round(lo, d), round(c, d)
        self._roll(s, now_ms)
        last = s.klines[-1]
        if last[0] == now_ms - now_ms % ONE_MINUTE_MS:
            last[2] = max(last[2], h)
            last[3] = min(last[3], lo)
            last[4] = c
            last[5] += v
            last[6] += v * c
            last[7] += _prints(v, c)
        s.last_close = c
        self._sim.update_market(s.symbol, now_ms, c, h, lo, v)

    def _roll(self, s: _Series, now_ms: int) -> None:
        """Open flat klines (at the last close, no volume) up to the current minute."""
        minute = now_ms - now_ms % ONE_MINUTE_MS
        last_ms = int(s.klines[-1][0])
        while last_ms < minute:
            last_ms += ONE_MINUTE_MS
            c = s.last_close
            s.klines.append([float(last_ms), c, c, c, c, 0.0, 0.0, 0.0])

    def _rescale(self, s: _Series) -> None:
        raw_close = s.raw(s.next_index - 1)[3]
        s.scale = s.last_close / raw_close if raw_close > 0 else 1.0


def _prints(volume: float, price: float) -> float:
    """A plausible trade count for a bar: about one print per 500 quote."""
    return float(max(1, int(volume * price / 500))) if volume > 0 else 0.0


def _kline(ms: int, o: float, h: float, lo: float, c: float, v: float) -> Kline:
    return [float(ms), o, h, lo, c, v, v * c, _prints(v, c)]


def _aggregate(rows: list[Kline], interval_ms: int) -> list[Kline]:
    """Minute klines folded into ``interval_ms`` buckets aligned to the epoch."""
    out: list[Kline] = []
    for k in rows:
        bucket = float(int(k[0]) - int(k[0]) % interval_ms)
        if out and out[-1][0] == bucket:
            cur = out[-1]
            cur[2] = max(cur[2], k[2])
            cur[3] = min(cur[3], k[3])
            cur[4] = k[4]
            cur[5] += k[5]
            cur[6] += k[6]
            cur[7] += k[7]
        else:
            out.append([bucket, k[1], k[2], k[3], k[4], k[5], k[6], k[7]])
    return out
