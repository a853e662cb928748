"""The kill switch and a loss breaker through the live path: a LiveSession placing real
(ccxt) orders on the local Binance-flavour sim-server. ``flatten`` in the STOP file exits
the held position as limit orders on the venue (never a market order), the losing exit
crosses max_consecutive_losses, and removing the file lifts the file's stop but not the
breaker's halt."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.fsm.phases import Phase
from fsmtrader.live import LiveSession
from fsmtrader.rollout.kill_switch import STOP_FILE
from fsmtrader_testing.steer import run_steered

from simserver_support import Sim, live_settings, running_server

pytestmark = pytest.mark.timeout(120)
SYM = "BTC/USDT"


@pytest.fixture
def bsim() -> Iterator[Sim]:
    with running_server("binance") as sim:
        yield sim


def until(cond: Callable[[], bool], what: str, limit_s: float = 15) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_flatten_and_a_breaker_through_ccxt_on_local_binance(bsim: Sim, tmp_path: Path) -> None:
    s = live_settings(
        bsim,
        exit={"take_profit_pct": 5.0},
        breakers={"max_daily_loss": 0, "max_drawdown_pct": 0, "max_consecutive_losses": 1},
    )
    start = Decimal(str(bsim.state()["prices"].get(SYM) or "90000"))
    bsim.price(SYM, start, hold=True)
    state = tmp_path / "st"
    session = LiveSession(s, state, paper=False)
    stop = state / STOP_FILE
    engine = session.engine

    def script() -> None:
        time.sleep(0.5)
        bsim.price(SYM, start * Decimal("0.98"), hold=True)  # a drop: the bot buys
        until(lambda: engine.states[SYM].phase is Phase.POSITION, "a held position")
        stop.write_text("flatten\n")
        until(lambda: bool(engine.portfolio.trades), "the forced exit")
        until(lambda: engine.halted.startswith("breaker: "), "the breaker's halt")
        stop.unlink()
        until(lambda: engine.entries_stopped == "", "the kill switch's lift")
        time.sleep(0.3)

    try:
        report = session.start()
        assert report.ok, report.to_dict()
        run_steered(session, script, limit_s=40)
        halted = engine.halted
    finally:
        session.close()

    (trade,) = engine.portfolio.trades
    assert trade.exit_reason == "force_exit" and trade.realized_pnl < 0
    assert halted == "breaker: 1 losing trades in a row >= max_consecutive_losses 1"
    ours = [o for cid, o in bsim.state()["orders"].items() if cid.startswith("fsm")]
    sells = [o for o in ours if o["side"] == "sell"]
    assert sells and all(o["type"] == "LIMIT" for o in sells), sells
    records = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    kinds: list[Any] = [
        (r["kind"], r["action"]) for r in records if r["kind"] in ("kill_switch", "breaker")
    ]
    assert kinds == [
        ("kill_switch", "stop"),
        ("kill_switch", "flatten"),
        ("breaker", "halt"),
        ("kill_switch", "lift"),
    ]
