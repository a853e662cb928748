"""The trading commands: ``demo`` (synthetic, in memory), ``paper`` (durable, synthetic
prices) and ``trade`` (the configured venue: live prices, paper or real fills)."""

from __future__ import annotations

import json
import math
import signal
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fsmtrader.cli.console import err, out
from fsmtrader.cli.display import print_summary, progress_title, run_with_display, watch_table
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import ConfigOpt, RunForOpt, settings_from
from fsmtrader.config import Settings, live_problems
from fsmtrader.errors import FsmTraderError
from fsmtrader.feeds import synthetic_market
from fsmtrader.runner import filters_for

if TYPE_CHECKING:
    from fsmtrader.control.plane import ControlPlane
    from fsmtrader.live import LiveSession
    from fsmtrader.session import PaperSession


def demo(
    config: ConfigOpt = None,
    hours: Annotated[float | None, typer.Option(help="Simulated hours to trade.")] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="Simulated seconds per wall second (0: as fast as possible)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the synthetic market.")] = None,
    quiet: Annotated[bool, typer.Option(help="No live table; summary only.")] = False,
) -> None:
    """Paper-trade a synthetic market on the built-in simulated exchange (no keys, no network)."""

    def run() -> None:
        _check_speed(speed, allow_zero=True)
        s = settings_from(config, seed=seed, demo={"hours": hours} if hours is not None else None)
        minutes = int(s.demo.hours * 60)
        warm = s.entry.anchor_window_min
        market = synthetic_market(s.market.symbols, minutes=warm + minutes, seed=s.seed)
        backfill = [c.slice(0, warm) for c in market]
        series = [c.slice(warm, warm + minutes) for c in market]
        filters = filters_for(series, s.market.quote)
        pace = s.demo.speed if speed is None else speed
        if pace == 0 and speed is None and not quiet and sys.stdout.isatty():
            pace = 3600.0  # an hour a second: long enough to watch, short enough to wait for
        err.print(
            f"demo: paper session, {len(series)} symbols x {minutes} one-minute bars "
            f"({s.demo.hours:g} h simulated), seed {s.seed}, speed "
            f"{'max' if pace == 0 else f'{pace:g}x'}"
        )
        result = run_with_display(
            s, series, filters, "demo", backfill=backfill, speed=pace, quiet=quiet
        )
        print_summary(result)

    guard(run)


def paper(
    config: ConfigOpt = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="State directory (database, sim exchange, audit).")
    ] = None,
    hours: Annotated[float | None, typer.Option(help="Simulated hours of a new session.")] = None,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per wall second of a new session.")
    ] = 60.0,
    run_for: RunForOpt = None,
    quiet: Annotated[bool, typer.Option(help="No live table.")] = False,
) -> None:
    """A durable paper session: kill it at any time (even SIGKILL) and run the same command
    again — it restores, resolves open intents by clientOrderId, reconciles, continues."""
    from fsmtrader.rollout.kill_switch import install_signals
    from fsmtrader.session import PaperSession

    def run() -> None:
        _check_speed(speed, allow_zero=False)
        s = settings_from(config, demo={"hours": hours} if hours is not None else None)
        folder = state_dir or s.state_dir
        stop = _stop_on_sigterm()
        install_signals(folder)  # SIGUSR1/SIGUSR2: the kill switch's STOP file
        session = PaperSession(s, folder, hours=s.demo.hours, speed=speed)
        plane = None
        try:
            plane = _open_plane(session)
            report = session.start()
            state = "restored" if session.restored else "new"
            err.print(
                f"paper: {state} session in {folder} ({len(session.series)} symbols, "
                f"{session.info.minutes} min at {session.info.speed:g}x); "
                f"{report.recovered_intents} open intent(s) recovered; {report.summary()}"
            )
            if session.engine.halted:
                err.print(
                    f"[red]HALTED:[/red] {session.engine.halted} (open positions are "
                    "still managed; no new entries)"
                )
            summary = _run_watched(session, run_for=run_for, stop=stop, quiet=quiet)
        finally:
            _close(session, plane)
        out.print_json(json.dumps(summary, default=str))

    guard(run)


