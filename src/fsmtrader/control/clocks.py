"""The session's "now" for a database read from outside the bot (``fsmtrader status``, a
table beside it): a paper session trades in accelerated simulated time, so the time a
symbol has spent in its phase is measured on that clock, not on the wall."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

from fsmtrader.clock import WallClock
from fsmtrader.session import SessionInfo


def session_info(meta: Mapping[str, str]) -> SessionInfo | None:
    """The paper session's clock origin and speed (engine meta ``session``), if any."""
    raw = meta.get("session")
    if not raw:
        return None
    try:
        return SessionInfo(**json.loads(raw))
    except (ValueError, TypeError):
        return None  # not a paper session's record: wall time


def session_clock(meta: Mapping[str, str]) -> Callable[[], int]:
    """``now_ms()`` of the session whose engine meta is ``meta``: a paper session's
    simulated clock (it runs on while the bot is down, as the session's market does, and
    stops at the session's end, as its trading does); wall time for every other kind."""
    info = session_info(meta)
    if info is None:
        return lambda: int(time.time() * 1000)
    clock = WallClock(info.speed, origin_ms=info.start_sim_ms, origin_wall_s=info.start_wall_s)
    end = info.end_ms
    return lambda: min(clock.now_ms(), end)


def session_now_ms(meta: Mapping[str, str]) -> int:
    return session_clock(meta)()
