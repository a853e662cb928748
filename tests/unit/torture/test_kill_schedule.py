"""The torture's kill schedule: a pure function of the seed (a failing seed replays),
half the runs at a failpoint, and the paper torture's draws exactly as they always were."""

from __future__ import annotations

import random

from fsmtrader_testing.torture.schedule import POINTS, Kill, kill_schedule


def old_paper_schedule(seed: int, kills: int) -> list[tuple[str | None, float]]:
    """The draws of scripts/crash_torture.py before the torture became a package."""
    rng = random.Random(seed)
    out = []
    for _ in range(kills):
        crash_at = None
        if rng.random() < 0.5:
            crash_at = f"{rng.choice(POINTS)}:{rng.randint(1, 4)}"
        delay = rng.uniform(0.4, 2.0)
        out.append((crash_at, delay + (2.0 if crash_at else 0.0)))
    return out


def test_the_paper_schedule_replays_the_old_seeds() -> None:
    for seed in (1, 3, 7):
        got = [(k.crash_at, k.delay_s) for k in kill_schedule(seed, 20, live=False)]
        assert got == old_paper_schedule(seed, 20)
        assert all(k.early for k in kill_schedule(seed, 20, live=False))


def test_live_schedule_is_the_seeds_and_mixes_failpoints_random_and_start_up_kills() -> None:
    a = kill_schedule(5, 200, live=True)
    assert a == kill_schedule(5, 200, live=True)
    assert a != kill_schedule(6, 200, live=True)
    points = [k for k in a if k.crash_at]
    early = [k for k in a if k.early]
    assert 70 <= len(points) <= 130
    assert {p.crash_at.split(":")[0] for p in points if p.crash_at} == set(POINTS)
    assert early and all(k.crash_at is None for k in early)


def test_pace_stretches_only_the_kills_after_start_up() -> None:
    slow, fast = kill_schedule(2, 50, live=True, pace=2.5), kill_schedule(2, 50, live=True)
    for s, f in zip(slow, fast, strict=True):
        assert s.crash_at == f.crash_at and s.early == f.early
        assert s.delay_s == (f.delay_s if f.early else 2.5 * f.delay_s)
    assert Kill("after_intent_commit:2", 9.0).describe() == "after_intent_commit:2 after 9.00s"
