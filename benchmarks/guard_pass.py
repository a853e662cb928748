"""What the rollout guard (kill switch + loss breakers) costs per service pass.

A durable session calls ``Guard.service`` on every loop pass (every ~20 ms in paper, each
poll round live) and every 500 bars of a catch-up, so its cost is paid all the time. This
opens a real paper session (four symbols, a few positions held after a short run), then
times ``Guard.service`` alone in three states of the state directory: no STOP file (the
usual case: one failed ``os.stat``), a plain STOP file (a stat, nothing changes), and a
STOP file with ``flatten`` and nothing held. Prints microseconds per pass (median of
rounds). Run from the repository root:

    .venv/bin/python benchmarks/guard_pass.py [--passes 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fsmtrader.rollout.guard import Guard
from fsmtrader.rollout.kill_switch import STOP_FILE
from fsmtrader.session import PaperSession
from fsmtrader_testing.harness import settings
from fsmtrader_testing.paper import PAPER_SESSION


def per_pass_us(guard: Guard, passes: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(passes):
            guard.service()
        times.append((time.perf_counter() - t0) / passes * 1e6)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        s = settings(seed=7, **PAPER_SESSION)
        session = PaperSession(s, state, hours=48, speed=1800)
        try:
            session.start()
            session.run(stop_after_s=2.0)
            guard = session.guard
            if guard is None:
                raise SystemExit("the session made no guard")
            held = len(session.engine.portfolio.positions)
            print(f"symbols: {len(session.engine.symbols)}, positions held: {held}")
            print(f"no STOP file:      {per_pass_us(guard, a.passes, a.rounds):7.2f} us/pass")
            (state / STOP_FILE).write_text("stop\n")
            print(f"STOP (stop):       {per_pass_us(guard, a.passes, a.rounds):7.2f} us/pass")
            (state / STOP_FILE).write_text("flatten\n")
            guard.service()  # the exits start here (not timed)
            print(f"STOP (flatten):    {per_pass_us(guard, a.passes, a.rounds):7.2f} us/pass")
        finally:
            session.close()


if __name__ == "__main__":
    main()
