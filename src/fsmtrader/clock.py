"""Clocks are plugs: the core asks a clock for the time and never reads time.time() itself."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SimClock:
    """A clock the driver moves; backtests jump it from event to event."""

    __slots__ = ("_ms",)

    def __init__(self, start_ms: int = 0) -> None:
        self._ms = start_ms

    def now_ms(self) -> int:
        return self._ms

    def set(self, ms: int) -> None:
        if ms < self._ms:
            raise ValueError(f"clock cannot go back: {ms} < {self._ms}")
        self._ms = ms

    def advance(self, ms: int) -> None:
        self._ms += ms


class WallClock:
    """Wall-clock time, optionally accelerated (paper demo) from a fixed origin."""

    def __init__(self, speed: float = 1.0) -> None:
        self._speed = speed
        self._origin_wall = time.time()
        self._origin_mono = time.monotonic()

    def now_ms(self) -> int:
        elapsed = (time.monotonic() - self._origin_mono) * self._speed
        return int((self._origin_wall + elapsed) * 1000)
