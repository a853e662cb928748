"""Scenario E: the dashboard's push lag, measured in a real session. A real ``fsmtrader
paper`` with its control plane on (127.0.0.1, any free port, found through api.json, the
token by environment only) trades many symbols; an SSE client on ``/api/v1/stream`` takes
each phase transition's lag as its arrival (wall clock) minus the record's
``committed_ms`` (the bot's wall clock when the commit returned; one host, one clock)."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import httpx

from fsmtrader.config import Settings
from fsmtrader.control.api_file import ApiAddress, read_api_file
from fsmtrader.smoke.bot import Bot, paper_argv, tail, wait_for, write_config
from fsmtrader.smoke.judge_runs import judge_lag
from fsmtrader.smoke.report import ScenarioResult, verdict

SYMBOLS = 20
SPEED = 20_000.0  # simulated seconds per wall second: paced, the engine keeps up
NEED = 1000  # phase transitions to measure (the benchmark's default)
LISTEN_S = 25.0  # most wall seconds to listen for them
START_S = 30.0
TOKEN_ENV = "FSMTRADER_API__TOKEN"

#: Many symbols, a small drop trigger, quick exits and room for a position on each.
OWN: dict[str, Any] = {
    "seed": 11,
    "market": {
        "symbols": [f"S{i:03d}/USDT" for i in range(SYMBOLS)],
        "starting_balance": "100000",
    },
    "risk": {
        "position_size": "25",
        "max_open_positions": SYMBOLS,
        "max_total_exposure": str(25 * SYMBOLS),
    },
    "entry": {"drop_trigger_pct": 0.3, "anchor_window_min": 10, "buy_escalation_bps": [0, 10]},
    "exit": {"take_profit_pct": 0.3, "stop_loss_pct": 0.3, "max_hold_min": 10},
    "api": {"enabled": True, "host": "127.0.0.1", "port": 0, "allow_remote": False},
}


def found(state: Path, bot: Bot) -> ApiAddress | None:
    """The bot's API address once api.json names its pid."""
    try:
        where = read_api_file(state)
    except ValueError:
        return None
    return where if where is not None and where.pid == bot.proc.pid else None


def listen(
    url: str, token: str, need: int, limit_s: float
) -> tuple[list[float], list[dict[str, Any]]]:
    """Lags (ms) of the live phase records pushed, and a few of them for the report."""
    lags: list[float] = []
    shown: list[dict[str, Any]] = []
    deadline = time.monotonic() + limit_s
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    timeout = httpx.Timeout(10.0, read=2.0)
    with httpx.Client(base_url=url, headers=headers, timeout=timeout) as client:
        try:
            with client.stream("GET", "/api/v1/stream") as resp:
                resp.raise_for_status()
                for line in resp.iter_lines():
                    now = time.time() * 1000
                    if line.startswith("data:"):
                        _sample(json.loads(line[5:]), now, lags, shown)
                    if len(lags) >= need or time.monotonic() > deadline:
                        break
        except httpx.ReadTimeout:
            pass  # nothing pushed for 2 s: the bot has ended or stalled; judged by count
    return lags, shown


def _sample(
    item: dict[str, Any], now: float, lags: list[float], shown: list[dict[str, Any]]
) -> None:
    record = item.get("record") or {}
    if record.get("kind") != "phase" or item.get("replay") or item.get("committed_ms") is None:
        return
    lag = now - float(item["committed_ms"])
    lags.append(lag)
    if len(shown) < 10:
        shown.append({"lag_ms": round(lag, 3), "audit_id": item["id"], **record})


def run_e(user: Settings, folder: Path) -> ScenarioResult:
    state, config = folder / "state", folder / "scenario-e.toml"
    write_config(user, OWN, config)
    token = secrets.token_urlsafe(24)
    hours = 720.0
    argv = paper_argv(
        state, config, "--for", f"{START_S + LISTEN_S + 5:g}", hours=hours, speed=SPEED
    )
    bot = Bot.start(argv, folder / "bot.log", {TOKEN_ENV: token})
    fig: dict[str, Any] = {"symbols": SYMBOLS, "speed": SPEED}
    try:
        wait_for(lambda: found(state, bot) is not None or not bot.alive(), START_S, 0.05)
        where = found(state, bot)
        if where is None:
            return verdict("E", [f"the bot's API never came up ({tail(bot.stderr())})"], fig, [])
        t0 = time.monotonic()
        lags, shown = listen(where.url, token, NEED, LISTEN_S)
        took = time.monotonic() - t0
        fig.update(listened_s=round(took, 3), pushes_per_s=round(len(lags) / max(took, 1e-9), 1))
        fig["load_average_1m"] = round(os.getloadavg()[0], 2)  # the host's, for context
    finally:
        fig["bot_rc"] = bot.stop()
    failures = judge_lag(lags, NEED, fig)
    return verdict("E", failures, fig, shown)
