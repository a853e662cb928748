"""Crash torture: run a durable paper session in a subprocess, SIGKILL it at random moments
(and at the two narrow windows: after an intent's commit before the exchange call, and after
the exchange's answer before our commit), restart it, repeat; then check the bot's database
against the simulated exchange's own records.

    python scripts/crash_torture.py --kills 20 --seed 1

Last line: ``kills=N duplicates=D orphans=O drift=X``; exit status 0 only if D, O, X are 0.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fsmtrader.config import load_settings
from fsmtrader_testing.paper import clean_env, fsmtrader_argv, paper_args, session_toml
from fsmtrader_testing.verify import verify_session

# An impatient strategy on a thin book: many entries, partial fills, multi-leg exits.
IMPATIENT = {
    "risk": {"position_size": "25", "max_open_positions": 3, "max_total_exposure": "75"},
    "entry": {"entry_block_cooldown_s": 60, "buy_escalation_bps": [0, 10, 20]},
}
POINTS = ("after_intent_commit", "after_exchange_answer")


def run_once(
    state: Path,
    config: Path,
    *,
    kill_after: float | None,
    crash_at: str | None,
    hours: float,
    speed: float,
    run_for: float | None = None,
) -> tuple[int, str]:
    env = clean_env(**({"FSMTRADER_CRASH_AT": crash_at} if crash_at else {}))
    extra = ("--for", str(run_for)) if run_for is not None else ()
    cmd = fsmtrader_argv(*paper_args(state, config, *extra, hours=hours, speed=speed))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=kill_after if kill_after is not None else 120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    return proc.returncode, err


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--speed", type=float, default=1800.0, help="simulated s per wall s")
    ap.add_argument("--hours", type=float, default=48.0, help="simulated session length")
    ap.add_argument("--state-dir", type=Path, default=None, help="keep the state here")
    ap.add_argument("--tif", choices=["IOC", "GTC"], default=None)
    args = ap.parse_args()
    tmp = None
    if args.state_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fsm-torture-")
        base = Path(tmp.name)
    else:
        base = args.state_dir
        base.mkdir(parents=True, exist_ok=True)
    state, config = base / "state", base / "torture.toml"
    tif = args.tif or ("GTC" if args.seed % 2 else "IOC")
    config.write_text(session_toml(args.seed, router={"time_in_force": tif}, **IMPATIENT))
    started = time.monotonic()
    kills = kill_runs(state, config, args)
    if kills is None:
        return 2
    rc, err = run_once(
        state, config, kill_after=None, crash_at=None, hours=args.hours, speed=args.speed, run_for=1
    )
    if rc != 0:
        print(f"final run exited {rc}: {err.strip()[-800:]}", file=sys.stderr)
        return 2
    dup, orphans, drift, lost, notes = verify_session(state, load_settings(config, env={}))
    for n in notes[:50]:
        print(n, file=sys.stderr)
    print(f"elapsed {time.monotonic() - started:.1f}s, tif={tif}", file=sys.stderr)
    print(f"kills={kills} duplicates={dup} orphans={orphans} drift={drift}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if (dup == 0 and orphans == 0 and drift == 0 and lost == 0) else 1


def kill_runs(state: Path, config: Path, args: argparse.Namespace) -> int | None:
    """``args.kills`` runs, each SIGKILLed after a random delay, half of them at a crash
    point; returns how many were killed, or None when a run failed by itself."""
    rng = random.Random(args.seed)
    kills = 0
    for i in range(args.kills):
        crash_at = None
        if rng.random() < 0.5:
            crash_at = f"{rng.choice(POINTS)}:{rng.randint(1, 4)}"
        delay = rng.uniform(0.4, 2.0)
        rc, err = run_once(
            state,
            config,
            kill_after=delay + (2.0 if crash_at else 0.0),
            crash_at=crash_at,
            hours=args.hours,
            speed=args.speed,
        )
        if rc == -signal.SIGKILL:
            kills += 1
        elif rc != 0:
            print(f"run {i}: exited {rc}: {err.strip()[-500:]}", file=sys.stderr)
            return None
        print(
            f"run {i + 1}/{args.kills}: rc={rc} crash_at={crash_at or '-'} delay={delay:.2f}s",
            file=sys.stderr,
        )
    return kills


if __name__ == "__main__":
    sys.exit(main())
