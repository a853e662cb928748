"""The push stream (Server-Sent Events) of a real paper session on a real uvicorn: records
arrive in commit order, equal to the audit trail; a client resumes from an id (query or
``Last-Event-ID``) with no gap and no duplicate, from the feed's ring or from the database
when the ring does not reach back; idle streams get heartbeats; and a client that never
reads is dropped without slowing the engine (decisions per second printed with and
without it)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fsmtrader_testing.api_session import LiveApi, serve_session

pytestmark = pytest.mark.timeout(120)


def sse(c: httpx.Client, path: str, **headers: str) -> Iterator[dict[str, Any]]:
    """The events of a stream (``{"id", "event", "data"}``, or ``{"comment"}``)."""
    with c.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        for line in r.iter_lines():
            if line == "":
                if event:
                    yield event
                event = {}
            elif line.startswith(":"):
                yield {"comment": line[1:].strip()}
            else:
                name, _, value = line.partition(": ")
                event[name] = json.loads(value) if name == "data" else value


def take(events: Iterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    got = []
    for ev in events:
        if "data" in ev:
            got.append(ev)
            if len(got) >= n:
                break
    return got


def audit_of(state: Path) -> dict[int, dict[str, Any]]:
    rows = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    return {r.pop("audit_id"): r for r in rows}


def check_matches_audit(events: list[dict[str, Any]], state: Path) -> None:
    """Ids strictly increase with no gap from 1, and every record is the audit's."""
    ids = [int(ev["id"]) for ev in events]
    assert ids == list(range(1, len(ids) + 1))
    audit = audit_of(state)
    for ev in events:
        assert ev["event"] == "record" and ev["data"]["id"] == int(ev["id"])
        assert ev["data"]["record"] == audit[int(ev["id"])]
    phases = [ev["data"]["record"] for ev in events if ev["data"]["record"]["kind"] == "phase"]
    by_symbol: dict[str, list[int]] = {}
    for p in phases:
        by_symbol.setdefault(p["symbol"], []).append(p["seq"])
    assert all(seqs == sorted(seqs) for seqs in by_symbol.values())  # transitions in order


def test_stream_in_commit_order_and_resumed_without_gap_or_duplicate(tmp_path: Path) -> None:
    got: dict[str, list[dict[str, Any]]] = {}

    def script(api: LiveApi) -> None:
        with api.client() as c:
            first = take(sse(c, "/api/v1/stream?after=0"), 80)
            last = first[-1]["id"]
            # a browser's reconnect: Last-Event-ID wins over the address's ?after=
            second = take(sse(c, "/api/v1/stream?after=0", **{"Last-Event-ID": last}), 80)
            third = take(sse(c, f"/api/v1/stream?after={second[-1]['id']}"), 40)
            at = c.get("/api/v1/health").json()["last_id"]
            live = take(sse(c, "/api/v1/stream"), 5)  # no id: the live tail only
            got.update(first=first, second=second, third=third, live=live)
            got["at"] = [{"id": at}]
            bad = c.get("/api/v1/stream", headers={"Last-Event-ID": "x"})
            assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["message"]
            assert c.get("/api/v1/stream?after=-1").status_code == 422

    with serve_session(tmp_path / "state", speed=3600) as api:
        api.run(script, limit_s=40)
        state = api.session.state_dir
    events = got["first"] + got["second"] + got["third"]
    check_matches_audit(events, state)
    live = got["live"]
    assert int(live[0]["id"]) > got["at"][0]["id"]
    assert all("replay" not in ev["data"] and ev["data"]["committed_ms"] > 0 for ev in live)
    assert got["first"][0]["data"]["replay"] is True  # committed before the client came


