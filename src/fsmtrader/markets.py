"""Exchange filters and the pre-flight check every order passes before it is sent.

All arithmetic is Decimal with ROUND_FLOOR: a price or amount is only ever rounded *down*
to the market's grid, so a quantized order can never cost more than was budgeted. Grid
arithmetic is exact for any finite grid (a tick of 1e-100, a price of 1e30): it runs in an
80-digit context that *traps* rounding, and only a computation that would round is redone
in a context as wide as its operands need.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_CEILING,
    ROUND_FLOOR,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Literal, TypeVar

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


# --------------------------------------------------------------------------- exact arithmetic

_TRAPS = [InvalidOperation, DivisionByZero, Overflow, Inexact]
# The hot path: 80 digits covers every sane market; Inexact is trapped, so a result that
# would be rounded raises instead and is redone wide (_exact). A Context object's methods
# avoid a localcontext() switch per call.
_FAST = Context(prec=80, traps=_TRAPS)
# The widest computation we attempt: a grid needing more digits is refused (ValueError).
MAX_GRID_DIGITS = 5000
_ONE = Decimal(1)
_divmod, _multiply, _remainder = _FAST.divmod, _FAST.multiply, _FAST.remainder
_add, _subtract = _FAST.add, _FAST.subtract
T = TypeVar("T")


def _wide(name: str, *operands: Decimal) -> Context:
    """A context in which +, -, *, divmod, remainder and normalize of ``operands`` (and of
    a whole multiple of one by another) are exact: every such value is a multiple of the
    smallest exponent, bounded by the largest magnitude, with at most the sum of the
    operands' digits in a product."""
    tuples = [d.as_tuple() for d in operands]
    low = min(int(t.exponent) for t in tuples)
    high = max(d.adjusted() for d in operands)
    digits = (high - low + 3) + sum(len(t.digits) for t in tuples)
    if digits > MAX_GRID_DIGITS:
        shown = ", ".join(format(d, "e") for d in operands)
        raise ValueError(
            f"{name}: {shown} needs {digits} digits of exact arithmetic "
            f"(at most {MAX_GRID_DIGITS}): not a grid this engine can represent"
        )
    return Context(prec=digits, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=_TRAPS)


def _exact(name: str, op: Callable[[Context], T], *operands: Decimal) -> T:
    """``op`` in the fast context, or, if that would round, in one wide enough."""
    try:
        return op(_FAST)
    except (InvalidOperation, Inexact, Overflow):  # DivisionImpossible is InvalidOperation
        pass
    try:
        return op(_wide(name, *operands))
    except (InvalidOperation, Inexact, Overflow) as exc:  # pragma: no cover - a bound bug
        raise ValueError(f"{name}: not exactly representable ({type(exc).__name__})") from None


def mul(a: Decimal, b: Decimal, name: str = "product") -> Decimal:
    """``a * b``, exact."""
    try:
        return _multiply(a, b)
    except (InvalidOperation, Inexact, Overflow):
        return _exact(name, lambda c: c.multiply(a, b), a, b)


def times(count: Decimal, unit: Decimal) -> Decimal:
    """``count`` whole units, exact and plain (like the quantizers' results)."""
    result = mul(count, unit)
    return result if _plain_unit(unit) else plain(result)


def on_grid(value: Decimal, unit: Decimal, name: str = "value") -> bool:
    """Whether ``value`` is an exact multiple of ``unit`` (> 0), for any finite grid."""
    try:
        return bool(_remainder(value, unit) == 0)
    except (InvalidOperation, Inexact, Overflow):
        return bool(_exact(name, lambda c: c.remainder(value, unit), value, unit) == 0)


def units(value: Decimal, unit: Decimal, rounding: str, name: str = "value") -> Decimal:
    """How many whole ``unit``\\ s fit in ``value``, floored or ceiled: a whole number."""
    return _exact(name, lambda c: _units_in(c, value, unit, rounding), value, unit)


