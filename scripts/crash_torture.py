"""Crash torture: run the bot in a subprocess, SIGKILL it at random moments and at the two
narrow windows (after an intent's commit before the exchange call, after the exchange's
answer before our commit), restart it, repeat; then check the books against the exchange.

    python scripts/crash_torture.py --kills 20 --seed 1                  # paper session
    python scripts/crash_torture.py --venue binance --kills 50 --fault-rate 0.1
    python scripts/crash_torture.py --venue mexc --kills 0 --hours 24 --fault-rate 0.1

--venue sim (the default) runs durable paper sessions (`fsmtrader paper`). --venue binance
or mexc runs `fsmtrader trade --live --confirm-live` against `fsmtrader sim-server` with
that venue's profile; the server is a separate process that outlives every bot, wire
faults are injected at --fault-rate, and after the kills the bot trades fault-free for a
few seconds, stops cleanly, and its books are checked both ways against the venue.

Simulated hours on a live venue: the bot runs on the wall clock; the server's prices move
--speed simulated seconds per wall second (default 240). A soak (--kills 0 --hours H)
runs the bot for H * 3600 / speed wall seconds, i.e. H hours of the server's price path,
with the bot's timers (entry block 60 s, TTLs, timeouts, 0.2 s polls) on the wall clock,
set as short as the settings allow so trading is dense.

Last line: ``kills=N duplicates=D orphans=O drift=X lost_fills=L``; exit status 0 only if
D, O, X and L are all 0 (2 if a run failed by itself).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from fsmtrader_testing.torture import TortureFailed, TortureOptions, run_torture
from fsmtrader_testing.torture.config import redact
from fsmtrader_testing.torture.options import VENUES


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    doc = __doc__ or ""
    ap = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog=doc.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--venue", choices=VENUES, default="sim")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fault-rate", type=float, default=0.0, help="faults per order (live)")
    ap.add_argument("--speed", type=float, default=None, help="simulated s per wall s")
    ap.add_argument(
        "--hours", type=float, default=48.0, help="paper session length; live soak length"
    )
    ap.add_argument("--state-dir", type=Path, default=None, help="keep the state here")
    ap.add_argument("--tif", choices=["IOC", "GTC"], default=None)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="fsm-torture-") as tmp:
        base = args.state_dir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        opts = TortureOptions(
            base=base,
            venue=args.venue,
            kills=args.kills,
            seed=args.seed,
            fault_rate=args.fault_rate,
            hours=args.hours,
            speed=args.speed,
            tif=args.tif,
        )
        problems = opts.problems()
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 2
        try:
            report = run_torture(opts, say=lambda line: print(redact(line), file=sys.stderr))
        except TortureFailed as exc:
            print(redact(str(exc)), file=sys.stderr)
            return 2
    for note in report.verdict.problems[:50]:
        print(redact(note), file=sys.stderr)
    print(report.summary(), file=sys.stderr)
    print(report.last_line())
    return 0 if report.verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
