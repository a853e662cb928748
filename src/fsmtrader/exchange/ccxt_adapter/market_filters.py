"""A ccxt market -> :class:`MarketFilters`: every filter the venue enforces.

The venue's raw exchangeInfo entry (``market["info"]``) is read first for every limit it
states, because its strings are exact and it says what ccxt's unified fields drop
(Binance's applyToMarket flags, the percent-price bands, MEXC's market-order limits).
Binance states its rules as ``filters``; MEXC has none and states them as fields
(``baseSizePrecision`` is the minimum amount, ``quoteAmountPrecision`` the minimum
notional, ``baseAssetPrecision`` / ``quoteAssetPrecision`` decimal places). ccxt's
unified ``precision`` / ``limits`` fill what the raw entry does not say.
Pure: no ccxt import, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Literal

from fsmtrader.markets import ZERO, MarketFilters, PercentPrice, plain, to_decimal

_ONE: Final = Decimal(1)
Reader = Literal["limit", "num"]
Raw = dict[str, Any]  # our field name -> Decimal (or PercentPrice), as the venue said it


def filters_from_ccxt(market: Mapping[str, Any]) -> MarketFilters:
    """Read a ccxt unified market (TICK_SIZE precision mode), with the venue's fees.

    A unified precision that is a whole number >= 1 while the raw entry states the grid
    is a DECIMAL_PLACES count from an old fixture, not a tick size: the raw grid wins
    then. ``maker`` / ``taker`` (fractions) become the fee fields, None when the market
    does not say them. ValueError, naming the symbol and field, for a missing grid or a
    value that is not a number.
    """
    symbol = str(market.get("symbol") or market.get("id") or "?")
    raw = raw_limits(market.get("info") or {}, symbol)
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    tick = _unified_grid(precision, "price", raw.get("tick_size"), symbol)
    step = _unified_grid(precision, "amount", raw.get("step_size"), symbol)
    if tick is None or step is None:
        missing = "tick size" if tick is None else "step size"
        raise ValueError(f"{symbol}: market has no {missing} (precision or info filters)")
    unified = _unified_limits(limits, symbol)
    found: Raw = {**unified, **raw}  # the raw entry wins where both say a limit
    for key in ("min_qty", "min_notional"):  # unified first, as ever: ccxt's own reading
        if unified.get(key) is not None:
            found[key] = unified[key]
    found.pop("tick_size", None)
    found.pop("step_size", None)
    values: dict[str, Any] = {
        k: plain(v) if isinstance(v, Decimal) else v for k, v in found.items()
    }
    try:
        return MarketFilters(
            symbol=symbol,
            tick_size=plain(tick),
            step_size=plain(step),
            min_qty=values.pop("min_qty", ZERO),
            min_notional=values.pop("min_notional", ZERO),
            base=str(market.get("base") or symbol.split("/")[0]),
            quote=str(market.get("quote") or symbol.partition("/")[2]),
            maker_fee=_fee(market, "maker", symbol),
            taker_fee=_fee(market, "taker", symbol),
            **values,
        )
    except ValueError as exc:
        raise ValueError(f"{symbol}: inconsistent filters: {exc}") from None


def _unified_grid(
    precision: Mapping[str, Any], key: str, raw_value: Decimal | None, symbol: str
) -> Decimal | None:
    value = precision.get(key)
    if value is None:
        return raw_value
    d = to_decimal(value, f"{symbol} precision.{key}")
    if d == d.to_integral_value() and (raw_value is not None or d == 0):
        # A whole number here is a DECIMAL_PLACES count (old fixtures), unless it is a
        # genuine tick like 1 or 10 with no raw filter to say otherwise.
        return raw_value if raw_value is not None else _ONE.scaleb(-int(d))
    return d


def _unified_limits(limits: Mapping[str, Any], symbol: str) -> Raw:
    """ccxt's ``limits`` by our field names; a 0 maximum or price bound is no limit."""
    out: Raw = {}
    for section, bound, name, zero_is_none in (
        ("amount", "min", "min_qty", False),
        ("cost", "min", "min_notional", False),
        ("amount", "max", "max_qty", True),
        ("price", "min", "min_price", True),
        ("price", "max", "max_price", True),
        ("cost", "max", "max_notional", True),
        ("market", "min", "market_min_qty", True),
        ("market", "max", "market_max_qty", True),
    ):
        value = (limits.get(section) or {}).get(bound)
        if value is None:
            continue
        d = to_decimal(value, f"{symbol} limits.{section}.{bound}")
        if not (zero_is_none and d == 0):
            out[name] = d
    return out


def _fee(market: Mapping[str, Any], key: str, symbol: str) -> Decimal | None:
    value = market.get(key)
    if value is None:
        return None
    return plain(to_decimal(value, f"{symbol} {key} fee"))


# --------------------------------------------------------------------------- raw entries


def raw_limits(info: Mapping[str, Any], symbol: str = "?") -> Raw:
    """The limits a raw exchangeInfo symbol entry states, by our field names: Binance's
    ``filters`` when it has any, else MEXC's fields."""
    filters = info.get("filters") or []
    if filters:
        return _binance_filters(filters, symbol)
    return _mexc_fields(info, symbol)


