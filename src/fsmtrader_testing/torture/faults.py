"""Wire faults at a rate, queued from the torture through the server's ``POST /__sim/fault``.

The server answers the next matching request with the fault. The driver keeps one fault
pending at a time (withdrawn after 10 s if its endpoint is not called); once the server
has used it, the driver counts it (by kind) and draws
the gap to the next: a geometric number of new orders on the exchange with mean
``1 / rate``. So ``--fault-rate R`` means about R injected faults per order the bot
creates, spread over the order endpoints (create, query, cancel, open orders, trades)
and the price polls.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fsmtrader_testing.torture.server import SimServer

#: Seconds a queued fault may wait for its endpoint before it is withdrawn.
STALE_S = 10.0
ORDER = "POST /api/v3/order"
QUERY = "GET /api/v3/order"
CANCEL = "DELETE /api/v3/order"

#: (endpoint, kind, extra fields): what can go wrong where. ``timeout_after`` executes
#: the request and loses the answer; ``not_found`` on a query is the visibility lag.
CHOICES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (ORDER, "timeout_after", {}),
    (ORDER, "timeout_after", {"delay_s": 2.5}),  # past the bot's 2 s timeout
    (ORDER, "timeout_before", {}),
    (ORDER, "rate_limit", {"retry_after_s": 1}),
    (ORDER, "unavailable", {}),
    (ORDER, "error", {"status": 500}),
    (QUERY, "reject", {"reason": "not_found"}),
    (QUERY, "timeout_before", {}),
    (QUERY, "unavailable", {}),
    (CANCEL, "timeout_after", {}),
    (CANCEL, "rate_limit", {"retry_after_s": 1}),
    (CANCEL, "error", {"status": 502}),
    ("GET /api/v3/openOrders", "unavailable", {}),
    ("GET /api/v3/myTrades", "timeout_before", {}),
    ("GET /api/v3/allOrders", "error", {"status": 500}),
    ("GET /api/v3/ticker/24hr", "rate_limit", {"retry_after_s": 1}),
    ("GET /api/v3/account", "unavailable", {}),
)


def kind_name(endpoint: str, kind: str, extra: dict[str, Any]) -> str:
    """How a fault is counted: its kind, "not_found" for a rejected query, "+stall" when
    the answer comes after the client's timeout."""
    name = extra.get("reason", kind) if kind == "reject" else kind
    return f"{name}+stall" if extra.get("delay_s") else name


@dataclass
class FaultDriver:
    """Queues faults on ``server`` at ``rate`` per order, in a thread, until stopped."""

    server: SimServer
    rate: float
    seed: int
    injected: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> FaultDriver:
        if self.rate > 0:
            self._thread = threading.Thread(target=self._loop, name="faults", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop queueing and withdraw the pending fault (it was never injected)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.server.clear_faults()

    def _loop(self) -> None:
        rng = random.Random(self.seed)
        pending: str | None = None
        queued_at = 0.0
        due = self._orders() + self._gap(rng)
        while not self._stop.wait(0.3):
            try:
                state = self.server.state()
                if pending is not None and int(state["faults_pending"]) == 0:
                    self.injected[pending] += 1
                    pending = None
                    due = len(state["orders"]) + self._gap(rng)
                elif pending is not None and time.monotonic() - queued_at > STALE_S:
                    # nobody called that endpoint: withdraw it (unless it just went)
                    if self.server.clear_faults() == 0:
                        self.injected[pending] += 1
                    pending = None
                if pending is None and len(state["orders"]) >= due:
                    endpoint, kind, extra = rng.choice(CHOICES)
                    self.server.fault(endpoint, kind, **extra)
                    pending, queued_at = kind_name(endpoint, kind, extra), time.monotonic()
            except OSError:  # the server is busy: try again next tick
                continue

    def _orders(self) -> int:
        return len(self.server.state()["orders"])

    def _gap(self, rng: random.Random) -> int:
        """New orders until the next fault: geometric with mean 1/rate (0 = next one)."""
        p = min(self.rate, 1.0)
        n = 0
        while rng.random() > p:
            n += 1
        return n
