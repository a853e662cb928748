"""The live torture: ``trade --live --confirm-live`` against ``fsmtrader sim-server`` (a
separate process that outlives every bot), killed and restarted while the server injects
random wire faults, then a fault-free run, a clean stop and the two-way check."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from fsmtrader.config import load_settings
from fsmtrader_testing.paper import fsmtrader_argv
from fsmtrader_testing.torture.bot import RunResult, run_bot
from fsmtrader_testing.torture.config import live_env, live_toml, redact
from fsmtrader_testing.torture.live_check import book_counts, verify_live
from fsmtrader_testing.torture.options import KILL_PACE, TortureOptions
from fsmtrader_testing.torture.paper_run import TortureFailed
from fsmtrader_testing.torture.report import Report
from fsmtrader_testing.torture.schedule import Kill, kill_schedule
from fsmtrader_testing.torture.server import SimServer

READY = "trade: LIVE"
#: Runs in a row that may end by themselves (a start refused while the venue is faulty)
#: before the torture gives up.
MAX_SELF_EXITS = 5
PROGRESS_S = 30.0
Say = Callable[[str], None]


def run_live(opts: TortureOptions, say: Say) -> Report:
    state, config = opts.base / "state", opts.base / "torture.toml"
    server = SimServer(opts.venue, opts.price_speed, opts.seed, opts.fault_rate).start()
    report, started = Report(), time.monotonic()
    try:
        config.write_text(live_toml(opts.seed, opts.venue, server.base_url, opts.time_in_force))
        say(
            f"sim-server ({opts.venue} {' '.join(server.profile())}) on {server.base_url}, "
            f"speed {opts.price_speed:g}x, fault rate {opts.fault_rate:g} per signed request"
        )
        first = time.monotonic()
        if opts.kills:
            _kill_runs(opts, state, config, report, say)
        else:
            _soak(opts, state, config, server, say)
        report.faults = server.faults_injected()
        if opts.fault_rate:
            server.set_fault_rate(0)
        res = _bot(state, config, None, "--for", f"{opts.quiet_s:g}")
        _say_halts("final run", res, say)
        if res.returncode != 0:
            raise TortureFailed(f"final run exited {res.returncode}: {_tail(res)}")
        report.sim_hours = (time.monotonic() - first) * opts.price_speed / 3600
        report.verdict = verify_live(state, load_settings(config, env={}), server)
        _count(report, server, state)
    finally:
        server.stop()
    report.wall_s = time.monotonic() - started
    return report


def _bot(state: Path, config: Path, kill: Kill | None, *extra: str) -> RunResult:
    args = ["trade", "--live", "--confirm-live", "--config", str(config)]
    args += ["--state-dir", str(state), "--quiet", *extra]
    env = live_env()
    if kill is not None and kill.crash_at:
        env["FSMTRADER_CRASH_AT"] = kill.crash_at
    if kill is not None:  # a bound, should the kill never come: the bot cannot trade on
        args += ["--for", "600"]
    return run_bot(fsmtrader_argv(*args), env, ready=READY, kill=kill, timeout_s=900)


def _kill_runs(opts: TortureOptions, state: Path, config: Path, report: Report, say: Say) -> None:
    self_exits = 0
    schedule = kill_schedule(opts.seed, opts.kills, live=True, pace=KILL_PACE[opts.venue])
    for i, kill in enumerate(schedule):
        res = _bot(state, config, kill)
        if res.killed:
            report.kills, self_exits = report.kills + 1, 0
            report.failpoint_deaths += 0 if res.sent_kill else 1
        else:
            self_exits += 1
            say(f"run {i + 1}: ended by itself, rc={res.returncode}: {_tail(res)}")
            if res.returncode == 0 or self_exits >= MAX_SELF_EXITS:
                raise TortureFailed(f"run {i + 1}: exited {res.returncode}: {_tail(res)}")
        how = "SIGKILL" if res.sent_kill else "died at its failpoint"
        say(f"run {i + 1}/{len(schedule)}: rc={res.returncode} {kill.describe()} ({how})")
        _say_halts(f"run {i + 1}", res, say)


def _soak(opts: TortureOptions, state: Path, config: Path, server: SimServer, say: Say) -> None:
    """One bot trading ``soak_wall_s`` of wall time, no kills; progress every 30 s."""
    done = threading.Event()
    start = time.monotonic()

    def progress() -> None:
        while not done.wait(PROGRESS_S):
            wall = time.monotonic() - start
            report = Report()
            try:
                _count(report, server, state)
                faults = server.faults_injected()
            except OSError as exc:
                say(f"soak: the server did not answer ({exc})")
                continue
            kinds = ", ".join(f"{k}={n}" for k, n in sorted(faults.items()))
            say(
                f"soak {wall:.0f}/{opts.soak_wall_s:.0f}s wall "
                f"({wall * opts.price_speed / 3600:.2f} simulated h): {report.intents} intents, "
                f"{report.orders} orders, "
                f"{report.filled_orders} with fills, {report.trades} closed trades; "
                f"faults {sum(faults.values())} ({kinds or 'none'})"
            )

    watcher = threading.Thread(target=progress, name="progress", daemon=True)
    watcher.start()
    try:
        res = _bot(state, config, None, "--for", f"{opts.soak_wall_s:g}")
    finally:
        done.set()
        watcher.join(5)
    _say_halts("soak", res, say)
    if res.returncode != 0:
        raise TortureFailed(f"soak run exited {res.returncode}: {_tail(res)}")


def _count(report: Report, server: SimServer, state: Path) -> None:
    """Orders (and those with fills) from the server, closed trades from the books."""
    orders = server.state()["orders"].values()
    report.orders = len(orders)
    report.filled_orders = sum(1 for o in orders if Decimal(o["filled"]) > 0)
    report.intents, report.trades = book_counts(state)


def halts(res: RunResult) -> list[str]:
    """The bot's HALT lines (it stopped opening positions) and start-up reconciles that
    found a mismatch, each with what it found."""
    marks = ("HALT", "MISMATCH")
    lines = res.stderr.splitlines()
    return [redact(line.strip()) for line in lines if any(m in line for m in marks)]


def _say_halts(where: str, res: RunResult, say: Say) -> None:
    for line in halts(res):
        say(f"{where}: {line}")


def _tail(res: RunResult) -> str:
    return redact(res.stderr.strip()[-600:])
