"""Commands on a stopped session's state: ``reconcile`` (books against the exchange) and
``recover`` (symbols out of ERROR, a halt lifted).

Both look and send nothing: an order create or cancel that recovery would make is held
back and named, unless ``--send`` allows it (on a live directory those are real orders)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fsmtrader.cli.console import err, out
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import ConfigOpt, SessionDirOpt, settings_from
from fsmtrader.errors import FsmTraderError
from fsmtrader.fsm.phases import Phase

if TYPE_CHECKING:  # the session, its store and reconcile load when the command runs
    from fsmtrader.config import Settings
    from fsmtrader.engine import Engine
    from fsmtrader.reconcile import ReconcileReport
    from fsmtrader.session import DurableSession


SendOpt = Annotated[
    bool,
    typer.Option(
        "--send",
        help="Let recovery create and cancel orders on the venue (default: look-ups only).",
    ),
]


def reconcile(
    config: ConfigOpt = None,
    state_dir: SessionDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    send: SendOpt = False,
) -> None:
    """Compare the state database with the exchange and write the reconcile report.
    Exits 0 when everything matches, 3 on a mismatch."""

    def run() -> None:
        s = settings_from(config)
        folder = state_dir or s.state_dir
        session = _open_session_of(s, folder, send=send)
        try:
            report = session.reconcile_now()
            _say_held_back(session)
        finally:
            session.close()
        if as_json:
            out.print_json(json.dumps(report.to_dict(), default=str))
        else:
            out.print(report.summary())
            out.print(f"report: {folder / 'reconcile.json'}")
        if not report.ok:
            raise typer.Exit(3)

    guard(run)


def recover(
    config: ConfigOpt = None,
    state_dir: SessionDirOpt = None,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Take this symbol out of ERROR now.")
    ] = None,
    clear_halt: Annotated[
        bool, typer.Option("--clear-halt", help="Allow new entries again after a halt.")
    ] = False,
    send: SendOpt = False,
) -> None:
    """Manual recovery while the bot is stopped: first resolve open intents and reconcile
    as a start does, then bring symbols out of ERROR without waiting for their backoff,
    and/or lift a halt (after you have checked its reason)."""

    def run() -> None:
        if not symbol and not clear_halt:
            raise FsmTraderError("recover: say what to do: --symbol SYM and/or --clear-halt")
        s = settings_from(config)
        folder = state_dir or s.state_dir
        session = _open_session_of(s, folder, send=send)
        try:
            engine = session.engine
            in_error = {sym for sym, st in engine.states.items() if st.phase is Phase.ERROR}
            report = session.start()
            out.print(report.summary())
            _say_held_back(session)
            for sym in symbol or []:
                _recover_symbol(engine, sym, was_in_error=sym in in_error)
            if clear_halt:
                _clear_halt(engine, report)
            engine.commit()
        finally:
            session.close()

    guard(run)


def _recover_symbol(engine: Engine, sym: str, *, was_in_error: bool) -> None:
    """Take ``sym`` out of ERROR now; FsmTraderError if it is unknown or not in ERROR
    (unless the start's recovery just took it out: its backoff had run out)."""
    if sym not in engine.states:
        raise FsmTraderError(f"--symbol {sym}: not in this session ({', '.join(engine.states)})")
    st = engine.states[sym]
    if was_in_error and st.phase is not Phase.ERROR:
        out.print(f"{sym}: left ERROR during recovery (its backoff was over), now {st.phase}")
        return
    if not engine.recover(sym):
        raise FsmTraderError(f"--symbol {sym}: it is in {st.phase}, not in ERROR")
    out.print(f"{sym}: recovered, now {st.phase}")


def _clear_halt(engine: Engine, report: ReconcileReport) -> None:
    """Lift a halt only on books that match the exchange: recovery reconciled just now."""
    if engine.halted and not report.ok:
        raise FsmTraderError(
            f"--clear-halt: reconcile still finds differences ({report.summary()}); the "
            "halt stays — see reconcile.json"
        )
    if engine.halted:
        out.print(f"halt lifted (it was: {engine.halted})")
        engine.resume_entries()
    else:
        out.print("not halted")


def _say_held_back(session: DurableSession) -> None:
    """On stderr: stdout stays the report (``--json`` is parsed by scripts)."""
    if session.held_back:
        err.print(
            f"held back {len(session.held_back)} order operation(s) (look-ups only): "
            f"{'; '.join(session.held_back[:5])} — run again with --send to allow them"
        )


def _open_session_of(s: Settings, folder: Path, *, send: bool) -> DurableSession:
    """The session a state directory belongs to (paper, paper on live prices, or live),
    so reconcile compares with the right exchange and writes nothing foreign into it;
    a directory without a session is refused, never created."""
    from fsmtrader.live import LiveSession
    from fsmtrader.session import PaperSession, session_kind
    from fsmtrader.store.sqlite import store_path

    if not store_path(folder, s.database_url).exists():
        raise FsmTraderError(f"{folder}: no session here (no fsmtrader.db)")
    kind = session_kind(folder, s)
    if kind == "paper":
        return PaperSession(s, folder, hours=s.demo.hours, speed=60.0, send=send)
    if kind in ("live", "paper-live"):
        return LiveSession(s, folder, paper=kind == "paper-live", send=send)
    raise FsmTraderError(f"{folder}: no session here (run `fsmtrader paper` or `trade` first)")
