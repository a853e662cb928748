"""``fsmtrader status``: a running (or stopped) bot's books, read from its state database
without stopping it or changing a byte, beside who holds its state directory.

It prints what the API's ``/status`` prints (``BookReader.status``), as JSON with
``--json`` or as the live table's rows; the lock holder is probed, never waited for."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from fsmtrader.cli.console import out
from fsmtrader.cli.display import status_rows_table
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import ConfigOpt, SessionDirOpt, settings_from
from fsmtrader.control.api_file import read_api_file
from fsmtrader.errors import FsmTraderError
from fsmtrader.store.lock import LOCK_FILE


def lock_holder(state_dir: Path) -> dict[str, Any]:
    """Who holds the state directory: ``running`` (a bot holds its lock; its pid),
    ``stopped`` (the lock is free; the pid of the last holder) or ``none`` (no lock file:
    no bot ever ran here). The probe opens the file read-only (never creating it) and
    takes a shared lock without waiting, released at once: a bot starting in that instant
    could be refused, for the microseconds the probe holds it."""
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return {"state": "none", "pid": None, "path": str(path)}
    except OSError as exc:
        return {"state": "unknown", "pid": None, "path": str(path), "error": str(exc)}
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            state = "running"
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            state = "stopped"
        text = os.read(fd, 64).decode(errors="replace").strip()
    finally:
        os.close(fd)
    pid = int(text) if text.isdigit() else None
    return {"state": state, "pid": pid, "path": str(path)}


def read_status(state_dir: Path, db_path: Path) -> dict[str, Any]:
    """The status of the session in ``state_dir`` (its clock, its saved marks) and the
    lock holder; FsmTraderError when there is no session there."""
    from fsmtrader.control.clocks import session_clock  # the session: only when read
    from fsmtrader.control.reads import BookReader
    from fsmtrader.store.owner import held_owner

    if not state_dir.is_dir():
        raise FsmTraderError(f"{state_dir}: no such state directory")
    if not db_path.is_file():
        raise FsmTraderError(f"{state_dir}: no session here (no {db_path.name})")
    lock = lock_holder(state_dir)
    with BookReader(db_path, state_dir) as reader:
        meta = reader.meta()
        status = reader.status(session_clock(meta)())
    owner = held_owner(meta)
    status["session"] = owner.kind if owner is not None else ""
    status["lock"] = lock
    status["api"] = api_address(state_dir) if lock["state"] == "running" else None
    status["state_dir"] = str(state_dir)
    return status


def api_address(state_dir: Path) -> dict[str, Any] | None:
    """Where the running bot's API listens (``api.json``: host, port, pid; no token)."""
    try:
        address = read_api_file(state_dir)
    except ValueError:
        return None
    return asdict(address) if address is not None else None


def status(
    config: ConfigOpt = None,
    state_dir: SessionDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show a bot's symbols, positions, open orders and PnL from its state database,
    read-only (it may be running), and whether a bot holds the directory now."""

    def run() -> None:
        from fsmtrader.store.sqlite import store_path

        s = settings_from(config)
        folder = state_dir or s.state_dir
        st = read_status(folder, store_path(folder, s.database_url))
        if as_json:
            out.print_json(json.dumps(st))
            return
        out.print(_lock_line(st))
        out.print(status_rows_table(st, s.display, f"status — {folder}"))

    guard(run)


def _lock_line(st: dict[str, Any]) -> str:
    lock, kind = st["lock"], st["session"] or "session"
    pid = lock["pid"]
    if lock["state"] == "running":
        api = st["api"]
        at = f", API on {api['host']}:{api['port']}" if api else ""
        return f"{kind}: running (pid {pid if pid is not None else '?'}{at})"
    if lock["state"] == "stopped":
        return f"{kind}: stopped" + (f" (last pid {pid})" if pid is not None else "")
    if lock["state"] == "none":
        return f"{kind}: stopped (no lock file)"
    return f"{kind}: lock unreadable ({lock.get('error', '?')})"
