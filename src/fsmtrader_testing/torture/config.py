"""The torture's configuration files: a paper session (``--venue sim``) and a live one
that passes ``trade --live``'s rules honestly (``config/live_policy.py``).

Both run an impatient strategy: many entries, escalating buys, multi-leg exits. The live
one is on the wall clock, so its timers (entry block, TTLs, timeouts, poll) are the
smallest the settings allow; the server's prices move ``speed`` times faster than the
wall, so a 0.2 % dip inside a one-minute anchor window comes every few seconds.
Credentials never appear in a file: the bot reads them from the environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fsmtrader_testing.paper import session_toml
from fsmtrader_testing.torture.server import API_KEY, API_SECRET

# An impatient strategy on a thin book: many entries, partial fills, multi-leg exits.
IMPATIENT: dict[str, dict[str, Any]] = {
    "risk": {"position_size": "25", "max_open_positions": 3, "max_total_exposure": "75"},
    "entry": {"entry_block_cooldown_s": 60, "buy_escalation_bps": [0, 10, 20]},
}

#: The symbols ``fsmtrader sim-server`` lists (its command line offers no others).
LIVE_SYMBOLS = ["BTC/USDT", "ETH/USDT"]

LIVE_SESSION: dict[str, dict[str, Any]] = {
    "market": {"symbols": LIVE_SYMBOLS, "starting_balance": "1000"},
    "risk": {"position_size": "25", "max_open_positions": 3, "max_total_exposure": "75"},
    "entry": {
        "drop_trigger_pct": 0.2,
        "anchor_window_min": 1,
        "entry_block_cooldown_s": 60,
        "buy_escalation_bps": [0, 10, 20],
    },
    "exit": {
        "take_profit_pct": 0.2,
        "stop_loss_pct": 0.3,
        "trailing_activation_pct": 0,
        "max_hold_min": 1,
        "cooldown_s": 2,
        "never_market_sells": True,
        "exit_ladder_bps": [0, 10, 25, 50, 100],
    },
    "timeouts": {
        "buy_fill_timeout_s": 5,
        "partial_fill_stuck_s": 2,
        "sell_fill_timeout_s": 5,
        "exit_ioc_ttl_ms": 500,
        "stuck_state_s": 30,
    },
    "router": {"backoff_ms": 200, "max_retries": 3},
    # The live rules (config/live_policy.py) hold: at most 3 errors in a row, both halts
    # on. Under injected faults a halt may come early and end new entries for the rest
    # of the run; the torture's own check at the end is the judge either way, and it
    # prints every mismatch and halt the bot reported.
    "errors": {"backoff_base_s": 0.5, "backoff_max_s": 5, "max_consecutive_errors": 3},
    "live": {"max_total_exposure": "100", "max_position_size": "50"},
    "halts": {"on_order_race": True, "on_reconcile_mismatch": True},
}


def paper_toml(seed: int, tif: str) -> str:
    """Today's paper torture session (``fsmtrader paper``)."""
    return session_toml(seed, router={"time_in_force": tif}, **IMPATIENT)


def live_toml(seed: int, venue: str, base_url: str, tif: str) -> str:
    """A live session on ``venue`` at ``base_url`` (the local server)."""
    tables = {name: dict(keys) for name, keys in LIVE_SESSION.items()}
    tables["router"]["time_in_force"] = tif
    tables["exchange"] = {
        "name": venue,
        "base_url": base_url,
        "poll_s": 0.2,
        "timeout_ms": 2000,
    }
    return _toml(seed, tables)


def _toml(seed: int, tables: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [f"seed = {seed}"]
    for name, keys in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def live_env() -> dict[str, str]:
    """The bot's credentials, from the environment as live trading requires."""
    return {"FSMTRADER_EXCHANGE__API_KEY": API_KEY, "FSMTRADER_EXCHANGE__API_SECRET": API_SECRET}


def redact(text: str) -> str:
    """``text`` with the credentials blanked: the torture prints the bot's stderr."""
    for secret in (API_SECRET, API_KEY):
        text = text.replace(secret, "***")
    return text