def _num(entry: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = entry.get(key)
    return None if value is None else to_decimal(value, f"{where}.{key}")


def _limit(entry: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    """A maximum or bound where the venue writes 0 for "no limit"."""
    d = _num(entry, key, where)
    return None if d is None or d == 0 else d


def _put(out: Raw, **values: Any) -> None:
    out.update({k: v for k, v in values.items() if v is not None})


# Binance's grid and quantity filters, as data: filterType -> (our field, its key, reader).
# ``_limit`` reads a bound where Binance writes 0 for "none"; ``_num`` a plain value.
_GRID_FILTERS: Final[dict[str, tuple[tuple[str, str, Reader], ...]]] = {
    "PRICE_FILTER": (
        ("tick_size", "tickSize", "limit"),
        ("min_price", "minPrice", "limit"),
        ("max_price", "maxPrice", "limit"),
    ),
    "LOT_SIZE": (
        ("step_size", "stepSize", "limit"),
        ("min_qty", "minQty", "num"),
        ("max_qty", "maxQty", "limit"),
    ),
    "MARKET_LOT_SIZE": (
        ("market_step_size", "stepSize", "limit"),
        ("market_min_qty", "minQty", "limit"),
        ("market_max_qty", "maxQty", "limit"),
    ),
}


def _binance_filters(filters: list[Any], symbol: str) -> Raw:
    """Every limit Binance's ``filters`` list states, by our field names."""
    out: Raw = {}
    for f in filters:
        kind = str(f.get("filterType") or "")
        where = f"{symbol} {kind}"
        fields = _GRID_FILTERS.get(kind)
        if fields is not None:
            _put(out, **{name: _READ[how](f, key, where) for name, key, how in fields})
        elif kind in ("PERCENT_PRICE", "PERCENT_PRICE_BY_SIDE"):
            out["percent_price"] = _percent_price(f, kind, where)
        elif kind in ("MIN_NOTIONAL", "NOTIONAL"):
            out.update(_notional(f, kind, where))
    return out


_READ: Final = {"limit": _limit, "num": _num}


def _percent_price(f: Mapping[str, Any], kind: str, where: str) -> PercentPrice:
    mins = int(_num(f, "avgPriceMins", where) or 0)
    try:
        if kind == "PERCENT_PRICE":
            up, down = _num(f, "multiplierUp", where), _num(f, "multiplierDown", where)
            if up is None or down is None:
                raise ValueError("multiplierUp and multiplierDown are required")
            return PercentPrice.both_sides(up, down, mins)
        keys = ("bidMultiplierUp", "bidMultiplierDown", "askMultiplierUp", "askMultiplierDown")
        bands = [_num(f, key, where) for key in keys]
        if any(b is None for b in bands):
            raise ValueError("bid/ask multipliers up and down are required")
        bid_up, bid_down, ask_up, ask_down = (b or ZERO for b in bands)
        return PercentPrice(bid_up, bid_down, ask_up, ask_down, mins)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _notional(f: Mapping[str, Any], kind: str, where: str) -> Raw:
    """MIN_NOTIONAL (applyToMarket) or NOTIONAL (applyMinToMarket, maxNotional,
    applyMaxToMarket) as min/max notional and the market-order variants."""
    out: Raw = {}
    _put(out, min_notional=_num(f, "minNotional", where))
    applies_min = f.get("applyToMarket" if kind == "MIN_NOTIONAL" else "applyMinToMarket")
    if applies_min is False:
        out["market_min_notional"] = ZERO
    maximum = _limit(f, "maxNotional", where)
    if maximum is not None:
        out["max_notional"] = maximum
        if f.get("applyMaxToMarket") is True:
            out["market_max_notional"] = maximum
    return out


def _places(info: Mapping[str, Any], keys: tuple[str, ...], where: str) -> Decimal | None:
    """A grid of 10**-n from the first decimal-places field that is present."""
    for key in keys:
        n = _num(info, key, where)
        if n is not None:
            if n != n.to_integral_value():
                raise ValueError(f"{where}.{key}: decimal places must be whole, got {n}")
            return _ONE.scaleb(-int(n))
    return None


def _mexc_fields(info: Mapping[str, Any], symbol: str) -> Raw:
    """MEXC's exchangeInfo entry (no ``filters``): its limits are plain fields."""
    where = f"{symbol} exchangeInfo"
    out: Raw = {}
    _put(
        out,
        tick_size=_places(info, ("quoteAssetPrecision", "quotePrecision"), where),
        step_size=_places(info, ("baseAssetPrecision",), where),
        min_qty=_num(info, "baseSizePrecision", where),
        min_notional=_num(info, "quoteAmountPrecision", where),
        max_notional=_limit(info, "maxQuoteAmount", where),
        market_min_notional=_num(info, "quoteAmountPrecisionMarket", where),
        market_max_notional=_limit(info, "maxQuoteAmountMarket", where),
    )
    return out
