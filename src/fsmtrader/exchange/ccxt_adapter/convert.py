"""ccxt's unified dicts -> our Decimal values: markets, orders, trades, balances, quotes.

Pure functions, no ccxt import and no I/O, so they are tested against the shared ccxt
fixtures directly. Where ccxt keeps the venue's raw answer (``info``), its strings are
preferred over ccxt's floats: they are exactly what the venue said.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, cast

from fsmtrader.exchange.ccxt_adapter.venues import CCXT_STATUS
from fsmtrader.exchange.types import (
    Balance,
    OrderInfo,
    OrderStatus,
    OrderType,
    Ticker,
    TimeInForce,
    TradeInfo,
)
from fsmtrader.markets import ZERO, Side, plain, to_decimal

Candle = tuple[int, float, float, float, float, float]

_ONE: Final = Decimal(1)


# --------------------------------------------------------------------------- numbers


def wire(value: Decimal) -> str:
    """A Decimal as a plain string (never ``1E-7``): what goes on the wire."""
    return format(value, "f")


def decimal_of(*candidates: Any) -> Decimal | None:
    """The first candidate that is a finite number (``markets.to_decimal``: strings, the
    venue's raw fields, verbatim; floats through their shortest repr), without trailing
    zeros. None, bools and anything unreadable are skipped."""
    for value in candidates:
        if value is None:
            continue
        try:
            return plain(to_decimal(value))
        except (InvalidOperation, ValueError):
            continue
    return None


def decimal_or_zero(*candidates: Any) -> Decimal:
    found = decimal_of(*candidates)
    return ZERO if found is None else found


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True, slots=True)
class OrderHint:
    """What we know about an order independently of the venue's answer: fills the gaps
    of terse answers (MEXC's create acknowledgement)."""

    symbol: str = ""
    side: Side | None = None
    amount: Decimal | None = None
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    client_order_id: str = ""
    order_type: OrderType | None = None
    order_id: str = ""


_NO_HINT: Final = OrderHint()


class IncompleteAnswer(ValueError):
    """The venue's answer lacks a field we cannot guess (side, amount)."""


def order_from_ccxt(
    order: Mapping[str, Any],
    hint: OrderHint | None = None,
    coid_of: Mapping[str, str] | None = None,
    statuses: Mapping[str, OrderStatus] = CCXT_STATUS,
) -> OrderInfo:
    """Convert a ccxt unified order to :class:`OrderInfo`. Trades are kept only when
    every one of them has an id the router can de-duplicate against ``fetch_my_trades``;
    otherwise they are left empty and the router reads my-trades itself. ``coid_of``
    (order id -> clientOrderId) fills in the clientOrderId of answers without one."""
    hint = hint or _NO_HINT
    info = as_dict(order.get("info"))
    order_id = str(order.get("id") or info.get("orderId") or hint.order_id or "")
    coid = _client_order_id(order, info, hint, (coid_of or {}).get(order_id, ""))
    symbol = str(order.get("symbol") or hint.symbol)
    side = _side(order.get("side") or hint.side, f"order {order_id}: no side in the answer")
    amount = decimal_of(info.get("origQty"), order.get("amount"), hint.amount)
    if amount is None:
        raise IncompleteAnswer(f"order {order_id}: no amount in the answer")
    raw_status = order.get("status")
    status: OrderStatus = statuses.get(str(raw_status).lower(), "open") if raw_status else "open"
    filled = decimal_or_zero(info.get("executedQty"), order.get("filled"))
    cost = _order_cost(order, info, filled)
    type_raw = str(order.get("type") or hint.order_type or "limit").lower()
    order_type: OrderType = "market" if type_raw == "market" else "limit"
    if order_type == "market":
        price = cost / filled if filled > 0 else ZERO
    else:
        price = decimal_or_zero(info.get("price"), order.get("price"), hint.price)
    tif_raw = str(order.get("timeInForce") or hint.time_in_force or "").upper()
    tif: TimeInForce = "IOC" if tif_raw in ("IOC", "FOK") or order_type == "market" else "GTC"
    timestamp = int(
        decimal_or_zero(order.get("timestamp"), info.get("transactTime"), info.get("time"))
    )
    trades = _order_trades(order, order_id, coid, symbol, side, timestamp)
    fee, fee_currency = _order_fee(order, trades)
    stop = decimal_of(order.get("triggerPrice"), info.get("stopPrice"))  # Binance: 0 = none
    return OrderInfo(
        id=order_id,
        client_order_id=coid,
        symbol=symbol,
        side=side,
        price=price,
        amount=amount,
        time_in_force=tif,
        status=status,
        timestamp=timestamp,
        filled=filled,
        cost=cost,
        fee=fee,
        fee_currency=fee_currency,
        trades=trades,
        order_type=order_type,
        stop_price=stop if stop else None,
    )


def _client_order_id(
    order: Mapping[str, Any], info: Mapping[str, Any], hint: OrderHint, remembered: str
) -> str:
    # Binance's cancel answer has the cancel request's own id in clientOrderId and the
    # order's in origClientOrderId.
    return str(
        info.get("origClientOrderId")
        or order.get("clientOrderId")
        or hint.client_order_id
        or remembered
    )


def _side(value: Any, missing: str) -> Side:
    side = str(value or "").lower()
    if side not in ("buy", "sell"):
        raise IncompleteAnswer(missing)
    return cast(Side, side)


def _order_cost(order: Mapping[str, Any], info: Mapping[str, Any], filled: Decimal) -> Decimal:
    cost = decimal_of(info.get("cummulativeQuoteQty"), order.get("cost"))
    if cost is None or cost < 0:  # Binance reports -1 for some archived orders
        avg = decimal_of(order.get("average"))
        cost = filled * avg if avg is not None else ZERO
    return cost


def _order_trades(
    order: Mapping[str, Any], order_id: str, coid: str, symbol: str, side: Side, timestamp: int
) -> list[TradeInfo]:
    raw_trades = order.get("trades") or []
    if not raw_trades or not all(isinstance(t, dict) and t.get("id") for t in raw_trades):
        return []
    return [
        trade_from_ccxt(
            t,
            order_id=order_id,
            client_order_id=coid,
            symbol=symbol,
            side=side,
            timestamp=timestamp,
        )
        for t in raw_trades
    ]


def _order_fee(order: Mapping[str, Any], trades: list[TradeInfo]) -> tuple[Decimal, str]:
    currencies = {t.fee_currency for t in trades if t.fee}
    if trades and len(currencies) <= 1:
        return sum((t.fee for t in trades), ZERO), next(iter(currencies), "")
    fee = as_dict(order.get("fee"))
    cost = decimal_of(fee.get("cost"))
    if cost is not None:
        return cost, str(fee.get("currency") or "")
    return ZERO, ""


def trade_from_ccxt(
    trade: Mapping[str, Any],
    *,
    order_id: str = "",
    client_order_id: str = "",
    symbol: str = "",
    side: Side | None = None,
    timestamp: int = 0,
    coid_of: Mapping[str, str] | None = None,
) -> TradeInfo:
    """Convert a ccxt unified trade (a my-trades row or a fill inside an order answer)."""
    info = as_dict(trade.get("info"))
    oid = str(trade.get("order") or info.get("orderId") or order_id or "")
    trade_side = _side(trade.get("side") or side, f"trade {trade.get('id')}: no side")
    fee = as_dict(trade.get("fee"))
    return TradeInfo(
        id=str(trade.get("id") or info.get("id") or info.get("tradeId") or ""),
        order_id=oid,
        client_order_id=client_order_id
        or str(info.get("clientOrderId") or "")
        or (coid_of or {}).get(oid, ""),
        symbol=str(trade.get("symbol") or symbol),
        side=trade_side,
        price=decimal_or_zero(info.get("price"), trade.get("price")),
        amount=decimal_or_zero(info.get("qty"), trade.get("amount")),
        fee=decimal_or_zero(info.get("commission"), fee.get("cost")),
        fee_currency=str(fee.get("currency") or info.get("commissionAsset") or ""),
        timestamp=int(decimal_or_zero(trade.get("timestamp"), info.get("time"), timestamp)),
        maker=trade.get("takerOrMaker") == "maker" or info.get("isMaker") is True,
    )


# --------------------------------------------------------------------------- account, data


def balances_from_ccxt(balance: Mapping[str, Any]) -> dict[str, Balance]:
    """Non-zero balances by unified currency code. Binance and MEXC both answer with
    ``balances: [{asset, free, locked}]`` strings, used when present."""
    out: dict[str, Balance] = {}
    free = as_dict(balance.get("free"))
    used = as_dict(balance.get("used"))
    raw_rows = as_dict(balance.get("info")).get("balances")
    raw: dict[str, tuple[Decimal, Decimal]] = {}
    if isinstance(raw_rows, list):
        for row in raw_rows:
            if isinstance(row, dict) and row.get("asset"):
                raw[str(row["asset"])] = (
                    decimal_or_zero(row.get("free")),
                    decimal_or_zero(row.get("locked")),
                )
    for code in set(free) | set(used):
        raw_free, raw_used = raw.get(code, (None, None))
        b = Balance(
            free=decimal_or_zero(raw_free, free.get(code)),
            used=decimal_or_zero(raw_used, used.get(code)),
        )
        if b.total != 0:
            out[code] = b
    return out


def ticker_touch(ticker: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """(bid, ask) of a 24h ticker (Binance/MEXC include the book top), None if absent."""
    info = as_dict(ticker.get("info"))
    return (
        decimal_of(info.get("bidPrice"), ticker.get("bid")),
        decimal_of(info.get("askPrice"), ticker.get("ask")),
    )


def ticker_from_ccxt(
    ticker: Mapping[str, Any], symbol: str, bid: Decimal, ask: Decimal, now_ms: int
) -> Ticker:
    """A :class:`Ticker` from a ccxt ticker and the touch (``bid``/``ask``, from the
    ticker itself or the book); ``now_ms`` stands in for a missing timestamp."""
    info = as_dict(ticker.get("info"))
    last = decimal_of(info.get("lastPrice"), ticker.get("last"), ticker.get("close"))
    ts = ticker.get("timestamp")
    return Ticker(
        symbol=symbol,
        timestamp=int(ts) if ts else now_ms,
        bid=bid,
        ask=ask,
        last=last or (bid + ask) / 2,
        volume=decimal_or_zero(info.get("volume"), ticker.get("baseVolume")),
    )


def book_top_from_ccxt(book: Mapping[str, Any]) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(bid, bid_qty, ask, ask_qty) of the best levels; zeros for an empty side."""
    bid, bid_qty = _best(book.get("bids"))
    ask, ask_qty = _best(book.get("asks"))
    return bid, bid_qty, ask, ask_qty


def _best(levels: Any) -> tuple[Decimal, Decimal]:
    if not levels:
        return ZERO, ZERO
    return decimal_or_zero(levels[0][0]), decimal_or_zero(levels[0][1])


def candles_from_ccxt(rows: Any) -> list[Candle]:
    """Candles as (ts_ms, open, high, low, close, volume); malformed rows are dropped.
    Floats: these feed indicators, not money arithmetic."""
    out: list[Candle] = []
    for r in rows or []:
        if isinstance(r, list | tuple) and len(r) >= 6 and None not in r[:6]:
            out.append((int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5])))
    return out
