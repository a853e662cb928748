"""``fsmtrader`` in a subprocess, as the CLI, crash and live-mode tests and the crash torture
run it: a clean environment, the command line, and a paper session's configuration file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Four symbols, a quick strategy and a thin book: entries, partial fills and multi-leg
#: exits within minutes of simulated time.
PAPER_SESSION: dict[str, dict[str, Any]] = {
    "market": {"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"]},
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


def session_toml(seed: int, **tables: Mapping[str, Any]) -> str:
    """The TOML of :data:`PAPER_SESSION` with ``seed``; each keyword names a table whose
    keys replace or add to the session's (``router={"time_in_force": "IOC"}``)."""
    merged = {name: dict(keys) for name, keys in PAPER_SESSION.items()}
    for name, keys in tables.items():
        merged.setdefault(name, {}).update(keys)
    lines = [f"seed = {seed}"]
    for name, keys in merged.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any FSMTRADER_ setting, plus ``extra``: the
    subprocess reads only the configuration file it is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMTRADER_")}
    env.update(extra)
    return env


def fsmtrader_argv(*args: str) -> list[str]:
    """The command line of ``fsmtrader`` with ``args``, run by this interpreter."""
    return [sys.executable, "-m", "fsmtrader", *args]


def run_fsmtrader(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    columns: str | None = "200",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``fsmtrader *args`` to completion, output captured, in :func:`clean_env` plus ``env``;
    ``columns=None`` runs it as from a pipe, cron or systemd (no COLUMNS, no terminal)."""
    full = {k: v for k, v in clean_env().items() if k != "COLUMNS"}
    full.update(env or {})
    if columns is not None:
        full["COLUMNS"] = columns
    return subprocess.run(
        fsmtrader_argv(*args), cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout
    )


def paper_args(
    state: Path, config: Path, *extra: str, hours: float = 48, speed: float = 1800
) -> list[str]:
    """``fsmtrader paper`` on ``state`` with ``config``, quiet, then ``extra``."""
    return [
        "paper",
        "--state-dir",
        str(state),
        "--config",
        str(config),
        "--hours",
        f"{hours:g}",
        "--speed",
        f"{speed:g}",
        "--quiet",
        *extra,
    ]


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one ``error:`` line a refused command printed (exit code 2, no trace, nothing
    else on stderr); AssertionError naming what it printed otherwise."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    if proc.returncode != 2 or "Traceback" in proc.stderr + proc.stdout or len(lines) != 1:
        raise AssertionError((proc.returncode, proc.stdout, proc.stderr))
    if not lines[0].startswith("error: "):
        raise AssertionError(lines)
    return lines[0]
