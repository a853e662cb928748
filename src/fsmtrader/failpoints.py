"""Named crash points for the crash-torture harness.

``FSMTRADER_CRASH_AT=name:n`` makes the process SIGKILL itself the n-th time it passes the
point ``name`` (e.g. between an intent's commit and the exchange call). Unset, a failpoint
costs one dict lookup. This is how the harness hits the narrow windows a random kill
rarely lands in.
"""

from __future__ import annotations

import os
import signal

_target: tuple[str, int] | None = None
_counts: dict[str, int] = {}


def _parse(spec: str) -> tuple[str, int] | None:
    name, _, n = spec.partition(":")
    if not name:
        return None
    try:
        return name, max(int(n or "1"), 1)
    except ValueError:
        return None


def configure(spec: str | None) -> None:
    global _target
    _counts.clear()
    _target = _parse(spec) if spec else None


def hit(name: str) -> None:
    if _target is None or _target[0] != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)


configure(os.environ.get("FSMTRADER_CRASH_AT"))