def _units_in(c: Context, value: Decimal, unit: Decimal, rounding: str) -> Decimal:
    steps, rest = c.divmod(value, unit)  # steps truncated toward zero, rest has value's sign
    if rounding == ROUND_FLOOR and rest < 0:
        return c.subtract(steps, _ONE)
    if rounding == ROUND_CEILING and rest > 0:
        return c.add(steps, _ONE)
    return steps


def _grid(value: Number, unit: Number, name: str, rounding: str) -> Decimal:
    # Decimals (the hot path) skip to_decimal's type dispatch; everything else goes through it.
    v = value if isinstance(value, Decimal) and value.is_finite() else to_decimal(value, name)
    u = unit if isinstance(unit, Decimal) and unit.is_finite() else to_decimal(unit, "grid")
    if u <= 0:
        raise ValueError(f"{name} grid must be > 0, got {u}")
    try:  # the hot path, inline: one divmod, one multiply
        steps, rest = _divmod(v, u)
        if rounding == ROUND_FLOOR and rest < 0:
            steps = _subtract(steps, _ONE)
        elif rounding == ROUND_CEILING and rest > 0:
            steps = _add(steps, _ONE)
        result = _multiply(steps, u) if steps else ZERO
    except (InvalidOperation, Inexact, Overflow):  # would round: redo exactly, wide
        result = _on_grid_in(_wide(name, v, u), v, u, rounding)
    # steps is a whole number, so the result has the unit's exponent: already plain
    # unless the unit itself is written with a positive exponent (1E+1).
    return result if _plain_unit(u) else plain(result)


def _on_grid_in(c: Context, v: Decimal, u: Decimal, rounding: str) -> Decimal:
    steps = _units_in(c, v, u, rounding)
    return ZERO if not steps else c.multiply(steps, u)


@functools.lru_cache(maxsize=1024)
def _plain_unit(unit: Decimal) -> bool:
    """Whether multiples of ``unit`` print without an exponent (cached: the units are the
    few ticks and steps of the markets, and as_tuple() is slow on the hot path)."""
    exponent = unit.as_tuple().exponent
    return isinstance(exponent, int) and exponent <= 0


def plain(d: Decimal) -> Decimal:
    """Drop trailing zeros without exponent notation: 220, not 2.2E+2 (an exchange API
    would reject the latter as a price string). Exact for any number of digits."""
    return _exact("value", lambda c: _plain_in(c, d), d, _ONE)


def _plain_in(c: Context, d: Decimal) -> Decimal:
    n = c.normalize(d)
    return c.quantize(n, _ONE) if n == n.to_integral_value() else n


class Grid:
    """One tick or step, checked once, for a hot loop that quantizes many Decimals onto
    it: ``floor`` and ``ceil`` give exactly what :func:`q_price` / :func:`q_amount` and
    :func:`ceil_to` give, without re-checking the unit on every call."""

    __slots__ = ("_plain", "name", "unit")

    def __init__(self, unit: Number, name: str = "value") -> None:
        u = to_decimal(unit, "grid")
        if u <= 0:
            raise ValueError(f"{name} grid must be > 0, got {u}")
        self.unit, self.name, self._plain = u, name, _plain_unit(u)

    def floor(self, value: Decimal) -> Decimal:
        """``value`` rounded down onto the grid."""
        try:
            steps, rest = _divmod(value, self.unit)
            return self._times(_subtract(steps, _ONE) if rest < 0 else steps)
        except (InvalidOperation, Inexact, Overflow):  # would round: redo exactly, wide
            return self._wide(value, ROUND_FLOOR)

    def ceil(self, value: Decimal) -> Decimal:
        """``value`` rounded up onto the grid."""
        try:
            steps, rest = _divmod(value, self.unit)
            return self._times(_add(steps, _ONE) if rest > 0 else steps)
        except (InvalidOperation, Inexact, Overflow):
            return self._wide(value, ROUND_CEILING)

    def _times(self, steps: Decimal) -> Decimal:
        result = _multiply(steps, self.unit) if steps else ZERO
        return result if self._plain else plain(result)

    def _wide(self, value: Decimal, rounding: str) -> Decimal:
        v, u = to_decimal(value, self.name), self.unit  # (NaN, infinity: _grid's error)
        result = _on_grid_in(_wide(self.name, v, u), v, u, rounding)
        return result if self._plain else plain(result)


