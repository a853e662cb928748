"""The verdicts of scenarios A-C: pure functions of what a run left behind (the exchange's
own orders and fills, the books, the audit records). Each returns the list of what went
wrong (empty: passed) and fills in the figures that decide it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from fsmtrader.exchange.types import OrderInfo, TradeInfo
from fsmtrader.markets import MarketFilters, on_grid, q_price
from fsmtrader.portfolio import ClosedTrade, Position
from fsmtrader.smoke.verify import base_received, fee_in_quote

ZERO = Decimal(0)
BPS = Decimal(10_000)
Figures = dict[str, Any]
Record = Mapping[str, Any]  # a published record, read as plain data


def blocked_reasons(records: Sequence[Record]) -> list[str]:
    """Why entries or sells were refused (guards, ghosts, a blocked sell)."""
    events = ("GUARDS_BLOCKED", "BUY_ABORTED", "SELL_BLOCKED")
    return [
        f"{r['event']}: {r.get('reason', '')}"
        for r in records
        if r["kind"] == "phase" and r.get("event") in events
    ]


def judge_bump(
    f: MarketFilters,
    new: Record | None,
    reserved: Record | None,
    placed: Sequence[OrderInfo],
    pos: Position | None,
    refusals: Sequence[str],
    budget: Decimal,
    fig: Figures,
) -> list[str]:
    """A: the entry asked for less than min_notional, was bumped to it, and that order
    reached the exchange on the tick/step grid and at least min_notional."""
    fig.update(min_notional=f.min_notional, tick_size=f.tick_size, step_size=f.step_size)
    fig["budget"] = budget
    if new is None:
        why = "; ".join(refusals) or "no entry signal acted on"
        if budget < f.min_notional:
            why += f" (the budget, {budget} {f.quote}, cannot reach min_notional {f.min_notional})"
        return [f"no buy intent: {why}"]
    requested = Decimal(str(new["amount"])) * Decimal(str(new.get("limit_price") or 0))
    fig.update(requested_amount=new["amount"], requested_notional=requested)
    failures: list[str] = []
    if requested >= f.min_notional:
        failures.append(f"premise: the entry asked for {requested} >= min_notional")
    if reserved is None or "bumped_to_min_notional" not in str(reserved.get("reason", "")):
        why = "; ".join(refusals) or (reserved or {}).get("reason", "not reserved")
        return [*failures, f"not bumped to min_notional: {why}"]
    if not placed:
        return [*failures, "the bumped order never reached the exchange"]
    o = placed[0]
    notional = o.price * o.amount if o.price is not None else ZERO
    fig.update(
        order_price=o.price,
        order_amount=o.amount,
        bumped_notional=notional,
        price_on_tick_grid=o.price is not None and on_grid(o.price, f.tick_size),
        amount_on_step_grid=on_grid(o.amount, f.step_size),
        order_status=o.status,
        order_filled=o.filled,
    )
    if not fig["price_on_tick_grid"]:
        failures.append(f"price {o.price} is off the tick {f.tick_size}")
    if not fig["amount_on_step_grid"]:
        failures.append(f"amount {o.amount} is off the step {f.step_size}")
    if notional < f.min_notional:
        failures.append(f"placed notional {notional} < min_notional {f.min_notional}")
    if len(placed) > 1:
        failures.append(f"{len(placed)} exchange orders for one bumped entry")
    if pos is None:
        failures.append(f"no position after the fill ({o.status}, filled {o.filled})")
    else:
        fig.update(position_qty=pos.qty, position_cost=pos.buy_cost)
    return failures


def judge_partials(
    f: MarketFilters,
    buys: Sequence[TradeInfo],
    orders: Sequence[OrderInfo],
    pos: Position | None,
    refusals: Sequence[str],
    fig: Figures,
) -> list[str]:
    """B: the entry filled in parts at several prices; the position is the exchange's
    fills to the last digit: quantity, weighted average (exact Decimal: Σ price·qty / Σ
    qty, the qty net of a fee the venue takes in the base asset) and fees."""
    partial = [o for o in orders if ZERO < o.filled < o.amount]
    fig.update(
        fills=len(buys),
        fill_prices=sorted({t.price for t in buys}),
        buy_orders=len(orders),
        partially_filled_orders=len(partial),
    )
    if pos is None:
        return [f"no position: {'; '.join(refusals) or 'the entry filled nothing'}"]
    gross = sum((t.amount for t in buys), ZERO)
    held = sum((base_received(t, f) for t in buys), ZERO)  # net of a fee in the base asset
    cost = sum((t.price * t.amount for t in buys), ZERO)
    fees = sum((fee_in_quote(t, f) for t in buys), ZERO)
    per_unit = cost / held if held else ZERO  # what the books call the average entry
    fig.update(
        sum_fill_qty=gross,
        sum_qty_received=held,
        position_qty=pos.qty,
        position_bought_qty=pos.bought_qty,
        weighted_avg_price=cost / gross if gross else ZERO,
        cost_per_unit_received=per_unit,
        position_avg_entry=pos.avg_entry,
        sum_fill_fees=fees,
        position_fees=pos.buy_fees,
    )
    failures = []
    if len(buys) < 2 or len(fig["fill_prices"]) < 2:
        failures.append(
            f"the thin book was not walked: {len(buys)} fill(s) at "
            f"{len(fig['fill_prices'])} price(s)"
        )
    if not partial:
        failures.append("no order was partially filled")
    for what, ours, theirs in (
        ("bought qty", pos.bought_qty, held),
        ("held qty", pos.qty, held),
        ("average entry", pos.avg_entry, per_unit),
        ("buy fees", pos.buy_fees, fees),
    ):
        if ours != theirs:
            failures.append(f"{what} {ours} != exchange fills {theirs}")
    return failures


def ladder_price(ref: Decimal, bps: Decimal, tick: Decimal) -> Decimal:
    """Where rung ``bps`` sells: below the reference bid, floored to the tick."""
    return q_price(ref * (1 - bps / BPS), tick)


def judge_ladder(
    f: MarketFilters,
    ladder: Sequence[Decimal],
    never_market_sells: bool,
    exhausted: int,
    sells: Sequence[OrderInfo],
    intents: Mapping[str, Record],
    trade: ClosedTrade | None,
    buy_fills: Sequence[TradeInfo],
    sell_fills: Sequence[TradeInfo],
    fig: Figures,
) -> list[str]:
    """C: every sell is a limit IOC at its rung's price below the bid, the rungs of an
    exit attempt step down, no market order is ever sent, and the setting that forbids
    them is on (with it off, the engine would market-sell past the ladder). ``exhausted``
    counts the attempts that reached the ladder's end and waited: without one, the path
    that must not market-sell was never taken."""
    failures = []
    fig.update(never_market_sells=never_market_sells, exit_ladder_bps=[float(b) for b in ladder])
    if not never_market_sells:
        failures.append(
            "exit.never_market_sells = false: past the ladder the engine sends a market sell"
        )
    market = [o for o in sells if o.order_type != "limit"]
    not_ioc = [o for o in sells if o.order_type == "limit" and o.time_in_force != "IOC"]
    fig.update(sell_orders=len(sells), market_orders=len(market))
    if market:
        failures.append(f"{len(market)} market sell order(s) sent")
    if not_ioc:
        failures.append(f"{len(not_ioc)} limit sell(s) not IOC")
    attempts = _attempts(sells, intents)
    fig["attempts"] = [[str(o.price) for o in a] for a in attempts]
    for o in sells:
        rec = intents.get(o.client_order_id)
        if o.price is None or rec is None:
            continue
        rung = _rung(rec)
        if rung is not None and rung < len(ladder):
            want = ladder_price(Decimal(str(rec["ref_price"])), ladder[rung], f.tick_size)
            if o.price != want:
                failures.append(f"{o.client_order_id}: rung {rung} at {o.price}, not {want}")
    for a in attempts:
        prices = [o.price for o in a if o.price is not None]
        if prices != sorted(prices, reverse=True):
            failures.append(f"an exit attempt did not step down: {prices}")
    if not any(len(a) >= 2 and a[0].price != a[-1].price for a in attempts):
        failures.append("no exit attempt stepped down the ladder (fewer than two sell legs)")
    failures += _sell_books(f, trade, buy_fills, sell_fills, fig)
    if not exhausted and not market and not failures:
        failures.append("the ladder was never exhausted: the no-market-sell path was not taken")
    return failures


def _rung(rec: Record) -> int | None:
    words = str(rec.get("reason", "")).split()
    if len(words) >= 2 and words[-2] == "rung" and words[-1].isdigit():
        return int(words[-1])
    return None


def _attempts(sells: Sequence[OrderInfo], intents: Mapping[str, Record]) -> list[list[OrderInfo]]:
    """The sells grouped by exit attempt: a new attempt starts again at rung 0."""
    out: list[list[OrderInfo]] = []
    for o in sorted(sells, key=lambda o: int(o.id)):
        rung = _rung(intents.get(o.client_order_id, {}))
        if not out or rung == 0:
            out.append([])
        out[-1].append(o)
    return out


def _sell_books(
    f: MarketFilters,
    trade: ClosedTrade | None,
    buys: Sequence[TradeInfo],
    sells: Sequence[TradeInfo],
    fig: Figures,
) -> list[str]:
    """Every leg's fee in the trade, and its PnL recomputed from the fills (to 1e-8)."""
    if trade is None:
        return ["the position was never closed"]
    fees = sum((fee_in_quote(t, f) for t in sells), ZERO)
    bought = sum((base_received(t, f) for t in buys), ZERO)
    sold = sum((t.amount for t in sells), ZERO)
    paid = (t.fee for t in buys if t.fee_currency == f.quote)
    basis = sum((t.price * t.amount for t in buys), ZERO) + sum(paid, ZERO)
    proceeds = sum((t.price * t.amount - fee_in_quote(t, f) for t in sells), ZERO)
    pnl = proceeds - (basis * sold / bought if bought else ZERO)
    fig.update(sell_legs=trade.sell_legs, sell_fees=trade.sell_fees, sum_sell_fill_fees=fees)
    fig.update(realized_pnl=trade.realized_pnl, recomputed_pnl=pnl, exit_reason=trade.exit_reason)
    failures = []
    if trade.sell_fees != fees:
        failures.append(f"sell fees {trade.sell_fees} != the exit legs' fills {fees}")
    if abs(trade.realized_pnl - pnl) > Decimal("1e-8"):
        failures.append(f"realised PnL {trade.realized_pnl} != recomputed from fills {pnl}")
    return failures
