"""A real paper session with its control plane, for the API's tests and benchmarks.

Two ways: in this process (``serve_session``: the PaperSession and its ControlPlane — the
record feed, metrics, the app on a real uvicorn on 127.0.0.1 — with the session's loop
run by the caller's thread as ``fsmtrader paper`` runs it), or as ``fsmtrader paper`` in
a subprocess with ``[api] enabled`` (``start_bot``), found through ``STATE_DIR/api.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fsmtrader.config import Settings
from fsmtrader.control.plane import ControlPlane
from fsmtrader.control.server import ApiServer
from fsmtrader.control.stream import StreamHub
from fsmtrader.session import PaperSession
from fsmtrader_testing.harness import settings
from fsmtrader_testing.paper import PAPER_SESSION, clean_env, fsmtrader_argv, session_toml

TOKEN_ENV = "FSMTRADER_API__TOKEN"


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class LiveApi:
    """A paper session serving its API in this process, wired by the bot's own
    ControlPlane."""

    session: PaperSession
    plane: ControlPlane
    token: str
    bars: list[int] = field(default_factory=lambda: [0])  # bars the loop got through

    @property
    def url(self) -> str:
        return self.plane.url

    @property
    def hub(self) -> StreamHub:
        hub: StreamHub = api_server(self.plane).app.state.hub
        return hub

    def client(self, *, token: str | None = None, timeout: float = 15.0) -> httpx.Client:
        """An HTTP client with the right token (or ``token``; "" sends none)."""
        tok = self.token if token is None else token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def run(self, script: Callable[[LiveApi], None], *, limit_s: float) -> float:
        """Run the session's loop in this thread while ``script`` talks to the API from
        another; stop when the script is done, the session ends, or after ``limit_s``.
        Returns the wall seconds the loop ran. The script's failure is raised here."""
        done = threading.Event()
        failure: list[BaseException] = []

        def steer() -> None:
            try:
                script(self)
            except BaseException as exc:  # re-raised in the test's thread
                failure.append(exc)
            finally:
                done.set()

        t = threading.Thread(target=steer, name="api-test-script", daemon=True)
        t.start()
        started = time.perf_counter()
        self.session.run(
            stop_after_s=limit_s,
            should_stop=done.is_set,
            progress=lambda n, _total: self.bars.__setitem__(0, n),
            poll_s=0.005,
        )
        wall = time.perf_counter() - started
        t.join(10)
        if failure:
            raise failure[0]
        return wall


def api_settings(seed: int, token: str, **api: Any) -> Settings:
    """:data:`PAPER_SESSION` with ``[api]`` on, any free port, and ``token``."""
    return settings(
        seed=seed, **PAPER_SESSION, api={"enabled": True, "port": 0, "token": token, **api}
    )


@contextlib.contextmanager
def serve_session(
    state_dir: Path,
    *,
    seed: int = 7,
    hours: float = 48,
    speed: float = 1800,
    token: str | None = None,
    heartbeat_s: float | None = None,
    **api: Any,
) -> Iterator[LiveApi]:
    """A started paper session with its API listening on 127.0.0.1 (any free port), as
    ``fsmtrader paper`` starts it: the control plane first, then the session's start."""
    tok = token or new_token()
    s = api_settings(seed, tok, **api)
    session = PaperSession(s, state_dir, hours=hours, speed=speed)
    plane: ControlPlane | None = None
    try:
        plane = ControlPlane(session)
        if heartbeat_s is not None:
            api_server(plane).app.state.hub.heartbeat_s = heartbeat_s
        plane.start()
        session.start()
        yield LiveApi(session, plane, tok)
    finally:
        try:
            if plane is not None:
                plane.close()
        finally:
            session.close()


# --- the bot in a subprocess ---------------------------------------------------------------
@dataclass
class BotProcess:
    proc: subprocess.Popen[str]
    state_dir: Path
    config: Path
    token: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, timeout: float = 15.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout
        )

    def stop(self, timeout_s: float = 20.0) -> tuple[str, str]:
        """SIGTERM (the bot commits and exits), its output."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return out, err


def api_config(path: Path, seed: int, *, port: int = 0, **tables: dict[str, Any]) -> Path:
    """A paper session's TOML with ``[api] enabled = true`` (no token: that is the env's)."""
    api = {"enabled": True, "port": port, **tables.pop("api", {})}
    path.write_text(session_toml(seed, api=api, **tables))
    return path


def start_bot(
    state_dir: Path,
    config: Path,
    *,
    run_for_s: float,
    speed: float = 1800,
    hours: float = 48,
    token: str | None = None,
    wait_s: float = 30.0,
) -> BotProcess:
    """``fsmtrader paper ... --for S --quiet`` with the token in its environment; returns
    once the bot has written ``api.json`` (its pid) and answers ``/api/v1/health``."""
    tok = token or new_token()
    api_json = state_dir / "api.json"
    argv = fsmtrader_argv(
        "paper", "--state-dir", str(state_dir), "--config", str(config),
        "--hours", f"{hours:g}", "--speed", f"{speed:g}", "--for", f"{run_for_s:g}", "--quiet",
    )  # fmt: skip
    env = clean_env(**{TOKEN_ENV: tok, "COLUMNS": "200"})
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise RuntimeError(f"the bot exited ({proc.returncode}) before serving:\n{err}{out}")
        where = _api_json(api_json, proc.pid)
        if where is not None:
            bot = BotProcess(proc, state_dir, config, tok, where[0], where[1])
            if _healthy(bot):
                return bot
        time.sleep(0.05)
    proc.kill()
    out, err = proc.communicate()
    raise RuntimeError(f"no api.json from the bot within {wait_s:g} s:\n{err}{out}")


def _api_json(path: Path, pid: int) -> tuple[str, int] | None:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("pid") != pid:
        return None
    return str(info["host"]), int(info["port"])


def _healthy(bot: BotProcess) -> bool:
    try:
        with bot.client(timeout=2.0) as c:
            return c.get("/api/v1/health").status_code == 200
    except httpx.HTTPError:
        return False


def env_with_token(token: str, **extra: str) -> dict[str, str]:
    """A clean environment holding the token, for ``fsmtrader control`` subprocesses."""
    return clean_env(**{TOKEN_ENV: token, **extra, "PATH": os.environ.get("PATH", "")})


def api_server(plane: ControlPlane) -> ApiServer:
    """The plane's API server (these sessions always enable it)."""
    if plane.server is None:
        raise RuntimeError("the session's [api] is not enabled")
    return plane.server
