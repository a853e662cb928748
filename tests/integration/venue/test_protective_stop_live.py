"""The protective stop through the live path: the whole engine trading through our ccxt
adapter against the local Binance server (real ccxt, real HTTP). The stop rests on the
venue after the entry at the stop-loss for what is held, rises with a trailing stop (the
old one cancelled first, never two resting), is cancelled before the exit ladder sells;
a stop the venue filled while the bot was down is found and booked on restart, and
reconcile finds no orphan."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.config import Settings
from fsmtrader.live import LiveSession

from simserver_support import Sim, live_settings, running_server

pytestmark = pytest.mark.timeout(180)
BTC = "BTC/USDT"
D = Decimal
START = D("90000")


def protected(sim: Sim, **exit_: Any) -> Settings:
    """The protective stop on, a take-profit far enough for the stop to move first."""
    return live_settings(
        sim,
        exit={"take_profit_pct": 2.0, **exit_},
        protect={"enabled": True, "limit_offset_bps": 100, "min_move_bps": 25},
    )


@pytest.fixture
def bsim() -> Iterator[Sim]:
    with running_server("binance") as sim:
        sim.price(BTC, START, hold=True)
        yield sim


def stops(sim: Sim, status: str | None = None) -> list[dict[str, Any]]:
    return [
        o
        for o in sim.state()["orders"].values()
        if o["type"] == "STOP_LOSS_LIMIT" and (status is None or o["status"] == status)
    ]


def run(sim: Sim, s: Settings, state: Path, path: list[str], seconds: float) -> LiveSession:
    """A live session while a thread plays ``path`` (factors of START, 3 s each), noting
    how many stops rest on the venue at each step. The session is returned open."""
    session = LiveSession(s, state, paper=False)
    done = threading.Event()
    resting: list[int] = []

    def steer() -> None:
        for factor in ["1", *path]:
            sim.price(BTC, START * D(factor), hold=True)
            for _ in range(6):
                if done.wait(0.5):
                    return
                resting.append(len(stops(sim, "open")))

    driver = threading.Thread(target=steer, daemon=True)
    try:
        assert session.start().ok
        driver.start()
        session.run(stop_after_s=seconds)
    except BaseException:
        session.close()
        raise
    finally:
        done.set()
        driver.join(5)
    session.resting_seen = resting  # type: ignore[attr-defined]
    return session


def floor(x: Decimal) -> Decimal:
    return x.quantize(D("0.01"), rounding=ROUND_FLOOR)


def test_the_stop_rests_and_a_fill_while_the_bot_is_down_is_booked_on_restart(
    bsim: Sim, tmp_path: Path
) -> None:
    s = protected(bsim)
    session = run(bsim, s, tmp_path / "st", ["0.98"], seconds=5)
    try:
        pos = session.engine.portfolio.positions[BTC]
        qty, stop_px = pos.qty, floor(pos.avg_entry * D("0.95"))
        assert session.engine.states[BTC].phase.value == "POSITION"
    finally:
        session.close()
    [resting] = stops(bsim, "open")
    assert D(resting["amount"]) == qty and D(resting["price"]) == floor(stop_px * D("0.99"))
    # The bot is down; the market falls through the stop and the venue sells.
    px = floor(stop_px * D("0.997"))
    bsim.price(BTC, px, low=px, hold=True)
    [filled] = stops(bsim, "closed")
    assert D(filled["filled"]) == qty

    again = LiveSession(s, tmp_path / "st", paper=False)
    try:
        report = again.start()
        assert report.ok and again.restored, report.to_dict()
        assert not report.orphaned_orders and not report.missing_orders
        [trade] = again.engine.portfolio.trades
        assert trade.exit_reason == "protective_stop" and trade.sold_qty == qty
        assert trade.sell_fees == D(filled["fee"]) and trade.sell_fees > 0
        assert BTC not in again.engine.portfolio.positions
        assert again.engine.states[BTC].phase.value == "COOLDOWN"
    finally:
        again.close()


def test_a_trailing_stop_is_moved_up_and_cancelled_before_the_ladder_sells(
    bsim: Sim, tmp_path: Path
) -> None:
    s = protected(bsim, trailing_activation_pct=0.5, trailing_distance_pct=0.3)
    path = ["0.98", "0.986", "0.992", "1.0045"]  # buy, trail armed, higher, take-profit
    session = run(bsim, s, tmp_path / "st", path, seconds=15)
    try:
        [trade] = session.engine.portfolio.trades
        assert trade.exit_reason == "take_profit"
        resting_seen = session.resting_seen  # type: ignore[attr-defined]
    finally:
        session.close()
    assert max(resting_seen) == 1  # never two stops resting at once
    placed = stops(bsim)
    assert len(placed) >= 3  # the first, then moved up at least twice
    assert all(o["status"] == "canceled" for o in placed)
    prices = [D(o["price"]) for o in sorted(placed, key=lambda o: o["timestamp"])]
    assert prices == sorted(prices) and prices[0] < prices[-1]
    sells = [o for o in bsim.state()["orders"].values() if o["side"] == "sell"]
    ladder = [o for o in sells if o["type"] == "LIMIT" and o["status"] == "closed"]
    assert ladder and min(o["timestamp"] for o in ladder) >= max(o["timestamp"] for o in placed)
