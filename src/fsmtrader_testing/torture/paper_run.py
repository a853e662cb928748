"""The paper torture (``--venue sim``): durable paper sessions, killed and restarted,
then the bot's database against the simulated exchange's own records."""

from __future__ import annotations

import time
from collections.abc import Callable

from fsmtrader.config import load_settings
from fsmtrader.smoke.verify import verify_session
from fsmtrader_testing.paper import fsmtrader_argv, paper_args
from fsmtrader_testing.torture.bot import RunResult, run_bot
from fsmtrader_testing.torture.config import paper_toml
from fsmtrader_testing.torture.options import TortureOptions
from fsmtrader_testing.torture.report import Report
from fsmtrader_testing.torture.schedule import Kill, kill_schedule

READY = "paper: "


class TortureFailed(Exception):
    """A run ended by itself where it should not have (the message says how)."""


def run_paper(opts: TortureOptions, say: Callable[[str], None]) -> Report:
    state, config = opts.base / "state", opts.base / "torture.toml"
    config.write_text(paper_toml(opts.seed, opts.time_in_force))
    started, report = time.monotonic(), Report()

    def once(kill: Kill | None, *extra: str) -> RunResult:
        env = {"FSMTRADER_CRASH_AT": kill.crash_at} if kill and kill.crash_at else {}
        argv = fsmtrader_argv(
            *paper_args(state, config, *extra, hours=opts.hours, speed=opts.price_speed)
        )
        return run_bot(argv, env, ready=READY, kill=kill, timeout_s=120)

    for i, kill in enumerate(kill_schedule(opts.seed, opts.kills, live=False)):
        res = once(kill)
        if res.killed:
            report.kills += 1
            report.failpoint_deaths += 0 if res.sent_kill else 1
        elif res.returncode != 0:
            raise TortureFailed(f"run {i}: exited {res.returncode}: {res.stderr.strip()[-500:]}")
        say(f"run {i + 1}/{opts.kills}: rc={res.returncode} {kill.describe()}")
    res = once(None, "--for", "1")
    if res.returncode != 0:
        raise TortureFailed(f"final run exited {res.returncode}: {res.stderr.strip()[-800:]}")
    report.verdict = verify_session(state, load_settings(config, env={}))
    report.wall_s = time.monotonic() - started
    say(f"tif={opts.time_in_force}")
    return report
