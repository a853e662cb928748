"""The two things that cross from the engine's thread to the web side and back: the feed
of committed records (bounded, resumable from an id, its listeners unable to fail a
commit) and the control desk (any thread submits, the engine's thread runs)."""

from __future__ import annotations

import threading
from typing import Any

from fsmtrader.control.desk import ControlDesk, ControlResult
from fsmtrader.control.feed import FeedItem, RecordFeed
from fsmtrader.errors import FsmTraderError
from fsmtrader.state.records import Record


def rec(i: int) -> Record:
    return {"kind": "halt", "ts": i, "reason": f"r{i}"}


def test_the_feed_keeps_a_bounded_ring_and_says_when_it_cannot_reach_back() -> None:
    feed = RecordFeed(keep=3, start_after=10)
    assert feed.since(10) == [] and feed.last_id() == 10
    assert feed.since(9) is None  # id 10 is only in the database
    feed.on_committed([(11, rec(11)), (12, rec(12))])
    feed.on_committed([(13, rec(13)), (14, rec(14))])
    assert feed.last_id() == 14
    assert [i.id for i in feed.since(11) or []] == [12, 13, 14]
    assert feed.since(10) is None  # 11 fell out of the ring
    assert feed.since(14) == []
    item = feed.since(13)
    assert item is not None and item[0].to_json()["record"]["reason"] == "r14"


def test_a_failing_listener_is_counted_and_the_others_still_hear() -> None:
    feed = RecordFeed()
    heard: list[list[FeedItem]] = []

    def broken(items: list[FeedItem]) -> None:
        raise RuntimeError("boom")

    feed.listen(broken)
    feed.listen(heard.append)
    feed.on_committed([(1, rec(1))])
    assert feed.failures == 1 and len(heard) == 1
    first = heard[0][0]
    assert first.id == 1 and first.committed_ms > 1e12  # wall clock, epoch ms


def test_controls_run_in_the_serving_thread_in_order() -> None:
    desk = ControlDesk()
    ran: list[tuple[str, str, str]] = []

    def runner(action: str, args: Any, who: str) -> ControlResult:
        ran.append((action, args.get("symbol", ""), threading.current_thread().name))
        if action == "recover":
            raise FsmTraderError("recover: BTC/USDT is in IDLE, not in ERROR")
        if action == "reconcile":
            raise ValueError("a bug")
        return ControlResult(200, "done")

    futures = []
    t = threading.Thread(
        target=lambda: futures.extend(
            desk.submit(a, {"symbol": "BTC/USDT"}, "test")
            for a in ("stopentry", "recover", "reconcile", "fly")
        ),
        name="web",
    )
    t.start()
    t.join()
    desk.wait(1.0)  # woken at once by the submissions
    assert desk.serve(runner) == 3
    results = [f.result(timeout=1) for f in futures]
    assert [r.status for r in results] == [200, 409, 500, 400]
    assert "not in ERROR" in results[1].message and "unknown control" in results[3].message
    assert {name for *_, name in ran} == {threading.current_thread().name}


def test_a_closed_desk_answers_queued_and_new_controls_with_503() -> None:
    desk = ControlDesk()
    queued = desk.submit("stopentry", {}, "test")
    desk.close()
    later = desk.submit("resume", {}, "test")
    assert queued.result(timeout=1).status == 503
    assert later.result(timeout=1).status == 503
    assert desk.serve(lambda *a: ControlResult(200, "never")) == 0
