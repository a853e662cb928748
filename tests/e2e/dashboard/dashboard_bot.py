"""A real bot with its control plane, and a real browser, for the dashboard's tests and its
benchmark (``benchmarks/control_plane.py`` imports this file).

The bot is ``fsmtrader paper`` in a subprocess with ``[api] enabled`` on 127.0.0.1 port 0;
it writes ``STATE_DIR/api.json`` once the API is bound, which is how a client finds it (the
same rule ``fsmtrader control`` follows). The browser is Debian's Chromium driven by
Playwright through the system executable: nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fsmtrader_testing.paper import clean_env, fsmtrader_argv, session_toml

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (containers), no GPU, and nothing that would reach the network on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NO_CHROMIUM = (
    f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`; "
    "`make test` does it when it can); Playwright's own browser download is never used"
)


@dataclass
class Bot:
    """A running paper bot: where its API is and the token to use it."""

    state_dir: Path
    base_url: str
    token: str
    proc: subprocess.Popen[str]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base_url + path, headers=self.headers(), timeout=10)

    def json(self, path: str) -> Any:
        resp = self.get(path)
        resp.raise_for_status()
        return resp.json()

    def page_url(self) -> str:
        """The dashboard's address with the token given once, as an operator opens it."""
        return f"{self.base_url}/?token={self.token}"


def bot_toml(seed: int, symbols: list[str] | None = None, **tables: Mapping[str, Any]) -> str:
    """The paper session of the CLI tests with the API on a free loopback port."""
    api = {"enabled": True, "host": "127.0.0.1", "port": 0, **tables.pop("api", {})}
    if not api["enabled"]:
        api = {"enabled": False}
    market = dict(tables.pop("market", {}))
    if symbols is not None:
        market["symbols"] = symbols
    if market:
        tables["market"] = market
    return session_toml(seed, api=api, **tables)


@contextmanager
def running_bot(
    folder: Path,
    toml: str,
    *,
    hours: float = 48,
    speed: float = 1800,
    run_for_s: float = 240,
    start_timeout_s: float = 90,
    api: bool = True,
    token: str | None = None,
) -> Iterator[Bot]:
    """``fsmtrader paper`` with the API, until the block ends (SIGTERM, then SIGKILL).
    ``run_for_s`` bounds the bot's life even if this process dies. ``api=False`` is the
    same session with ``[api]`` off (``toml`` must say so): it is running once it says
    so on stderr, and ``base_url`` is empty."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "bot.toml"
    config.write_text(toml)
    state = folder / "state"
    token = token or secrets.token_urlsafe(24)
    argv = fsmtrader_argv(
        "paper", "--state-dir", str(state), "--config", str(config), "--hours", f"{hours:g}",
        "--speed", f"{speed:g}", "--for", f"{run_for_s:g}", "--quiet",
    )  # fmt: skip
    log = (folder / "bot.log").open("a")
    env = clean_env(FSMTRADER_API__TOKEN=token)
    proc = subprocess.Popen(
        argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    try:
        if api:
            base = _wait_for_api(state, proc, folder / "bot.log", start_timeout_s)
        else:
            base = ""
            _wait_for_line(proc, folder / "bot.log", "paper: ", start_timeout_s)
        yield Bot(state_dir=state, base_url=base, token=token, proc=proc)
    finally:
        _stop(proc)
        log.close()


def _wait_for_api(state: Path, proc: subprocess.Popen[str], log: Path, timeout_s: float) -> str:
    """The API's base URL once ``api.json`` names a port that answers /api/v1/health."""
    deadline = time.monotonic() + timeout_s
    info = state / "api.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bot exited ({proc.returncode}): {log.read_text()[-2000:]}")
        if info.exists():
            try:
                where = json.loads(info.read_text())
                if where["pid"] != proc.pid:
                    raise ValueError("the file of an earlier bot")
                base = f"http://{where['host']}:{where['port']}"
                httpx.get(base + "/api/v1/health", timeout=2)
                return base
            except (ValueError, KeyError, httpx.HTTPError):
                pass  # written but not complete, or not answering yet
        time.sleep(0.05)
    raise RuntimeError(f"no API in {state} after {timeout_s:g} s: {log.read_text()[-2000:]}")


def free_port() -> int:
    """A loopback port nobody listens on now (for a bot that must come back on the same)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_line(proc: subprocess.Popen[str], log: Path, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the bot exited ({proc.returncode}): {log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"the bot did not start in {timeout_s:g} s: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def phase_records(state: Path) -> list[dict[str, Any]]:
    """Every phase record of the bot's audit trail (audit.jsonl), in order."""
    out: list[dict[str, Any]] = []
    path = state / "audit.jsonl"
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # the line being written
        if rec.get("kind") == "phase":
            out.append(rec)
    return out
