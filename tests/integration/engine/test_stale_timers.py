"""A timeout armed in a phase the symbol has left (a max hold the take-profit beat) is
stale: ``Engine.next_due`` drops it, so no driver stops for it, and the live timer behind
it still fires at its own time, as before."""

from __future__ import annotations

from fsmtrader_testing.harness import BTC, MIN, Harness, settings

SYM = "BTC/USDT"


def held_then_sold(cooldown_min: int, max_hold_min: int) -> tuple[Harness, int, int]:
    """Enter, exit on take-profit one bar later; (harness, max-hold due, cooldown due)."""
    h = Harness(
        settings(
            market={"symbols": [SYM]},
            exit={"max_hold_min": max_hold_min, "cooldown_s": cooldown_min * 60},
        ),
        {SYM: BTC},
    )
    h.warm(SYM, 50_000.0)
    h.bar(SYM, 48_400.0)  # -3.2 %: bought
    assert h.phase(SYM) == "POSITION"
    entered = h.engine.portfolio.positions[SYM].entry_ms
    h.bar(SYM, 49_500.0)  # take-profit: the max hold timer is now stale
    assert h.phase(SYM) == "COOLDOWN"
    (cooling,) = [r["ts"] for r in h.sink.records if r["kind"] == "phase" and r["to"] == "COOLDOWN"]
    return h, entered + max_hold_min * MIN, cooling + cooldown_min * MIN


def test_a_stale_timer_is_not_due_and_the_live_one_fires_at_its_time() -> None:
    h, stale_at, live_at = held_then_sold(cooldown_min=60, max_hold_min=30)
    assert stale_at < live_at  # (the stale one is at the top of the heap)
    assert h.engine.next_due() == live_at
    h.advance(stale_at - h.ts)  # nothing runs at the stale time
    assert h.phase(SYM) == "COOLDOWN"
    h.advance(live_at - 1 - h.ts)
    assert h.phase(SYM) == "COOLDOWN"
    h.advance(1)
    assert h.phase(SYM) == "IDLE"
    idle = [r for r in h.sink.records if r["kind"] == "phase" and r["to"] == "IDLE"][-1]
    assert idle["ts"] == live_at and idle["from"] == "COOLDOWN"
    assert h.engine.next_due() is None  # (IDLE has no timeout)


def test_a_stale_timer_behind_a_live_one_stays_until_it_is_at_the_top() -> None:
    h, stale_at, live_at = held_then_sold(cooldown_min=5, max_hold_min=30)
    assert h.engine.next_due() == live_at < stale_at
    h.advance(live_at - h.ts)
    assert h.phase(SYM) == "IDLE"
    assert h.engine.next_due() is None  # the max hold went with the cooldown's pop
