"""``STATE_DIR/api.json``: where a running bot's API listens (host, port, pid; never the
token), written by the control plane, read by ``fsmtrader status`` and ``fsmtrader
control``. Light on purpose: reading it imports no web framework."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

API_FILE = "api.json"


@dataclass(frozen=True)
class ApiAddress:
    host: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def write_api_file(state_dir: Path, address: ApiAddress) -> None:
    """Whole or not at all: a reader never sees half a file."""
    path = state_dir / API_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(address)) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_api_file(state_dir: Path) -> ApiAddress | None:
    """The address in ``api.json``; None when there is none. ValueError when the file is
    there but is not one (its path in the message)."""
    path = state_dir / API_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return ApiAddress(str(info["host"]), int(info["port"]), int(info["pid"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: not a bot's API file (host, port, pid)") from None


def remove_api_file(state_dir: Path, pid: int) -> None:
    """Remove ``api.json`` if ``pid`` wrote it (another bot may own the directory now)."""
    try:
        address = read_api_file(state_dir)
    except ValueError:
        return
    if address is not None and address.pid == pid:
        (state_dir / API_FILE).unlink(missing_ok=True)
