"""Publishing: transitions and order events go out once; writers and views subscribe.

A failing subscriber is counted and skipped, never allowed to stop trading.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from fsmtrader.state.records import Record

log = logging.getLogger("fsmtrader.audit")

Subscriber = Callable[[Record], None]


class EventBus:
    __slots__ = ("_subs", "failures")

    def __init__(self) -> None:
        self._subs: list[Subscriber] = []
        self.failures = 0

    def subscribe(self, fn: Subscriber) -> None:
        self._subs.append(fn)

    def publish(self, record: Record) -> None:
        for fn in self._subs:
            try:
                fn(record)
            except Exception:  # a subscriber must never break the engine
                self.failures += 1
                if self.failures <= 10:
                    log.exception("audit subscriber %r failed", fn)


# One encoder for every record (json.dumps with options builds a new one per call); a
# record is flat values, so there is no cycle to look for.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), default=str, check_circular=False
)


def dumps(record: Mapping[str, object]) -> str:
    """Canonical JSON: sorted keys, no spaces, so the same run hashes the same."""
    return _CANONICAL.encode(record)


class JsonlWriter:
    """Appends one JSON object per line and keeps a running SHA-256 of what it wrote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = path.open("a", encoding="utf-8", buffering=1 << 16)
        self._sha = hashlib.sha256()
        self.lines = 0

    def __call__(self, record: Mapping[str, object]) -> None:
        if self._fh is None:
            return
        line = dumps(record) + "\n"
        self._fh.write(line)
        self._sha.update(line.encode())
        self.lines += 1

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class MemorySink:
    """Keeps records in a list (tests, summaries)."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def __call__(self, record: Record) -> None:
        self.records.append(record)

    def of_kind(self, kind: str) -> list[Record]:
        return [r for r in self.records if r["kind"] == kind]
