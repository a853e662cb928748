"""One bot per state directory: an exclusive lock the kernel drops when the process dies
(even by SIGKILL), so a crash never leaves a stale lock behind."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from fsmtrader.errors import StoreError

LOCK_FILE = "fsmtrader.lock"


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / LOCK_FILE
        self._fh: IO[str] | None = None

    def acquire(self) -> StateLock:
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            where = self.path.parent
            raise StoreError(
                f"{where}: another fsmtrader (pid {holder}) is using this state directory; "
                f"refusing to start a second one (to watch it: fsmtrader status --state-dir "
                f"{where}; to steer it: fsmtrader control ... --state-dir {where}, with [api] on)"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
