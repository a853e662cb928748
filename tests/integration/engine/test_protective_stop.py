"""The protective stop on the Binance profile, in the real engine on the simulated
exchange: placed after the entry for what is held at the stop-loss, moved up with a
trailing stop (the old one cancelled first, never two resting), cancelled before the exit
ladder sells, and a stop that sold the position is a trade with exit reason
``protective_stop``; off, nothing changes."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any

from fsmtrader.drive import step
from fsmtrader.exchange.types import OrderInfo
from fsmtrader_testing.harness import BTC, MIN, Harness, settings

D = Decimal
SYM = "BTC/USDT"


def harness(**exit_: Any) -> Harness:
    s = settings(
        market={"symbols": [SYM]},
        protect={"enabled": True, "limit_offset_bps": 100, "min_move_bps": 25},
        exit={"take_profit_pct": 10, **exit_},
    )
    return Harness(s, {SYM: BTC})


def bar(h: Harness, close: float, low: float | None = None) -> None:
    """One bar whose low may reach below its close (a wick)."""
    h.ts += MIN
    lo = close if low is None else low
    step(h.engine, h.exchange, h.ts, SYM, max(close, lo), lo, close, 1e6, None, h.clock.set)


def resting_stops(h: Harness) -> list[OrderInfo]:
    return [o for o in h.exchange.fetch_open_orders(SYM) if o.stop_price is not None]


def enter(h: Harness) -> None:
    h.warm(SYM, 50_000.0)
    h.bar(SYM, 48_400.0)
    assert h.phase(SYM) == "POSITION"


def test_the_stop_rests_after_the_entry_at_the_stop_loss_for_what_is_held() -> None:
    h = harness()
    enter(h)
    pos = h.engine.portfolio.positions[SYM]
    [stop] = resting_stops(h)
    expect = (pos.avg_entry * D("0.97")).quantize(D("0.01"), rounding="ROUND_FLOOR")
    assert stop.stop_price == expect
    assert stop.price == (expect * D("0.99")).quantize(D("0.01"), rounding="ROUND_FLOOR")
    assert stop.amount == pos.qty and stop.side == "sell" and stop.time_in_force == "GTC"
    assert h.exchange.fetch_balance()["BTC"].used == pos.qty  # the venue locks it
    assert pos.sell_locked == pos.qty and pos.sellable == 0
    assert h.engine.portfolio.reserved == {}  # nothing reserved in quote for a sell
    [placed] = h.orders(state="SENT", side="sell")
    assert placed["decision_id"] == pos.decision_id  # every order of the trade carries it
    assert placed["intent_id"] != h.orders(side="buy")[0]["intent_id"]
    new = h.orders(state="NEW", client_order_id=stop.client_order_id)
    assert [r.get("stop_price") for r in new] == [str(expect)]
    assert placed["client_order_id"] == stop.client_order_id


def test_a_rising_trailing_stop_replaces_the_order_never_two_resting() -> None:
    h = harness(trailing_activation_pct=1.0, trailing_distance_pct=0.5)
    enter(h)
    [first] = resting_stops(h)
    prices = [49_000.0, 49_200.0, 49_210.0, 49_400.0, 49_600.0]
    seen = [first.stop_price]
    for p in prices:
        bar(h, p)
        live = resting_stops(h)
        assert len(live) == 1  # never two
        if live[0].stop_price != seen[-1]:
            seen.append(live[0].stop_price)
    assert h.phase(SYM) == "POSITION"
    # armed at 49,200 (> +1 %): the stop follows 0.5 % under the peak, in steps >= 25 bps
    assert seen[-1] == D("49352.00")  # 49,600 * 0.995, floored
    assert all(b >= a * D("1.0025") for a, b in pairwise(seen))
    old = [o for o in h.exchange.all_orders() if o.stop_price is not None][:-1]
    assert old and all(o.status == "canceled" for o in old)


def test_the_stop_is_cancelled_before_the_ladder_sells() -> None:
    h = harness()
    enter(h)
    [stop] = resting_stops(h)
    h.engine.force_exit(SYM)
    assert h.phase(SYM) == "COOLDOWN"
    assert h.exchange.fetch_order(stop.id, SYM).status == "canceled"
    trade = h.engine.portfolio.trades[-1]
    assert trade.exit_reason == "force_exit" and trade.sold_qty == trade.bought_qty
    sells = [o for o in h.exchange.all_orders() if o.side == "sell"]
    assert [o.stop_price is not None for o in sells] == [True, False]
    # the cancel settled before the sell was sent
    events = [(r["client_order_id"], r["state"]) for r in h.orders(side="sell")]
    cancelled_at = events.index((stop.client_order_id, "CANCELED"))
    ladder = sells[1].client_order_id
    assert cancelled_at < events.index((ladder, "NEW"))


def test_a_wick_through_the_stop_sells_the_position_and_records_the_trade() -> None:
    h = harness()
    enter(h)
    pos = h.engine.portfolio.positions[SYM]
    entry_qty = pos.qty
    [stop] = resting_stops(h)
    assert stop.stop_price is not None
    bar(h, 48_300.0, low=float(stop.stop_price) - 10)  # the close stays above the stop-loss
    assert h.phase(SYM) == "COOLDOWN"
    trade = h.engine.portfolio.trades[-1]
    assert trade.exit_reason == "protective_stop"
    assert trade.sold_qty == entry_qty and trade.sell_fees > 0
    filled = h.exchange.fetch_order(stop.id, SYM)
    assert filled.status == "closed"
    assert trade.sell_fees == filled.fee  # every fee of the leg in the trade
    assert SYM not in h.engine.portfolio.positions
    assert h.exchange.fetch_balance()["BTC"].total == 0
    assert h.engine.portfolio.check() is None


def test_off_places_no_stop() -> None:
    h = Harness(settings(market={"symbols": [SYM]}), {SYM: BTC})
    enter(h)
    assert resting_stops(h) == []
    assert h.engine.portfolio.positions[SYM].sell_locked == 0


def test_a_stop_a_wick_filled_between_two_polls_is_found_within_a_minute() -> None:
    """Live, a bar is one polled ticker (high = low = close): the venue can trade through
    the stop between two polls while every tick the bot sees is above it. The resting stop
    is asked about at least once a minute, so the books learn of the sale."""
    h = harness()
    enter(h)
    [stop] = resting_stops(h)
    wick = float(stop.stop_price) * 0.995
    # the venue's own trades between two polls: through the stop and back
    h.exchange.update_market(SYM, h.ts + MIN // 2, 48_400.0, 48_400.0, wick, 1e6)
    assert h.exchange.fetch_order(stop.id, SYM).status == "closed"
    bar(h, 48_400.0)  # a flat tick above the stop: asked about only once a minute is up
    assert h.phase(SYM) == "POSITION"
    bar(h, 48_400.0)
    assert h.phase(SYM) == "COOLDOWN"
    [trade] = h.engine.portfolio.trades
    assert trade.exit_reason == "protective_stop"
    assert SYM not in h.engine.portfolio.positions or h.engine.portfolio.positions[SYM].qty == 0
