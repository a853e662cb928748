"""The kill switch: a file ``STOP`` in the state directory stops new entries at once, with
no API, no token and no running control plane; the word ``flatten`` in it also exits every
held position down the exit ladder (never a market order) for as long as the file is there.
Removing the file lifts the stop it made, and only that one (a person's stop or a halt
stays). SIGUSR1 and SIGUSR2 write the same file ("stop", "flatten"), so a signal and the
file are one mechanism and the state directory shows which is in force.

The file is looked at with one ``os.stat`` per service pass; it is read only when it
appears or changes (inode, size or mtime)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fsmtrader.engine import Engine
from fsmtrader.fsm.phases import Phase
from fsmtrader.state.records import KillSwitchRecord

__all__ = [
    "REASON",
    "STOP_FILE",
    "KillSwitch",
    "install_signals",
    "parse",
    "write_stop",
]

log = logging.getLogger("fsmtrader.kill_switch")
STOP_FILE = "STOP"
REASON = "kill switch: STOP file"  # engine.entries_stopped while the file is there
RETRY_MS = 10_000  # a flatten's exit that came back to POSITION is retried at most this often
_FLATTEN = re.compile(r"\bflatten\b", re.IGNORECASE)
Command = Literal["stop", "flatten"]


def parse(text: str) -> Command:
    """What a STOP file asks: "flatten" when the word is in it, else "stop" (an empty or
    unreadable file still stops: the file's presence is the switch)."""
    return "flatten" if _FLATTEN.search(text) else "stop"


def write_stop(state_dir: Path, command: Command) -> Path:
    """Write the STOP file whole (temp file, then rename): the bot never reads half of it."""
    path = state_dir / STOP_FILE
    tmp = state_dir / f".{STOP_FILE}.{os.getpid()}.tmp"
    tmp.write_text(f"{command}\n")
    os.replace(tmp, path)
    return path


def install_signals(state_dir: Path) -> None:
    """SIGUSR1 writes ``STOP`` ("stop"), SIGUSR2 writes it with "flatten" (POSIX only)."""

    def handler(command: Command) -> Callable[[int, object], None]:
        def on_signal(signum: int, frame: object) -> None:
            try:
                write_stop(state_dir, command)
            except OSError as exc:  # a signal handler must not raise into the loop
                log.error("kill switch: cannot write %s (%s)", state_dir / STOP_FILE, exc)

        return on_signal

    for name, command in (("SIGUSR1", "stop"), ("SIGUSR2", "flatten")):
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, handler(command))  # type: ignore[arg-type]


@dataclass
class _Seen:
    present: bool = False
    stamp: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) last read
    command: Command = "stop"


class KillSwitch:
    """The file's shell: ``apply`` brings the engine in line with the file once per pass
    and publishes one ``kill_switch`` audit record per action; the caller commits."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STOP_FILE
        self.seen = _Seen()
        self._tried: dict[str, int] = {}  # symbol -> session ms of its last forced exit

    def poll(self) -> bool:
        """Whether the file is there now (one stat; read only when it changed)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.seen = _Seen()
            return False
        except OSError as exc:  # a file we cannot look at still counts as a STOP
            log.warning("kill switch: cannot stat %s (%s)", self.path, exc)
            self.seen.present = True
            return True
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self.seen.stamp:
            text = ""
            with contextlib.suppress(OSError, UnicodeDecodeError):
                text = self.path.read_text(errors="replace")
            self.seen.stamp, self.seen.command = stamp, parse(text)
        self.seen.present = True
        return True

    def apply(self, engine: Engine, *, flatten: bool = True) -> bool:
        """Stop, flatten or lift as the file says; True when something was published.
        ``flatten=False`` (a start's recovery, which may be look-ups only) only stops: the
        exits are left to the running loop."""
        was = self.seen.present
        prev_command = self.seen.command
        present = self.poll()
        published = False
        if present:
            fresh = not was or self.seen.command != prev_command
            published = self._stop(engine, fresh=fresh)
            if flatten and self.seen.command == "flatten":
                published = self._flatten(engine) or published
        elif engine.entries_stopped == REASON:
            engine.entries_stopped = ""
            msg = "STOP file removed: new entries allowed again"
            self._publish(engine, "lift", msg, command=prev_command)
            published = True
        return published

    def _stop(self, engine: Engine, *, fresh: bool) -> bool:
        if not engine.entries_stopped:
            engine.entries_stopped = REASON
            msg = f"{self.path} found ({self.seen.command}): new entries stopped"
            self._publish(engine, "stop", msg)
            return True
        if fresh:  # stopped already (by a person, or by us before a restart): say so once
            msg = (
                f"{self.path} found ({self.seen.command}); entries already stopped "
                f"({engine.entries_stopped})"
            )
            self._publish(engine, "stop", msg)
            return True
        return False

    def _flatten(self, engine: Engine) -> bool:
        """Exit each symbol in POSITION; its record comes first, then the exit's own. An
        exit that went back to POSITION (blocked: flash-crash guard, ladder exhausted, no
        quote) is tried again after its block, and not more often than ``RETRY_MS``."""
        now = engine.clock.now_ms()
        held = [
            sym
            for sym, st in engine.states.items()
            if st.phase is Phase.POSITION
            and now >= st.exit_block_until
            and now - self._tried.get(sym, now - RETRY_MS) >= RETRY_MS
        ]
        for sym in held:
            self._tried[sym] = now
            self._publish(engine, "flatten", "exit down the exit ladder", symbol=sym)
            engine.force_exit(sym)
        return bool(held)

    def _publish(
        self,
        engine: Engine,
        action: str,
        message: str,
        symbol: str = "",
        command: Command | None = None,
    ) -> None:
        record: KillSwitchRecord = {
            "kind": "kill_switch",
            "ts": engine.clock.now_ms(),
            "action": action,
            "command": command or self.seen.command,
            "file": str(self.path),
            "message": message,
        }
        if symbol:
            record["symbol"] = symbol
        log.warning("kill switch: %s%s", f"{symbol}: " if symbol else "", message)
        engine.bus.publish(record)
