"""The local server's clock: the host's wall clock, as a real venue's is its own NTP
time, never running backwards.

Clients stamp signed requests with ``time.time()``; a clock counted from the monotonic
clock since the server started drifts from that whenever the host's clock is adjusted
(seen on CI machines: a step of about a second made a correct request "1000ms ahead of
the server's time"). Following the host's clock, and holding still when it steps back,
keeps the server's timestamp checks about the client, as on the venue."""

from __future__ import annotations

import threading
import time


class HostClock:
    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        now = int(time.time() * 1000)
        with self._lock:
            if now > self._last:
                self._last = now
            return self._last
