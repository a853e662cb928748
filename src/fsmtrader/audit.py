"""Publishing: transitions and order events go out once; writers and views subscribe.

A failing subscriber is counted and skipped, never allowed to stop trading.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
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


def _c_encoder() -> Callable[[Mapping[str, object]], str] | None:
    """The C encoder ``_CANONICAL.encode`` builds on every call, built once: a backtest
    writes a record per transition, order step and fill, and half a record's encoding
    went to rebuilding it (None where the accelerator is missing)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        encode = make(
            None, str, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True
        )
    except TypeError:  # (another signature: use the plain encoder)
        return None
    join = "".join
    return lambda record: join(encode(record, 0))


_FAST = _c_encoder()


def dumps(record: Mapping[str, object]) -> str:
    """Canonical JSON: sorted keys, no spaces, so the same run hashes the same."""
    if _FAST is not None:
        return _FAST(record)
    return _CANONICAL.encode(record)


class JsonlWriter:
    """Appends one JSON object per line and keeps a running SHA-256 of what it wrote.
    Lines are kept in memory up to ``BATCH`` at a time and written (and hashed) together:
    ``flush`` and ``close`` write them out, so a caller that flushes after each commit
    loses nothing it flushed."""

    BATCH = 256

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = path.open("a", encoding="utf-8", buffering=1 << 16)
        self._sha = hashlib.sha256()
        self._pending: list[str] = []
        self.lines = 0

    def __call__(self, record: Mapping[str, object]) -> None:
        if self._fh is None:
            return
        pending = self._pending
        pending.append(dumps(record))
        self.lines += 1
        if len(pending) >= self.BATCH:
            self._write_pending()

    def _write_pending(self) -> None:
        if self._fh is None or not self._pending:
            return
        text = "\n".join(self._pending) + "\n"
        self._pending.clear()
        self._fh.write(text)
        self._sha.update(text.encode())

    def flush(self) -> None:
        if self._fh is not None:
            self._write_pending()
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._write_pending()
            self._fh.close()
            self._fh = None

    @property
    def sha256(self) -> str:
        """The digest of every line so far (written out first)."""
        self._write_pending()
        return self._sha.hexdigest()


def align_mirror(path: Path, db_last: int) -> int:
    """Cut the JSONL mirror back to what the database holds; the last audit id left.

    The mirror is written after each commit, unsynced, and a commit under
    ``synchronous=NORMAL`` is durable only once the WAL is checkpointed: after a power cut
    the database can lose its last commits while the file keeps their lines, and the next
    commits would reuse those ids. Lines beyond the database (and a torn or unreadable
    tail) are moved to ``<name>.beyond-db`` for the operator, never silently dropped."""
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        tail = _last_line(fh)
        size = fh.tell()
    if not tail:
        return 0
    last = _id_of(tail) if tail.endswith(b"\n") else None
    if last is not None and last <= db_last:
        return last
    keep, last = _cut_point(path, db_last)
    with path.open("r+b") as fh:
        fh.seek(keep)
        beyond = fh.read()
        with path.with_name(path.name + ".beyond-db").open("ab") as out:
            out.write(beyond)
            out.flush()
            os.fsync(out.fileno())
        fh.truncate(keep)
    log.warning(
        "%s: %d byte(s) beyond the database's last audit id %d moved to %s.beyond-db",
        path,
        size - keep,
        db_last,
        path.name,
    )
    return last


def _cut_point(path: Path, db_last: int) -> tuple[int, int]:
    """(offset just after the last whole line within ``db_last``, that line's id)."""
    keep = last = 0
    with path.open("rb") as fh:
        for line in fh:
            audit_id = _id_of(line) if line.endswith(b"\n") else None
            if audit_id is None or audit_id > db_last:
                break
            keep += len(line)
            last = audit_id
    return keep, last


def _id_of(line: bytes) -> int | None:
    """The audit id of one mirror line; None for a torn or unreadable one."""
    try:
        return int(json.loads(line)["audit_id"])
    except (ValueError, KeyError, TypeError):
        return None


def _last_line(fh: IO[bytes]) -> bytes:
    """The file's last line (torn or not); leaves the position at the end."""
    fh.seek(0, 2)
    size = fh.tell()
    back = min(size, 1 << 16)
    fh.seek(size - back)
    lines = fh.read(back).splitlines(keepends=True)
    return lines[-1] if lines else b""


class MemorySink:
    """Keeps records in a list (tests, summaries)."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def __call__(self, record: Record) -> None:
        self.records.append(record)

    def of_kind(self, kind: str) -> list[Record]:
        return [r for r in self.records if r["kind"] == kind]