def test_replay_from_the_database_then_the_ring_and_heartbeats(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with serve_session(state, speed=3600) as api:
        api.run(lambda api: time.sleep(1.5), limit_s=5)
        first_run = api.plane.feed.last_id()
    assert first_run > 10
    # The bot again: its ring starts after what the first run committed.
    with serve_session(state, speed=3600, heartbeat_s=0.2) as api:
        assert api.plane.feed.since(0) is None  # only the database has those
        api.run(lambda api: time.sleep(0.5), limit_s=5)  # and a few records in the ring
        assert api.plane.feed.since(first_run)
        with api.client() as c:
            events, beats = [], 0
            for ev in sse(c, "/api/v1/stream?after=0"):
                if "data" in ev:
                    events.append(ev)
                elif ev.get("comment") == "heartbeat":
                    beats += 1
                    if beats == 2:  # everything replayed: nothing commits now
                        break
        last = api.plane.feed.last_id()
    check_matches_audit(events, state)
    assert int(events[-1]["id"]) == last > first_run
    from_db = [ev for ev in events if int(ev["id"]) <= first_run]
    assert from_db and all(ev["data"]["committed_ms"] is None for ev in from_db)
    assert all(ev["data"]["replay"] is True for ev in events)


def stalled_client(port: int, token: str) -> socket.socket:
    """A push client that sends its request and never reads (a small receive buffer, so
    the server's writes back up quickly)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET /api/v1/stream?after=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    return sock


def cut(sock: socket.socket, limit_s: float = 5.0) -> bool:
    """The server closed or reset the connection (reading what was buffered first)."""
    sock.settimeout(limit_s)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def run_measured(tmp: Path, *, stalled: bool) -> dict[str, Any]:
    """A 24-hour paper session played in ~4 s: bars per second of engine time (the wall
    time the loop was not waiting for the market clock)."""
    hours, wall_s = 24.0, 4.0
    with serve_session(tmp, hours=hours, speed=hours * 3600 / wall_s, stream_queue=10) as api:
        sock = stalled_client(api.plane.server.port, api.token) if stalled else None
        idle = [0.0]
        wait = api.session.idle

        def timed_idle(seconds: float) -> None:
            t0 = time.perf_counter()
            wait(seconds)
            idle[0] += time.perf_counter() - t0

        api.session.idle = timed_idle  # type: ignore[method-assign]
        bars = [0]
        started = time.perf_counter()
        api.session.run(
            stop_after_s=30, poll_s=0.005, progress=lambda n, _t: bars.__setitem__(0, n)
        )
        wall = time.perf_counter() - started
        busy = wall - idle[0]
        with api.client() as c:
            metrics = c.get("/metrics").text
        result = {
            "bars": bars[0],
            "total": sum(len(c) for c in api.session.series),
            "records": api.plane.feed.last_id(),
            "busy_s": busy,
            "bars_per_s": bars[0] / busy,
            "dropped": api.hub.dropped,
            "clients": len(api.hub.clients),
            "metrics": metrics,
            "cut": cut(sock) if sock is not None else None,
        }
        if sock is not None:
            sock.close()
    return result


def test_a_stalled_client_is_dropped_and_does_not_stall_trading(tmp_path: Path) -> None:
    alone = run_measured(tmp_path / "alone", stalled=False)
    stalled = run_measured(tmp_path / "stalled", stalled=True)
    print(
        f"\nengine decisions (bars) per second of engine time, 24 h of 4 symbols: "
        f"no client {alone['bars_per_s']:.0f}/s ({alone['bars']} bars, {alone['records']} "
        f"records in {alone['busy_s']:.2f} s); a stalled push client "
        f"{stalled['bars_per_s']:.0f}/s ({stalled['bars']} bars, {stalled['records']} "
        f"records in {stalled['busy_s']:.2f} s), dropped {stalled['dropped']}"
    )
    for run in (alone, stalled):
        assert run["bars"] == run["total"]  # the engine got through every bar
    assert alone["dropped"] == 0
    assert stalled["dropped"] == 1 and stalled["clients"] == 0
    assert stalled["cut"] is True  # its connection was closed, not left hanging
    dropped = [
        s.value
        for fam in text_string_to_metric_families(stalled["metrics"])
        for s in fam.samples
        if s.name == "fsmtrader_stream_dropped_total"
    ]
    assert dropped == [1.0]
