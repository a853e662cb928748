"""The one progress callback of every long job: a backtest, a session, a download."""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(done, total)``: how far a job has got, in its own unit (bars, ticks, ms of
#: candles); ``total`` is 0 when the job has no planned end (a live session). A display
#: that shows more (the engine's symbols) reads it from the session it drives.
Progress = Callable[[int, int], None]
