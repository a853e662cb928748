"""The protective stop while the bot is down: a real paper session (its own SQLite state
directory and simulated exchange file) holds a position guarded by a resting stop, is
killed with SIGKILL, the market falls through the stop while it is down, and the
restarted session finds the fill by the stop's order, books it as a sell and records the
trade with exit reason ``protective_stop``; reconcile finds no orphan and no drift."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.clock import SimClock
from fsmtrader.config import load_settings
from fsmtrader.session import open_sim_exchange, session_filters
from fsmtrader.smoke.verify import verify_session
from fsmtrader_testing.paper import clean_env, fsmtrader_argv, paper_args, session_toml


def resting_stop(db: Path) -> dict[str, Any] | None:
    """A protective stop live in the committed books of a symbol at rest in POSITION."""
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            rows = c.execute(
                "SELECT o.intent, o.client_order_id, o.order_id FROM orders o JOIN symbol_state s"
                " ON s.symbol = o.symbol WHERE o.state = 'SENT' AND s.phase = 'POSITION'"
            ).fetchall()
        finally:
            c.close()
    except sqlite3.Error:
        return None
    for intent, coid, order_id in rows:
        it = json.loads(intent)
        if "stop_price" in it and order_id:
            return {**it, "client_order_id": coid, "order_id": order_id}
    return None


def test_a_stop_filled_while_the_bot_was_down_is_found_and_booked_on_restart(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(session_toml(seed=11, protect={"enabled": True}, exit={"stop_loss_pct": 2.0}))
    state = tmp_path / "state"
    db = state / "fsmtrader.db"
    env = clean_env(COLUMNS="200")
    first = subprocess.Popen(
        fsmtrader_argv(*paper_args(state, config, speed=600)),
        env=env,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stop = None
    deadline = time.monotonic() + 60
    while stop is None and time.monotonic() < deadline and first.poll() is None:
        stop = resting_stop(db)
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert stop is not None, "never saw a resting protective stop"

    # While the bot is down the market falls through the stop: the venue fills it.
    s = load_settings(config, env={})
    symbol, stop_px = stop["symbol"], Decimal(stop["stop_price"])
    with open_sim_exchange(s, state, session_filters(s), SimClock(0)) as seen:
        ts = seen.fetch_ticker(symbol).timestamp + 1  # the bar after the last it saw
    ex = open_sim_exchange(s, state, session_filters(s), SimClock(ts))
    try:
        px = float(stop_px) * 0.999  # under the stop, above its limit (100 bps under)
        ex.update_market(symbol, ts, px, px, px, 1.0)
        venue_order = ex.fetch_order(stop["order_id"], symbol)
        assert venue_order.status == "closed" and venue_order.stop_price == stop_px
    finally:
        ex.close()

    again = subprocess.run(
        fsmtrader_argv(*paper_args(state, config, "--for", "1", speed=600)),
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "restored session" in again.stderr and "reconcile ok" in again.stderr
    report = json.loads((state / "reconcile.json").read_text())
    assert report["ok"] and report["recovered_intents"] >= 1
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        trades = c.execute(
            "SELECT decision_id, sold_qty, sell_fees, exit_reason FROM trades WHERE symbol = ?",
            (symbol,),
        ).fetchall()
        order = c.execute(
            "SELECT state, filled FROM orders WHERE client_order_id = ?",
            (stop["client_order_id"],),
        ).fetchone()
    finally:
        c.close()
    [closed] = [t for t in trades if t[0] == stop["decision_id"]]
    assert closed[3] == "protective_stop"
    assert Decimal(closed[1]) == venue_order.filled and Decimal(closed[2]) == venue_order.fee
    assert order[0] == "RECONCILED" and Decimal(order[1]) == venue_order.filled
    assert verify_session(state, s)[:3] == (0, 0, Decimal(0))
