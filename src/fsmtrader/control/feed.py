"""Committed records for the web side: the engine thread hands over each commit's batch,
stamped with when the commit returned; readers get what came after an id.

The ring is bounded (older records are in the database's audit table) and the listeners
are called in the engine thread, so each must return at once: the API only schedules its
own work on its event loop, metrics only increments counters."""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fsmtrader.state.records import Record

log = logging.getLogger("fsmtrader.control")


@dataclass(frozen=True, slots=True)
class FeedItem:
    id: int  # the audit id (audit.jsonl's "audit_id")
    committed_ms: float  # wall clock, epoch ms, when the commit returned
    record: Record

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "committed_ms": self.committed_ms, "record": self.record}


Listener = Callable[[list[FeedItem]], None]


class RecordFeed:
    def __init__(self, keep: int = 10_000, *, start_after: int = 0) -> None:
        """``start_after``: the last audit id committed before the feed was attached
        (only the database has those)."""
        self._start_after = start_after
        self._ring: deque[FeedItem] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self.failures = 0

    def listen(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def on_committed(self, batch: list[tuple[int, Record]]) -> None:
        """A ``SqliteStore.on_committed`` hook (engine thread): stamp, keep, tell."""
        now = time.time() * 1000
        items = [FeedItem(audit_id, now, record) for audit_id, record in batch]
        with self._lock:
            self._ring.extend(items)
        for fn in self._listeners:
            try:
                fn(items)
            except Exception:  # a listener must never fail a commit
                self.failures += 1
                if self.failures <= 10:
                    log.exception("record feed listener %r failed", fn)

    def since(self, after_id: int) -> list[FeedItem] | None:
        """Everything after ``after_id``; None when the ring no longer reaches back that
        far (the caller reads the audit table instead)."""
        with self._lock:
            ring = list(self._ring)
        first = ring[0].id if ring else self._start_after + 1
        if after_id < first - 1:
            return None
        if not ring:
            return []
        ids = [item.id for item in ring]
        return ring[bisect_right(ids, after_id) :]

    def last_id(self) -> int:
        with self._lock:
            return self._ring[-1].id if self._ring else self._start_after