def q_price(price: Number, tick: Number) -> Decimal:
    """Floor ``price`` to a multiple of ``tick`` (any tick, e.g. 0.0001, 0.2 or 110)."""
    return _grid(price, tick, "price", ROUND_FLOOR)


def q_amount(amount: Number, step: Number) -> Decimal:
    """Floor ``amount`` to a multiple of ``step``."""
    return _grid(amount, step, "amount", ROUND_FLOOR)


def ceil_to(value: Number, unit: Number) -> Decimal:
    """Round up to a multiple of ``unit``; used only to reach a minimum, never past budget."""
    return _grid(value, unit, "value", ROUND_CEILING)


# --------------------------------------------------------------------------- filters

# The largest price or amount a market without a maximum is checked at for its grid.
_LARGEST = Decimal("1e18")

# The order side, for every module (exchange.types builds on this module, not the reverse).
Side = Literal["buy", "sell"]


@dataclass(frozen=True, slots=True)
class PercentPrice:
    """Binance's percent-price band: a limit price must lie within ``[avg * down,
    avg * up]`` of the venue's average price over the last ``avg_price_mins`` minutes (0:
    the last price). ``PERCENT_PRICE`` has one band for both sides (``both_sides``);
    ``PERCENT_PRICE_BY_SIDE`` one for buys (bid) and one for sells (ask)."""

    bid_up: Decimal
    bid_down: Decimal
    ask_up: Decimal
    ask_down: Decimal
    avg_price_mins: int = 0
    by_side: bool = True

    @classmethod
    def both_sides(cls, up: Decimal, down: Decimal, avg_price_mins: int = 0) -> PercentPrice:
        return cls(up, down, up, down, avg_price_mins, by_side=False)

    def __post_init__(self) -> None:
        for side in ("bid", "ask"):
            up, down = getattr(self, f"{side}_up"), getattr(self, f"{side}_down")
            if not (0 <= down <= up and up > 0):
                raise ValueError(f"percent price: need 0 <= {side} down <= up, up > 0")

    def band(self, side: Side, ref: Decimal) -> tuple[Decimal, Decimal]:
        """The (lowest, highest) price ``side`` may be placed at around ``ref``."""
        if side == "buy":
            return mul(ref, self.bid_down), mul(ref, self.bid_up)
        return mul(ref, self.ask_down), mul(ref, self.ask_up)


