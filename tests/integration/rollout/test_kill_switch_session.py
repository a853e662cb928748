"""The kill switch in a real durable paper session on a price path the test writes: a STOP
file there at the start stops entries before the first bar; with ``flatten`` a buy that
fills after the file appeared is exited as soon as it is held; removing the file lifts
only the stop the file made, never a person's."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

from fsmtrader.config.control_sections import TelegramSettings
from fsmtrader.control.desk import ControlDesk, ControlResult
from fsmtrader.control.reads import BookReader
from fsmtrader.control.telegram.messages import notification
from fsmtrader.fsm.phases import Phase
from fsmtrader.rollout.kill_switch import REASON, STOP_FILE
from fsmtrader_testing.harness import settings
from fsmtrader_testing.steer import run_steered
from fsmtrader_testing.steered_market import open_steered

SYM = "BTC/USDT"
OFF = {"max_daily_loss": 0, "max_drawdown_pct": 0, "max_consecutive_losses": 0}


def config() -> Any:
    return settings(
        seed=7,
        market={"symbols": [SYM]},
        entry={"drop_trigger_pct": 0.4, "anchor_window_min": 10},
        exit={
            "take_profit_pct": 5.0,
            "stop_loss_pct": 5.0,
            "trailing_activation_pct": 0,
            "max_hold_min": 600,
            "cooldown_s": 60,
        },
        router={"time_in_force": "GTC"},
        timeouts={"buy_fill_timeout_s": 600, "partial_fill_stuck_s": 500},
        breakers=OFF,
        sim={"depth_quote": "15"},  # a thin book: a 25 USDT buy fills in parts
    )


def audit(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]


def ask(desk: ControlDesk, action: str) -> ControlResult:
    return desk.submit(action, {}, who="test").result(timeout=10)


def until(cond: Any, what: str, limit_s: float = 10) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_flatten_exits_a_position_that_becomes_held_after_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # a dip (the GTC buy fills in part, the rest rests at its price), 4 minutes above it
    # (the rest unfilled: WAIT_FILL), then below (filled: POSITION)
    path = [1.0] * 12 + [0.99] + [0.995] * 4 + [0.985] * 20
    session = open_steered(config(), state, {SYM: path}, speed=600, lead_in=5)
    phase_when_written: list[Phase] = []

    def write_on_wait_fill() -> None:
        until(lambda: session.engine.states[SYM].phase is Phase.WAIT_FILL, "WAIT_FILL", 20)
        (state / STOP_FILE).write_text("flatten\n")
        phase_when_written.append(session.engine.states[SYM].phase)

    try:
        session.start()
        threading.Thread(target=write_on_wait_fill, daemon=True).start()
        session.run(stop_after_s=30)
        assert session.engine.entries_stopped == REASON
    finally:
        session.close()
    assert phase_when_written == [Phase.WAIT_FILL]

    records = audit(state)

    def first(kind: str, **match: str) -> dict[str, Any]:
        return next(
            r for r in records if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())
        )

    stop = first("kill_switch", action="stop")
    filled = first("phase", symbol=SYM, to="POSITION")
    flat = first("kill_switch", action="flatten", symbol=SYM)
    trade = first("trade", symbol=SYM)
    assert stop["command"] == "flatten"
    assert stop["audit_id"] < filled["audit_id"] < flat["audit_id"] < trade["audit_id"]
    assert trade["exit_reason"] == "force_exit"
    sells = [r for r in records if r["kind"] == "order" and r["side"] == "sell"]
    assert sells and all(r["limit_price"] is not None for r in sells if r["state"] == "NEW")
    # what an operator sees: the dashboard's and API's alerts, and the Telegram note
    alerts = BookReader(state / "fsmtrader.db", state).alerts(50)["records"]
    shown = [(r["kind"], r.get("action")) for r in alerts if r["kind"] == "kill_switch"]
    assert ("kill_switch", "stop") in shown and ("kill_switch", "flatten") in shown
    note = notification(flat, TelegramSettings())
    assert note is not None and note.kind == "halt"
    assert SYM in note.text and flat["message"] in note.text
    assert notification(flat, TelegramSettings(notify_halt=False)) is None


def test_a_file_at_start_stops_before_the_first_bar_and_its_removal_lifts_only_its_stop(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    stop = state / STOP_FILE
    stop.write_text("")  # an empty file stops too
    path = [0.99] * 5 + [1.0] * 55  # the very first bars are a drop from the warm-up's price
    session = open_steered(config(), state, {SYM: path}, speed=600)
    said: dict[str, ControlResult] = {}

    def script() -> None:
        time.sleep(1.0)  # the dip goes by (10 minutes of market)
        said["stop_refused"] = ask(session.desk, "stopentry")
        stop.unlink()
        until(lambda: session.engine.entries_stopped == "", "the lift")
        said["person"] = ask(session.desk, "stopentry")
        stop.write_text("stop\n")
        time.sleep(0.2)
        stop.unlink()
        time.sleep(0.2)

    try:
        session.start()
        assert session.engine.entries_stopped == REASON  # before any bar was traded
        run_steered(session, script, limit_s=30)
        person = session.engine.entries_stopped
    finally:
        session.close()

    records = audit(state)
    assert not [r for r in records if r["kind"] == "order"], "an order under the STOP file"
    assert said["stop_refused"].status == 409
    assert f"already stopped ({REASON})" in said["stop_refused"].message
    assert said["person"].ok and person.startswith("by test at ")  # the file left it alone
    ours = [(r["action"], r["message"]) for r in records if r["kind"] == "kill_switch"]
    assert [a for a, _ in ours] == ["stop", "lift", "stop"]
    assert f"entries already stopped ({person})" in ours[2][1]


def test_a_flatten_blocked_by_the_flash_crash_guard_is_retried_after_its_block(
    tmp_path: Path,
) -> None:
    """A crash below the flash-crash guard blocks every sell (never sold into a crash):
    the kill switch tries again once the exit's block is over, not on every loop pass,
    and the exit goes through once the price is back above the guard's floor."""
    state = tmp_path / "state"
    crash = 10  # minutes 15 % below the entry: under the guard's floor (10 % below)
    path = [1.0] * 12 + [0.99] * 2 + [0.85] * crash + [0.97] * 10
    session = open_steered(config(), state, {SYM: path}, speed=600, lead_in=5)

    base = session.history[0].close[0]

    def crashed() -> bool:
        held = session.engine.states[SYM].phase is Phase.POSITION
        return held and session.marks.get(SYM, base) < base * 0.9

    def write_when_held() -> None:
        until(crashed, "a position held in the crash", 20)
        (state / STOP_FILE).write_text("flatten")

    try:
        session.start()
        threading.Thread(target=write_when_held, daemon=True).start()
        session.run(stop_after_s=30)
    finally:
        session.close()

    records = audit(state)
    tries = [r for r in records if r["kind"] == "kill_switch" and r["action"] == "flatten"]
    blocked = [
        r
        for r in records
        if r["kind"] == "phase" and r["event"] == "SELL_BLOCKED" and "flash-crash" in r["reason"]
    ]
    assert blocked, "the crash never met the flash-crash guard"
    # one try per block (60 s of market) at most, over the crash's 10 minutes
    assert 2 <= len(tries) <= crash + 2, [r["ts"] for r in tries]
    gaps = [b["ts"] - a["ts"] for a, b in pairwise(tries)]
    assert all(g >= 10_000 for g in gaps), gaps
    (trade,) = [r for r in records if r["kind"] == "trade"]
    assert Decimal(trade["avg_exit"]) > Decimal(trade["avg_entry"]) * Decimal("0.9")
