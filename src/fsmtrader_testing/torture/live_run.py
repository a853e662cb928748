"""The live torture: ``trade --live --confirm-live`` against ``fsmtrader sim-server`` (a
separate process that outlives every bot), killed and restarted, wire faults injected,
then a fault-free run to a quiet state, a clean stop and the two-way check."""

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
from fsmtrader_testing.torture.faults import FaultDriver
from fsmtrader_testing.torture.live_check import balances_now, closed_trades, verify_live
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


def run_live(opts: TortureOptions, say: Callable[[str], None]) -> Report:
    state, config = opts.base / "state", opts.base / "torture.toml"
    server = SimServer(opts.venue, opts.price_speed, opts.seed).start()
    report, started = Report(), time.monotonic()
    faults = FaultDriver(server, opts.fault_rate, opts.seed)
    try:
        config.write_text(live_toml(opts.seed, opts.venue, server.base_url, opts.time_in_force))
        baseline = balances_now(server)
        say(f"sim-server ({opts.venue}) on {server.base_url}, speed {opts.price_speed:g}x")
        faults.start()
        first = time.monotonic()
        if opts.kills:
            report.kills = _kill_runs(opts, state, config, say)
        else:
            _soak(opts, state, config, server, faults, say)
        faults.stop()
        res = _bot(state, config, None, "--for", f"{opts.quiet_s:g}")
        for line in halts(res):
            say(f"final run: {line}")
        if res.returncode != 0:
            raise TortureFailed(f"final run exited {res.returncode}: {_tail(res)}")
        report.sim_hours = (time.monotonic() - first) * opts.price_speed / 3600
        report.verdict = verify_live(state, load_settings(config, env={}), server, baseline)
        _count(report, server, state)
    finally:
        faults.stop()
        server.stop()
    report.faults = faults.injected
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


def _kill_runs(opts: TortureOptions, state: Path, config: Path, say: Callable[[str], None]) -> int:
    kills, self_exits = 0, 0
    schedule = kill_schedule(opts.seed, opts.kills, live=True, pace=KILL_PACE[opts.venue])
    for i, kill in enumerate(schedule):
        res = _bot(state, config, kill)
        if res.killed:
            kills, self_exits = kills + 1, 0
        else:
            self_exits += 1
            say(f"run {i + 1}: ended by itself, rc={res.returncode}: {_tail(res)}")
            if res.returncode == 0 or self_exits >= MAX_SELF_EXITS:
                raise TortureFailed(f"run {i + 1}: exited {res.returncode}: {_tail(res)}")
        how = "SIGKILL" if res.sent_kill else "died at the failpoint"
        say(f"run {i + 1}/{len(schedule)}: rc={res.returncode} {kill.describe()} ({how})")
        for line in halts(res):
            say(f"run {i + 1}: {line}")
    return kills


def _soak(
    opts: TortureOptions,
    state: Path,
    config: Path,
    server: SimServer,
    faults: FaultDriver,
    say: Callable[[str], None],
) -> None:
    """One bot trading ``soak_wall_s`` of wall time, no kills; progress every 30 s."""
    done = threading.Event()
    start = time.monotonic()

    def progress() -> None:
        while not done.wait(PROGRESS_S):
            wall = time.monotonic() - start
            report = Report(faults=faults.injected)
            _count(report, server, state)
            kinds = ", ".join(f"{k}={n}" for k, n in sorted(faults.injected.items()))
            say(
                f"soak {wall:.0f}/{opts.soak_wall_s:.0f}s wall "
                f"({wall * opts.price_speed / 3600:.2f} simulated h): {report.orders} orders, "
                f"{report.filled_orders} with fills, {report.trades} closed trades; "
                f"faults {sum(faults.injected.values())} ({kinds or 'none'})"
            )

    watcher = threading.Thread(target=progress, name="progress", daemon=True)
    watcher.start()
    try:
        res = _bot(state, config, None, "--for", f"{opts.soak_wall_s:g}")
    finally:
        done.set()
        watcher.join(5)
    for line in halts(res):
        say(f"soak: {line}")
    if res.returncode != 0:
        raise TortureFailed(f"soak run exited {res.returncode}: {_tail(res)}")


def _count(report: Report, server: SimServer, state: Path) -> None:
    """Orders (and those with fills) from the server, closed trades from the books."""
    orders = server.state()["orders"].values()
    report.orders = len(orders)
    report.filled_orders = sum(1 for o in orders if Decimal(o["filled"]) > 0)
    report.trades = closed_trades(state)


def halts(res: RunResult) -> list[str]:
    """The bot's HALTED lines: it stopped opening positions (and says why)."""
    return [redact(line.strip()) for line in res.stderr.splitlines() if "HALT" in line]


def _tail(res: RunResult) -> str:
    return redact(res.stderr.strip()[-600:])
