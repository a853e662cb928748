"""The simulator's order validation: Binance's filters, in Binance's order, as a pure
function of the market, the order and this bar's book.

Every filter ``MarketFilters`` holds is enforced here, so an order the pre-flight
(``markets.preflight``) should have refused is refused by the simulator too, with a
reason the router books as a ghost. The venue's average price (percent-price, and the
notional of a market order) is the last bar's price: ``Book.mid``. This runs once per
order on the backtest's hot path: a market without the optional limits pays for none.
"""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.errors import InvalidOrder
from fsmtrader.exchange.simulated.book import Book
from fsmtrader.exchange.simulated.params import ZERO
from fsmtrader.exchange.types import OrderType, TimeInForce
from fsmtrader.markets import MarketFilters, Side, market_min_notional, mul, on_grid


def validate(
    m: MarketFilters,
    side: Side,
    order_type: OrderType,
    amount: Decimal,
    price: Decimal | None,
    time_in_force: TimeInForce,
    book: Book,
) -> Decimal:
    """Filter checks in Binance's order; returns the limit price (0 for market)."""
    _check_shape(side, order_type, amount, price, time_in_force)
    if price is not None:
        _check_price(m, side, price, book.mid)
        _check_limit_amount(m, amount, price)
        return price
    _check_market_amount(m, amount, book.mid)
    return ZERO


def _check_shape(
    side: Side,
    order_type: OrderType,
    amount: Decimal,
    price: Decimal | None,
    time_in_force: TimeInForce,
) -> None:
    if side not in ("buy", "sell"):
        raise InvalidOrder(f"bad side {side!r}", reason="side")
    if order_type not in ("limit", "market"):
        raise InvalidOrder(f"bad order type {order_type!r}", reason="order_type")
    if time_in_force not in ("IOC", "GTC"):
        raise InvalidOrder(f"bad time in force {time_in_force!r}", reason="time_in_force")
    if order_type == "market":
        if price is not None:
            raise InvalidOrder("a market order takes no price", reason="price")
        if side == "buy":
            raise InvalidOrder("market buys are not supported", reason="market_buy")
    elif not isinstance(price, Decimal) or not price.is_finite():
        raise InvalidOrder("a limit order needs a Decimal price", reason="price")
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InvalidOrder(f"amount must be a positive Decimal, got {amount!r}", "amount")


def _check_price(m: MarketFilters, side: Side, price: Decimal, avg: Decimal) -> None:
    """PRICE_FILTER, then PERCENT_PRICE(_BY_SIDE) around the average price."""
    if price <= 0 or not on_grid(price, m.tick_size, "price"):
        raise InvalidOrder(f"price {price} not on tick {m.tick_size}", reason="tick")
    if m.min_price is not None and price < m.min_price:
        raise InvalidOrder(f"price {price} < min price {m.min_price}", reason="min_price")
    if m.max_price is not None and price > m.max_price:
        raise InvalidOrder(f"price {price} > max price {m.max_price}", reason="max_price")
    if m.percent_price is not None:
        low, high = m.percent_price.band(side, avg)
        if price < low or price > high:
            raise InvalidOrder(
                f"price {price} outside {low}..{high} around average {avg}",
                reason="percent_price",
            )


def _check_limit_amount(m: MarketFilters, amount: Decimal, price: Decimal) -> None:
    """LOT_SIZE, then (MIN_)NOTIONAL at the limit price."""
    if not on_grid(amount, m.step_size, "amount"):
        raise InvalidOrder(f"amount {amount} not on step {m.step_size}", reason="step")
    if amount < m.min_qty:
        raise InvalidOrder(f"amount {amount} < min qty {m.min_qty}", reason="min_qty")
    if m.max_qty is not None and amount > m.max_qty:
        raise InvalidOrder(f"amount {amount} > max qty {m.max_qty}", reason="max_qty")
    notional = mul(price, amount)
    if notional < m.min_notional:
        raise InvalidOrder(
            f"notional {notional} < min notional {m.min_notional}", reason="min_notional"
        )
    if m.max_notional is not None and notional > m.max_notional:
        raise InvalidOrder(
            f"notional {notional} > max notional {m.max_notional}", reason="max_notional"
        )


def _check_market_amount(m: MarketFilters, amount: Decimal, avg: Decimal) -> None:
    """LOT_SIZE's minimum and maximum, MARKET_LOT_SIZE (its step replaces LOT_SIZE's
    when it states one), then the notional limits that apply to market orders, at the
    average price."""
    step = m.market_step_size
    if not on_grid(amount, m.step_size if step is None else step, "amount"):
        reason = "step" if step is None else "market_lot_size"
        raise InvalidOrder(f"amount {amount} off the market order grid", reason=reason)
    if amount < m.min_qty:
        raise InvalidOrder(f"amount {amount} < min qty {m.min_qty}", reason="min_qty")
    if m.max_qty is not None and amount > m.max_qty:
        raise InvalidOrder(f"amount {amount} > max qty {m.max_qty}", reason="max_qty")
    low, high = m.market_min_qty, m.market_max_qty
    if (low is not None and amount < low) or (high is not None and amount > high):
        raise InvalidOrder(
            f"amount {amount} outside market lot {low}..{high}", reason="market_lot_size"
        )
    notional = mul(avg, amount)
    minimum = market_min_notional(m)
    if notional < minimum:
        raise InvalidOrder(f"notional {notional} < min notional {minimum}", reason="min_notional")
    maximum = m.market_max_notional
    if maximum is not None and notional > maximum:
        raise InvalidOrder(f"notional {notional} > max notional {maximum}", reason="max_notional")


def validate_stop(
    m: MarketFilters,
    supported: bool,
    side: Side,
    order_type: OrderType,
    time_in_force: TimeInForce,
    stop_price: Decimal,
    book: Book,
) -> None:
    """A STOP_LOSS_LIMIT sell as Binance checks it: the venue has stop orders, a limit
    GTC sell, a stop on the tick, and a stop below the last price (one at or above it
    would trigger at once: Binance -2010 "Order would trigger immediately.")."""
    if not supported:
        raise InvalidOrder("stop orders are not supported on this venue", reason="order_type")
    if side != "sell" or order_type != "limit" or time_in_force != "GTC":
        raise InvalidOrder("a stop-limit order must be a limit GTC sell", reason="order_type")
    if not isinstance(stop_price, Decimal) or not stop_price.is_finite() or stop_price <= 0:
        raise InvalidOrder(f"bad stop price {stop_price!r}", reason="price")
    if not on_grid(stop_price, m.tick_size, "price"):
        raise InvalidOrder(f"stop price {stop_price} not on tick {m.tick_size}", reason="tick")
    if stop_price >= book.mid:
        raise InvalidOrder(
            f"stop {stop_price} at or above the last price {book.mid}: would trigger immediately",
            reason="would_trigger",
        )
