"""The price path of a durable session: every price the engine (and its simulated exchange)
was fed, in order, with the session clock's time, so ``preflight`` can replay the session
through the backtest engine and compare the entry decisions (entry parity).

One JSON array per line in ``STATE_DIR/price_path.jsonl``, append-only:

- ``["r", now]``                      a start begins (the engine restored from its books)
- ``["p", sym, [[ts, close, vol]...]]``  the anchor primed from history (warm-up)
- ``["s", ts, sym, close, vol]``      the signal fed a bar it saw before the restart
- ``["g", ts, sym, high, low, close, vol]``  a bar fed to the exchange and the signal only
  (the market moved while the bot was down)
- ``["m", ts, sym, high, low, close, vol]``  a bar fed to the exchange only
- ``["v", now]``                      the start's recovery (router, timers, reconcile)
- ``["b", ts, sym, high, low, close, vol, now]``  a bar stepped through the engine
- ``["t", now]``                      timers due by ``now`` ran

Every row ends with two lists: the engine clock's readings made while it ran, and the
simulated exchange's (``[], []`` mostly). Both are given recording clocks, so a replay
can answer each ``now_ms()`` as the session did: every deadline the engine arms and every
fill's timestamp (a position's max hold counts from it) fall where the session's fell (a
paper session's clock moves on while a bar is processed; a bar-level replay would drift).
The readings of construction belong to the start's ``r`` row; readings after a row's
action (stuck checks, controls) come last in it and a replay drops them.

Crash-tolerant: lines are written whole and flushed once per loop round; a reader stops
at a torn last line (what a crash cut).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from fsmtrader.clock import Clock

log = logging.getLogger("fsmtrader.price_path")

PRICE_PATH_FILE = "price_path.jsonl"
# json.dumps with its separators builds an encoder per call: one, built once
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

__all__ = ["PRICE_PATH_FILE", "PricePath", "RecordingClock", "read_price_path"]


class RecordingClock:
    """The engine's clock: the session's own, each reading kept for the price path."""

    def __init__(self, inner: Clock, reads: list[int]) -> None:
        self.inner = inner
        self._reads = reads

    def now_ms(self) -> int:
        ms = self.inner.now_ms()
        self._reads.append(ms)
        return ms


class PricePath:
    """The appending side. A failing disk never stops trading: the path is evidence for
    preflight, not state, so a write error is logged once and recording stops (preflight
    then finds the path shorter than the session and says so)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / PRICE_PATH_FILE
        self._fh: IO[str] | None = None  # opened at the first write (a refusal writes none)
        self._broken = False
        self._lines: list[str] = []
        self._row: list[Any] | None = None  # the row whose action runs now
        self._reads: list[int] = []  # engine clock readings since that row began
        self._xreads: list[int] = []  # the exchange's
        self._first = True

    def clock(self, inner: Clock) -> Clock:
        """The clock to give the engine (its readings go into the rows)."""
        return RecordingClock(inner, self._reads)

    def exchange_clock(self, inner: Clock) -> Clock:
        """The clock to give the simulated exchange (its readings go into the rows)."""
        return RecordingClock(inner, self._xreads)

    def _add(self, row: list[Any]) -> None:
        if self._broken:
            return
        self._end_row()
        # the first row of a process also holds the readings of construction; any other
        # readings outside a row (stuck checks, controls) are not replayed
        first = self._first
        row += [list(self._reads) if first else [], list(self._xreads) if first else []]
        self._first = False
        self._reads.clear()
        self._xreads.clear()
        self._row = row

    def _end_row(self) -> None:
        row = self._row
        if row is not None:
            row[-2].extend(self._reads)
            row[-1].extend(self._xreads)
            self._reads.clear()
            self._xreads.clear()
            self._lines.append(_line(row))
            self._row = None

    def restart(self, now: int) -> None:
        self._add(["r", now])

    def prime(self, symbol: str, rows: Sequence[tuple[int, float, float]]) -> None:
        self._add(["p", symbol, [list(r) for r in rows]])

    def signal(self, ts: int, symbol: str, close: float, vol: float) -> None:
        self._add(["s", ts, symbol, close, vol])

    def gap(self, ts: int, symbol: str, high: float, low: float, close: float, vol: float) -> None:
        self._add(["g", ts, symbol, high, low, close, vol])

    def market(
        self, ts: int, symbol: str, high: float, low: float, close: float, vol: float
    ) -> None:
        self._add(["m", ts, symbol, high, low, close, vol])

    def recover(self, now: int) -> None:
        self._add(["v", now])

    def bar(
        self, ts: int, symbol: str, high: float, low: float, close: float, vol: float, now: int
    ) -> None:
        self._add(["b", ts, symbol, high, low, close, vol, now])

    def timers(self, now: int, due: int | None) -> None:
        """Timers run at ``now``: recorded only when one was due (most rounds fire none)."""
        if due is not None and due <= now:
            self._add(["t", now])

    def flush(self) -> None:
        """End the row running now and write the rows (once per loop round)."""
        self._end_row()
        if self._broken or not self._lines:
            return
        try:
            if self._fh is None:
                _cut_torn_tail(self.path)
                self._fh = self.path.open("a", encoding="utf-8")
            self._fh.write("".join(self._lines))
            self._fh.flush()
        except OSError as exc:
            log.warning("%s: price path recording stopped (%s)", self.path, exc)
            self._broken = True
        self._lines.clear()

    def close(self) -> None:
        self.flush()
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError as exc:
                log.warning("%s: closing the price path failed (%s)", self.path, exc)


def _line(row: list[Any]) -> str:
    return _ENCODE(row) + "\n"


def _cut_torn_tail(path: Path) -> None:
    """A crash may have cut the last line: drop it, so the next line starts clean."""
    if not path.exists():
        return
    with path.open("rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


def read_price_path(path: Path) -> Iterator[list[Any]]:
    """The rows of a recorded path, stopping at a torn or unreadable last line."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                return
            try:
                row = json.loads(line)
            except ValueError:
                return
            if not isinstance(row, list) or not row:
                return
            yield row
