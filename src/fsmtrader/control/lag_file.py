"""A summary of the push lag dashboards report (``POST /api/v1/lag``), kept in
``STATE_DIR/push_lag.json`` for ``fsmtrader preflight`` (the Prometheus histogram is gone
when the bot stops). Written whole (temp file + rename) from the web thread at each post
(the dashboard posts at most once a second), never from the engine's thread; a restart
adds to the figures already there."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("fsmtrader.control")

LAG_FILE = "push_lag.json"
LAG_BAR_MS = 200.0  # the acceptance bar: a transition visible within 200 ms
EDGES_MS: tuple[float, ...] = (10, 25, 50, 100, 150, 200, 300, 500, 1000, 5000)

__all__ = ["LAG_BAR_MS", "LAG_FILE", "LagFile", "LagSummary", "read_lag_summary"]


@dataclass
class LagSummary:
    """Counts of measured lags: in all, within the bar, and per bucket (``<= edge``; the
    last count is above every edge)."""

    samples: int = 0
    within_bar: int = 0
    max_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(EDGES_MS) + 1))
    updated_ms: int = 0

    def add(self, samples_ms: Sequence[float]) -> None:
        for ms in samples_ms:
            if not math.isfinite(ms):
                continue
            value = max(ms, 0.0)
            self.samples += 1
            self.within_bar += value <= LAG_BAR_MS
            self.max_ms = max(self.max_ms, value)
            self.buckets[next((i for i, e in enumerate(EDGES_MS) if value <= e), -1)] += 1

    @property
    def within_pct(self) -> float:
        return 100.0 * self.within_bar / self.samples if self.samples else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "within_bar": self.within_bar,
            "bar_ms": LAG_BAR_MS,
            "within_pct": round(self.within_pct, 3),
            "max_ms": self.max_ms,
            "edges_ms": list(EDGES_MS),
            "buckets": self.buckets,
            "updated_ms": self.updated_ms,
        }


def read_lag_summary(state_dir: Path) -> LagSummary | None:
    """The saved summary, or None when none was written (or it is not ours)."""
    try:
        data = json.loads((state_dir / LAG_FILE).read_text(encoding="utf-8"))
        buckets = [int(n) for n in data["buckets"]]
        if len(buckets) != len(EDGES_MS) + 1 or list(data["edges_ms"]) != list(EDGES_MS):
            return None
        return LagSummary(
            samples=int(data["samples"]),
            within_bar=int(data["within_bar"]),
            max_ms=float(data["max_ms"]),
            buckets=buckets,
            updated_ms=int(data.get("updated_ms", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class LagFile:
    """The summary of one state directory, saved now and then as lags arrive."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LAG_FILE
        self.summary = read_lag_summary(state_dir) or LagSummary()
        self._lock = threading.Lock()

    def add(self, samples_ms: Sequence[float]) -> None:
        """Count the samples and save the summary (a small file, written whole)."""
        with self._lock:
            self.summary.add(samples_ms)
            self._save()

    def _save(self) -> None:
        self.summary.updated_ms = int(time.time() * 1000)
        tmp = self.path.with_name(f".{LAG_FILE}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.summary.to_json()) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("%s: cannot save the push lag summary (%s)", self.path, exc)