def trade(
    config: ConfigOpt = None,
    live: Annotated[
        bool, typer.Option("--live", help="Place REAL orders on the venue (needs keys).")
    ] = False,
    confirm_live: Annotated[
        bool,
        typer.Option("--confirm-live", help="Required with --live: I accept real orders."),
    ] = False,
    state_dir: Annotated[Path | None, typer.Option(help="State directory.")] = None,
    run_for: RunForOpt = None,
    quiet: Annotated[bool, typer.Option(help="No live table.")] = False,
) -> None:
    """Trade on the configured venue: paper with live prices by default (real tickers,
    simulated fills); --live --confirm-live places real orders."""
    from fsmtrader.live import LiveSession
    from fsmtrader.rollout.kill_switch import install_signals

    def run() -> None:
        s = settings_from(config)
        if live:
            _refuse_unready_live(s, confirm_live=confirm_live)
        folder = state_dir or s.state_dir
        stop = _stop_on_sigterm()
        install_signals(folder)  # SIGUSR1/SIGUSR2: the kill switch's STOP file
        session = LiveSession(s, folder, paper=not live)
        plane = None
        try:
            plane = _open_plane(session)
            report = session.start()
            where = s.exchange.base_url or s.exchange.name
            err.print(
                f"trade: {'LIVE' if live else 'paper (live prices)'} on {where}, "
                f"{_mode_counts(session.engine.policy.modes)}, state in {folder}; "
                f"{report.recovered_intents} open intent(s) recovered; {report.summary()}"
            )
            if session.engine.halted:
                err.print(f"[red]HALTED:[/red] {session.engine.halted}")
            summary = _run_watched(
                session, run_for=run_for, stop=stop, quiet=quiet, bars_known=False
            )
        finally:
            _close(session, plane)
        out.print_json(json.dumps(summary, default=str))

    guard(run)


def _mode_counts(modes: Mapping[str, str]) -> str:
    """``3 symbols (1 live, 2 observe)``: what a canary really sends where."""
    counts = Counter(modes.values())
    detail = ", ".join(f"{n} {mode}" for mode, n in sorted(counts.items()))
    return f"{len(modes)} symbols ({detail})"


def _run_watched(
    session: PaperSession | LiveSession,
    *,
    run_for: float | None,
    stop: Callable[[], bool],
    quiet: bool,
    bars_known: bool = True,
) -> dict[str, Any]:
    """Run a durable session until its end, ``run_for`` wall seconds or ``stop``, under the
    live status table unless ``quiet``; a live session has no known bar total."""
    if quiet:
        return session.run(stop_after_s=run_for, should_stop=stop)
    seen = {"done": 0, "total": 0}  # written by the engine's thread, read by Rich's

    def progress(done: int, total: int) -> None:
        seen["done"], seen["total"] = done, total if bars_known else 0

    with watch_table(
        session.store.path,
        session.state_dir,
        marks=lambda: session.marks,
        now_ms=session.clock.now_ms,
        display=session.s.display,
        title=lambda: progress_title(seen["done"], seen["total"], str(session.state_dir)),
    ):
        return session.run(stop_after_s=run_for, should_stop=stop, progress=progress)


def _open_plane(session: PaperSession | LiveSession) -> ControlPlane | None:
    """The API, push stream, dashboard and metrics, when ``[api]`` enables them: listening
    before the session starts, so the start's own recovery is pushed and counted too."""
    s = session.s
    if not (s.api.enabled or s.telegram.enabled):
        return None
    from fsmtrader.control.plane import ControlPlane

    plane = ControlPlane(session)
    plane.start()
    if plane.server is not None:
        err.print(f"api: dashboard and API at {plane.url}/ (token required), metrics at /metrics")
    return plane


def _close(session: PaperSession | LiveSession, plane: ControlPlane | None) -> None:
    """The API goes first (no control may arrive at a closing session), then the session."""
    try:
        if plane is not None:
            plane.close()
    finally:
        session.close()


def _refuse_unready_live(s: Settings, *, confirm_live: bool) -> None:
    """Every reason not to place real orders yet, the missing confirmation first."""
    problems = live_problems(s)
    if not confirm_live:
        problems.insert(
            0,
            "--confirm-live: live trading places real orders; add --confirm-live to confirm",
        )
    if problems:
        raise FsmTraderError("refusing to trade live:\n" + "\n".join(problems))


def _check_speed(speed: float | None, *, allow_zero: bool) -> None:
    if speed is None:
        return
    if not math.isfinite(speed) or speed < 0 or (speed == 0 and not allow_zero):
        allowed = ">= 0 (0: as fast as possible)" if allow_zero else "> 0"
        raise FsmTraderError(
            f"--speed: must be {allowed}, in simulated seconds per wall second (got {speed:g})"
        )


def _stop_on_sigterm() -> Callable[[], bool]:
    """SIGTERM ends a session like Ctrl-C: the loop stops, state is committed, locks go."""
    stopped = {"flag": False}

    def handler(signum: int, frame: object) -> None:
        stopped["flag"] = True

    signal.signal(signal.SIGTERM, handler)
    return lambda: stopped["flag"]