@dataclass(frozen=True, slots=True)
class MarketFilters:
    """Everything that decides whether an exchange accepts an order. Reading it from a
    venue's market is the adapter's job (``ccxt_adapter.market_filters``).

    The first four are always known; every later limit is None when the venue does not
    state it (Binance's 0 = "no limit" is read as None). ``market_*`` are the quantity
    rules of market orders (Binance MARKET_LOT_SIZE; None: LOT_SIZE's step alone, and
    no extra minimum or maximum). ``market_min_notional`` None: ``min_notional`` applies
    to market orders too (Binance applyMinToMarket; 0 when it does not);
    ``market_max_notional`` None: no maximum for market orders (applyMaxToMarket false).
    """

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
    max_qty: Decimal | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    percent_price: PercentPrice | None = None
    max_notional: Decimal | None = None
    market_min_qty: Decimal | None = None
    market_max_qty: Decimal | None = None
    market_step_size: Decimal | None = None
    market_min_notional: Decimal | None = None
    market_max_notional: Decimal | None = None

    def __post_init__(self) -> None:
        for field in ("tick_size", "step_size"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{self.symbol}: {field} must be > 0")
        for field in ("min_qty", "min_notional", "min_price", "market_min_qty"):
            value = getattr(self, field)
            if value is not None and value < 0:
                raise ValueError(f"{self.symbol}: {field} must be >= 0")
        for field in ("max_qty", "max_price", "max_notional", "market_max_qty"):
            value = getattr(self, field)
            if value is not None and value <= 0:
                raise ValueError(f"{self.symbol}: {field} must be > 0 (None: no limit)")
        for field in ("market_step_size", "market_min_notional", "market_max_notional"):
            value = getattr(self, field)
            if value is not None and value < 0:
                raise ValueError(f"{self.symbol}: {field} must be >= 0")
        if self.market_step_size is not None and self.market_step_size == 0:
            raise ValueError(f"{self.symbol}: market_step_size must be > 0 (None: step_size)")
        for low, high in (("min_qty", "max_qty"), ("min_price", "max_price")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{self.symbol}: {low} {lo} > {high} {hi}")
        for grid, top in (("tick_size", self.max_price), ("step_size", self.max_qty)):
            try:  # the largest value the market allows must quantize (a 1e-9000 tick not)
                q_price(top if top is not None else _LARGEST, getattr(self, grid))
            except ValueError:
                raise ValueError(
                    f"{self.symbol}: {grid} {getattr(self, grid)} is not a grid this engine "
                    f"can represent (at most {MAX_GRID_DIGITS} digits)"
                ) from None


@dataclass(frozen=True, slots=True)
class PreflightResult:
    """``price`` is the limit price, or for a market order the reference it was checked at;
    ``bumped``: raised to the minimum; ``capped``: lowered to the venue's maximum."""

    ok: bool
    price: Decimal
    amount: Decimal
    reason: str = ""
    bumped: bool = False
    capped: bool = False

    @property
    def notional(self) -> Decimal:
        return mul(self.price, self.amount)


def price_violation(side: Side, price: Decimal, f: MarketFilters, ref: Decimal | None) -> str:
    """Why a limit ``price`` (on the tick) breaks the price filters, or "" if it does not.
    The percent-price band is checked only against a known reference (``ref``: the
    venue's average price, or our best estimate of it)."""
    if f.min_price is not None and price < f.min_price:
        return "below_min_price"
    if f.max_price is not None and price > f.max_price:
        return "above_max_price"
    if f.percent_price is not None and ref is not None:
        low, high = f.percent_price.band(side, ref)
        if price < low or price > high:
            return "price_out_of_band"
    return ""


def max_amount(price: Decimal, f: MarketFilters, market: bool) -> tuple[Decimal, str] | None:
    """The largest on-grid amount the venue's maxima allow at ``price`` and the reason
    that limit gives; None without maxima."""
    step = market_step(f) if market else f.step_size
    best: tuple[Decimal, str] | None = None
    max_qty = min_known(f.max_qty, f.market_max_qty) if market else f.max_qty
    if max_qty is not None:
        best = (times(units(max_qty, step, ROUND_FLOOR), step), "above_max_qty")
    max_notional = f.market_max_notional if market else f.max_notional
    if max_notional is not None and price > 0:
        by_cost = times(units(max_notional, mul(step, price), ROUND_FLOOR), step)
        if best is None or by_cost < best[0]:
            best = (by_cost, "above_max_notional")
    return best


def market_step(f: MarketFilters) -> Decimal:
    """The grid of a market order's amount (MARKET_LOT_SIZE's, else LOT_SIZE's)."""
    return f.market_step_size if f.market_step_size is not None else f.step_size


def market_min_notional(f: MarketFilters) -> Decimal:
    return f.min_notional if f.market_min_notional is None else f.market_min_notional


def min_known(*values: Decimal | None) -> Decimal | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def preflight(
    side: Side,
    price: Number | None,
    amount: Number,
    filters: MarketFilters,
    budget: Number | None = None,
    *,
    ref_price: Number | None = None,
) -> PreflightResult:
    """Quantize an order and check it against every filter of the market.

    ``price`` None is a market order, checked at ``ref_price`` (required then); for a
    limit order ``ref_price`` is the average price the percent-price band is drawn around
    (unchecked without it). A buy below min_notional / min_qty is bumped up to the
    smallest valid amount when the budget (quote currency) allows; the notional never
    exceeds the budget. A sell is never bumped (we cannot sell what we do not hold): it
    fails with a reason, and the caller records the remainder as dust. An amount above
    the venue's max quantity or max notional is capped to it, on either side, when the
    capped amount still meets the minimums: a capped sell is a partial exit, which the
    exit ladder completes like a partial fill, and a capped buy spends less than planned.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    ref = to_decimal(ref_price, "ref_price") if ref_price is not None else None
    if price is None:
        if ref is None:
            raise ValueError("a market order's preflight needs ref_price")
        return _preflight_market(amount, filters, ref)
    p = q_price(price, filters.tick_size)
    a = q_amount(amount, filters.step_size)
    if p <= 0:
        return PreflightResult(False, p, a, "price_below_tick")
    violation = price_violation(side, p, filters, ref)
    if violation:
        return PreflightResult(False, p, a, violation)
    cap = to_decimal(budget, "budget") if budget is not None else None
    limit = max_amount(p, filters, market=False)
    capped = limit is not None and a > limit[0]
    if limit is not None and capped:
        a = limit[0]
    if cap is not None and mul(a, p) > cap:
        a = times(units(cap, mul(filters.step_size, p), ROUND_FLOOR), filters.step_size)
    needed = _min_amount(p, filters)
    bumped = False
    if a < needed:
        if limit is not None and needed > limit[0]:
            return PreflightResult(False, p, a, limit[1])
        if side == "sell":
            reason = "below_min_qty" if a < filters.min_qty else "below_min_notional"
            return PreflightResult(False, p, a, reason)
        if cap is not None and mul(needed, p) > cap:
            return PreflightResult(False, p, a, "min_notional_exceeds_budget")
        a, bumped = needed, True
    if a <= 0:
        return PreflightResult(False, p, a, "amount_below_step")
    return PreflightResult(True, p, a, "", bumped, capped)


def _preflight_market(amount: Number, f: MarketFilters, ref: Decimal) -> PreflightResult:
    """A market order (a sell: the engine never sends market buys), never bumped."""
    a = q_amount(amount, market_step(f))
    if ref <= 0:
        return PreflightResult(False, ref, a, "no_reference_price")
    limit = max_amount(ref, f, market=True)
    capped = limit is not None and a > limit[0]
    if limit is not None and capped:
        a = limit[0]
    min_qty = max(f.min_qty, f.market_min_qty or ZERO)
    if a <= 0:
        return PreflightResult(False, ref, a, "amount_below_step")
    if a < min_qty:
        return PreflightResult(False, ref, a, limit[1] if capped and limit else "below_min_qty")
    if mul(a, ref) < market_min_notional(f):
        reason = limit[1] if capped and limit else "below_min_notional"
        return PreflightResult(False, ref, a, reason)
    return PreflightResult(True, ref, a, "", False, capped)


def _min_amount(price: Decimal, f: MarketFilters) -> Decimal:
    """Smallest on-grid amount meeting min_qty and min_notional at ``price``."""
    step = f.step_size
    by_notional = (
        times(units(f.min_notional, mul(step, price), ROUND_CEILING), step)
        if f.min_notional > 0
        else ZERO
    )
    by_qty = ceil_to(f.min_qty, step) if f.min_qty > 0 else step
    return max(by_notional, by_qty, step)


def can_afford(price: Number, filters: MarketFilters, budget: Number) -> bool:
    """Whether the smallest valid buy at ``price`` fits in ``budget`` (the entry guard)."""
    p = q_price(price, filters.tick_size)
    if p <= 0:
        return False
    return mul(_min_amount(p, filters), p) <= to_decimal(budget, "budget")
