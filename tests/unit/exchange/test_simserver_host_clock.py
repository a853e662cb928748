"""The local server tells time as the host does (a venue's clock is its own NTP time), so
its timestamp check judges the client's request, not the server's own drift."""

from __future__ import annotations

import time

from fsmtrader_testing.simserver.host_clock import HostClock


def test_the_server_clock_is_the_hosts_and_never_runs_back() -> None:
    clock = HostClock()
    readings = []
    for _ in range(1000):
        before = int(time.time() * 1000)
        now = clock.now_ms()
        after = int(time.time() * 1000)
        assert before <= now <= after
        readings.append(now)
    assert readings == sorted(readings)
