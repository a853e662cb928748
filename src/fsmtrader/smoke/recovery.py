"""Scenario D: a real ``fsmtrader paper`` SIGKILLed while it holds positions and has orders
resting on the exchange, started again, then checked: its start-up reconcile is clean, the
books equal an independent recomputation from the simulated exchange's own records (the
crash oracle, :mod:`fsmtrader.smoke.verify`), and no intent has two exchange orders."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fsmtrader.config import Settings
from fsmtrader.smoke.bot import (
    Bot,
    paper_argv,
    read_only,
    run_bot,
    tail,
    wait_for,
    write_config,
)
from fsmtrader.smoke.judge_runs import judge_recovery
from fsmtrader.smoke.report import ScenarioResult, verdict
from fsmtrader.smoke.verify import verify_session

#: An impatient strategy on a thin book with resting (GTC) buys: within seconds of a
#: session at 1800x there are positions and open orders at the same time.
OWN: dict[str, Any] = {
    "seed": 11,
    "market": {
        "symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"],
        "starting_balance": "1000",
    },
    "risk": {"position_size": "25", "max_open_positions": 3, "max_total_exposure": "75"},
    "entry": {"drop_trigger_pct": 0.4, "anchor_window_min": 10, "buy_escalation_bps": [0, 10]},
    "exit": {
        "take_profit_pct": 0.3,
        "stop_loss_pct": 0.4,
        "trailing_activation_pct": 0,
        "max_hold_min": 15,
        "cooldown_s": 60,
    },
    "router": {"time_in_force": "GTC"},
    "sim": {"depth_quote": "15"},
}
SPEED = 1800.0
WATCH_S = 30.0  # most wall seconds to wait for positions and open orders together
RESTART_S = 60.0
OPEN = "('SENT', 'PARTIAL')"  # an order resting on the exchange


def held(db: Path) -> dict[str, Any] | None:
    """The committed open orders and positions, or None while there are not both."""
    try:
        c = read_only(db)
        try:
            rows = c.execute(
                f"SELECT intent_id, client_order_id, symbol, side, state FROM orders "
                f"WHERE state IN {OPEN}"
            ).fetchall()
            pos = c.execute("SELECT symbol FROM positions").fetchall()
        finally:
            c.close()
    except sqlite3.Error:
        return None
    if not rows or not pos:
        return None
    names = ("intent_id", "client_order_id", "symbol", "side", "state")
    orders = [dict(zip(names, r, strict=True)) for r in rows]
    return {"open_orders": orders, "positions": sorted(p[0] for p in pos)}


def watch(bot: Bot, db: Path) -> dict[str, Any] | None:
    """Poll the bot's database until it shows positions and open orders together."""
    found: list[dict[str, Any]] = []

    def both() -> bool:
        h = held(db)
        if h is not None:
            found.append(h)
        return h is not None or not bot.alive()

    wait_for(both, WATCH_S)
    return found[-1] if found else None


def run_d(user: Settings, folder: Path) -> ScenarioResult:
    state, config = folder / "state", folder / "scenario-d.toml"
    s = write_config(user, OWN, config)
    argv = paper_argv(state, config, "--for", f"{WATCH_S + 10:g}", hours=48, speed=SPEED)
    bot = Bot.start(argv, folder / "first.log")
    try:
        at_kill = watch(bot, state / "fsmtrader.db")
    finally:
        rc_kill = bot.kill()
    fig: dict[str, Any] = {"killed_rc": rc_kill, "speed": SPEED, "at_kill": at_kill}
    if at_kill is None:
        why = f"never saw positions and open orders within {WATCH_S:g} s"
        return verdict("D", [f"{why} ({tail(bot.stderr()) or 'no output'})"], fig, [])
    again = paper_argv(state, config, "--for", "1", hours=48, speed=SPEED)
    rc, err = run_bot(again, folder / "restart.log", RESTART_S)
    report = _json(state / "reconcile.json")
    verdict_ = verify_session(state, s) if rc == 0 else None
    ids = _audit_ids(state / "audit.jsonl")
    failures = judge_recovery(at_kill, rc, err, report, verdict_, ids, fig)
    return verdict("D", failures, fig, _excerpt(state / "audit.jsonl", at_kill))


def _json(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _audit_ids(path: Path) -> list[int]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [int(json.loads(line)["audit_id"]) for line in lines if line.strip()]


def _excerpt(path: Path, at_kill: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What became of the orders open at the kill, and what the restart said."""
    wanted = {o["intent_id"] for o in at_kill["open_orders"]}
    out = []
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if rec.get("intent_id") in wanted or rec.get("kind") in ("halt", "alert"):
                    out.append(rec)
    except (OSError, ValueError):
        return out
    return out[-40:]
