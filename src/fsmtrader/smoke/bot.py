"""``fsmtrader paper`` in a subprocess, as a person runs it: its own configuration file
(the user's settings with the scenario's on top, no secret in it), its own state folder,
an environment without any FSMTRADER_ setting of ours, its output in files (a pipe that
nobody reads could stall it), and a time limit it cannot outlive."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fsmtrader.config import Settings, load_settings
from fsmtrader.smoke.derive import scenario_table, to_toml


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without FSMTRADER_ settings: the bot reads only its file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMTRADER_")}
    env.update(extra)
    return env


def write_config(user: Settings, own: Mapping[str, Any], path: Path) -> Settings:
    """The scenario's settings file; returns those settings as the bot will read them."""
    path.write_text(to_toml(scenario_table(user, own)), encoding="utf-8")
    return load_settings(path, env={})


def paper_argv(state: Path, config: Path, *extra: str, hours: float, speed: float) -> list[str]:
    return [
        sys.executable, "-m", "fsmtrader", "paper",
        "--state-dir", str(state), "--config", str(config),
        "--hours", f"{hours:g}", "--speed", f"{speed:g}", "--quiet", *extra,
    ]  # fmt: skip


@dataclass
class Bot:
    """A running ``fsmtrader paper``; its stderr goes to ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path
    _files: list[IO[bytes]] = field(default_factory=list)

    @classmethod
    def start(cls, argv: list[str], log: Path, env: Mapping[str, str] | None = None) -> Bot:
        err = log.open("ab")
        out = log.with_suffix(".out").open("ab")
        proc = subprocess.Popen(
            argv,
            env=clean_env(**(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        return cls(proc, log, [err, out])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout_s: float) -> int:
        """Its exit code; killed when it runs past ``timeout_s``."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        except BaseException:  # we are interrupted: it must not linger
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.close()

    def kill(self) -> int:
        """SIGKILL: no commit, no cleanup, as a crash or the OOM killer ends it."""
        if self.alive():
            self.proc.kill()
        return self.wait(10)

    def stop(self, timeout_s: float = 20) -> int:
        """SIGTERM: it commits and exits."""
        if self.alive():
            self.proc.terminate()
        return self.wait(timeout_s)

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()

    def stderr(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def run_bot(argv: list[str], log: Path, timeout_s: float) -> tuple[int, str]:
    """Run to the end: exit code and stderr."""
    bot = Bot.start(argv, log)
    rc = bot.wait(timeout_s)
    return rc, bot.stderr()


def read_only(db: Path) -> sqlite3.Connection:
    """The bot's database, read-only: looking never changes or locks what it writes."""
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)


def tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def wait_for(predicate: Any, limit_s: float, every_s: float = 0.01) -> bool:
    """Poll ``predicate()`` until it is true or ``limit_s`` passed."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return bool(predicate())
