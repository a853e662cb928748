"""Exchange filters and the pre-flight check every order passes before it is sent.

All arithmetic is Decimal with ROUND_FLOOR: a price or amount is only ever rounded *down*
to the market's grid, so a quantized order can never cost more than was budgeted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, InvalidOperation
from typing import Literal

Number = Decimal | str | int | float

ZERO = Decimal(0)


def to_decimal(value: Number, name: str = "value") -> Decimal:
    """Convert without float arithmetic: floats go through their shortest repr."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, got a bool")
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        d = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{name}: not a number: {value!r}") from None
    else:
        raise ValueError(f"{name}: expected a number, got {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"{name}: must be finite, got {value!r}")
    return d


# Exact arithmetic for quantizing: 80 digits, so no quotient is rounded before the floor.
# A Context object's methods avoid a localcontext() switch per call (this is a hot path).
_EXACT = Context(prec=80)
_divmod = _EXACT.divmod
_multiply = _EXACT.multiply
_add = _EXACT.add
_ONE = Decimal(1)
_subtract = _EXACT.subtract


def _grid(value: Number, unit: Number, name: str, rounding: str) -> Decimal:
    # Decimals (the hot path) skip to_decimal's type dispatch; everything else goes through it.
    v = value if isinstance(value, Decimal) and value.is_finite() else to_decimal(value, name)
    u = unit if isinstance(unit, Decimal) and unit.is_finite() else to_decimal(unit, "grid")
    if u <= 0:
        raise ValueError(f"{name} grid must be > 0, got {u}")
    steps, rest = _divmod(v, u)  # steps truncated toward zero, rest carries v's sign
    if rounding == ROUND_FLOOR and rest < 0:
        steps = _subtract(steps, 1)  # in the exact context: steps may exceed 28 digits
    elif rounding == ROUND_CEILING and rest > 0:
        steps = _add(steps, 1)
    if not steps:
        return ZERO
    result = _multiply(steps, u)
    # steps is a whole number, so the result has the unit's exponent: already plain
    # unless the unit itself is written with a positive exponent (1E+1).
    return result if _plain_unit(u) else plain(result)


@functools.lru_cache(maxsize=1024)
def _plain_unit(unit: Decimal) -> bool:
    """Whether multiples of ``unit`` print without an exponent (cached: the units are the
    few ticks and steps of the markets, and as_tuple() is slow on the hot path)."""
    exponent = unit.as_tuple().exponent
    return isinstance(exponent, int) and exponent <= 0


def plain(d: Decimal) -> Decimal:
    """Drop trailing zeros without exponent notation: 220, not 2.2E+2 (an exchange API
    would reject the latter as a price string)."""
    n = _EXACT.normalize(d)  # exact context: a whole number may exceed 28 digits
    return _EXACT.quantize(n, _ONE) if n == n.to_integral_value() else n


def q_price(price: Number, tick: Number) -> Decimal:
    """Floor ``price`` to a multiple of ``tick`` (any tick, e.g. 0.0001, 0.2 or 110)."""
    return _grid(price, tick, "price", ROUND_FLOOR)


def q_amount(amount: Number, step: Number) -> Decimal:
    """Floor ``amount`` to a multiple of ``step``."""
    return _grid(amount, step, "amount", ROUND_FLOOR)


def ceil_to(value: Number, unit: Number) -> Decimal:
    """Round up to a multiple of ``unit``; used only to reach a minimum, never past budget."""
    return _grid(value, unit, "value", ROUND_CEILING)


@dataclass(frozen=True, slots=True)
class MarketFilters:
    """The four numbers that decide whether an exchange accepts an order. Reading them
    from a venue's market is the adapter's job (``ccxt_adapter.convert``)."""

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    base: str = ""
    quote: str = ""
    # The venue's fee rates as fractions (0.001 = 10 bps) when its market data says them;
    # None when it does not (then the risk setting reserve_fee_bps sizes reservations).
    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None

    def __post_init__(self) -> None:
        for field in ("tick_size", "step_size"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{self.symbol}: {field} must be > 0")
        for field in ("min_qty", "min_notional"):
            if getattr(self, field) < 0:
                raise ValueError(f"{self.symbol}: {field} must be >= 0")


# The order side, for every module (exchange.types builds on this module, not the reverse).
Side = Literal["buy", "sell"]


@dataclass(frozen=True, slots=True)
class PreflightResult:
    ok: bool
    price: Decimal
    amount: Decimal
    reason: str = ""
    bumped: bool = False

    @property
    def notional(self) -> Decimal:
        return self.price * self.amount


def preflight(
    side: Side,
    price: Number,
    amount: Number,
    filters: MarketFilters,
    budget: Number | None = None,
) -> PreflightResult:
    """Quantize an order and check it against the market's minimums.

    A buy below min_notional / min_qty is bumped up to the smallest valid amount when the
    budget (quote currency) allows; the result's notional never exceeds the budget. A sell
    is never bumped (we cannot sell what we do not hold): it fails with a reason, and the
    caller records the remainder as dust.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    p = q_price(price, filters.tick_size)
    a = q_amount(amount, filters.step_size)
    cap = to_decimal(budget, "budget") if budget is not None else None
    if p <= 0:
        return PreflightResult(False, p, a, "price_below_tick")
    if cap is not None and a * p > cap:
        a = q_amount(cap / p, filters.step_size)
    needed = _min_amount(p, filters)
    bumped = False
    if a < needed:
        if side == "sell":
            reason = "below_min_qty" if a < filters.min_qty else "below_min_notional"
            return PreflightResult(False, p, a, reason)
        if cap is not None and needed * p > cap:
            return PreflightResult(False, p, a, "min_notional_exceeds_budget")
        a, bumped = needed, True
    if a <= 0:
        return PreflightResult(False, p, a, "amount_below_step")
    return PreflightResult(True, p, a, "", bumped)


def _min_amount(price: Decimal, f: MarketFilters) -> Decimal:
    """Smallest on-grid amount meeting min_qty and min_notional at ``price``."""
    by_notional = ceil_to(f.min_notional / price, f.step_size) if f.min_notional > 0 else ZERO
    by_qty = ceil_to(f.min_qty, f.step_size) if f.min_qty > 0 else f.step_size
    return max(by_notional, by_qty, f.step_size)


def can_afford(price: Number, filters: MarketFilters, budget: Number) -> bool:
    """Whether the smallest valid buy at ``price`` fits in ``budget`` (the entry guard)."""
    p = q_price(price, filters.tick_size)
    if p <= 0:
        return False
    return _min_amount(p, filters) * p <= to_decimal(budget, "budget")
