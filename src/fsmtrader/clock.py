"""Clocks are plugs: the core asks a clock for the time and never reads time.time() itself.

Two kinds: a :class:`SimClock` the driver moves (backtests, tests) and a :class:`WallClock`
that runs by itself, at wall speed (live) or accelerated from a saved origin (paper).
"""

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
    """Wall-clock time, ``speed`` times faster than the wall from an origin: simulated
    ``origin_ms`` at wall time ``origin_wall_s`` (both default to now, i.e. plain wall
    time). A session saves its origin, so its simulated time keeps running while the
    process is down. Within one process time advances by the monotonic clock, so a step of
    the system clock cannot move it backwards."""

    def __init__(
        self,
        speed: float = 1.0,
        *,
        origin_ms: int | None = None,
        origin_wall_s: float | None = None,
    ) -> None:
        wall = time.time()
        self._mono0 = time.monotonic()
        self._speed = speed
        if origin_ms is None:
            self._base_ms = wall * 1000
        else:
            since = wall - (wall if origin_wall_s is None else origin_wall_s)
            self._base_ms = origin_ms + since * speed * 1000

    def now_ms(self) -> int:
        return int(self._base_ms + (time.monotonic() - self._mono0) * self._speed * 1000)
