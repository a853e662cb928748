"""The typer application: every command registered once, in the order ``--help`` lists them.

Each command is named by its module and function, imported only when it runs (or when
``--help`` lists it): a command pays the imports of its own work, never another's
(:mod:`fsmtrader.cli.lazy`)."""

from __future__ import annotations

import logging

from fsmtrader.cli.lazy import lazy_app

COMMANDS: dict[str, tuple[str, str]] = {
    "fsm": ("fsmtrader.cli.tools", "show_fsm"),
    "config": ("fsmtrader.cli.tools", "show_config"),
    "demo": ("fsmtrader.cli.trading", "demo"),
    "backtest": ("fsmtrader.cli.backtest", "backtest"),
    "report": ("fsmtrader.cli.report", "report"),
    "sweep": ("fsmtrader.cli.sweep", "sweep"),
    "paper": ("fsmtrader.cli.trading", "paper"),
    "reconcile": ("fsmtrader.cli.state", "reconcile"),
    "trade": ("fsmtrader.cli.trading", "trade"),
    "sim-server": ("fsmtrader.cli.tools", "sim_server"),
    "download-data": ("fsmtrader.cli.data", "download_data"),
    "synthetic-data": ("fsmtrader.cli.synthetic_data", "synthetic_data"),
    "recover": ("fsmtrader.cli.state", "recover"),
    "status": ("fsmtrader.cli.status", "status"),
    "smoke": ("fsmtrader.cli.smoke", "smoke"),
    "preflight": ("fsmtrader.cli.preflight", "preflight"),
    "control": ("fsmtrader.cli.control", "control_app"),
}

app = lazy_app(
    COMMANDS,
    add_completion=False,
    no_args_is_help=True,
    help="fsmtrader: a crash-safe spot trading engine built on explicit state machines.",
)


def main() -> None:
    """The ``fsmtrader`` console script and ``python -m fsmtrader``."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
