"""When each bot run dies: a pure function of the seed, so a failing seed replays.

Half the runs die at a failpoint (``FSMTRADER_CRASH_AT``: after an intent's commit before
the exchange call, or after the exchange's answer before our commit), the others by a
SIGKILL at a random moment: most after the bot said it is trading, some during start-up
(while it resolves and reconciles).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

POINTS = ("after_intent_commit", "after_exchange_answer")


@dataclass(frozen=True, slots=True)
class Kill:
    """One run's death: a failpoint (``point:n``) or a delay; ``early`` counts the delay
    from the launch (start-up), else from the bot's "trading" line."""

    crash_at: str | None
    delay_s: float
    early: bool = False

    def describe(self) -> str:
        where = self.crash_at or ("start-up" if self.early else "random")
        return f"{where} after {self.delay_s:.2f}s"


def kill_schedule(seed: int, kills: int, *, live: bool, pace: float = 1.0) -> list[Kill]:
    """``kills`` deaths for the seed. A failpoint run is SIGKILLed anyway when the point
    is not reached within its delay (the bot may have had nothing to send). ``pace``
    stretches the live delays for a venue whose client is slower per poll."""
    rng = random.Random(seed)
    return [_live_kill(rng, pace) if live else _paper_kill(rng) for _ in range(kills)]


def _paper_kill(rng: random.Random) -> Kill:
    """The paper torture's schedule, draw for draw as it always was (seeds replay)."""
    crash_at = None
    if rng.random() < 0.5:
        crash_at = f"{rng.choice(POINTS)}:{rng.randint(1, 4)}"
    delay = rng.uniform(0.4, 2.0)
    return Kill(crash_at, delay + (2.0 if crash_at else 0.0), early=True)


def _live_kill(rng: random.Random, pace: float) -> Kill:
    """Live: delays count from the "trading" line (start-up takes seconds), a fifth of
    the random kills land in start-up itself. Long enough for a few polls even on MEXC,
    whose request weights make the client pace itself (a poll round takes seconds)."""
    if rng.random() < 0.5:
        point = f"{rng.choice(POINTS)}:{rng.randint(1, 4)}"
        return Kill(point, pace * rng.uniform(8.0, 14.0))
    if rng.random() < 0.2:
        return Kill(None, rng.uniform(0.5, 4.0), early=True)
    return Kill(None, pace * rng.uniform(1.0, 8.0))
