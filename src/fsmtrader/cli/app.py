"""The typer application: every command registered once, in the order ``--help`` lists them."""

from __future__ import annotations

import logging

import typer

from fsmtrader.cli.backtest import backtest
from fsmtrader.cli.control import control_app
from fsmtrader.cli.data import download_data
from fsmtrader.cli.options import OnceGroup
from fsmtrader.cli.preflight import preflight
from fsmtrader.cli.report import report
from fsmtrader.cli.smoke import smoke
from fsmtrader.cli.state import reconcile, recover
from fsmtrader.cli.status import status
from fsmtrader.cli.sweep import sweep
from fsmtrader.cli.synthetic_data import synthetic_data
from fsmtrader.cli.tools import show_config, show_fsm, sim_server
from fsmtrader.cli.trading import demo, paper, trade

app = typer.Typer(
    cls=OnceGroup,
    add_completion=False,
    no_args_is_help=True,
    help="fsmtrader: a crash-safe spot trading engine built on explicit state machines.",
)
app.command("fsm")(show_fsm)
app.command("config")(show_config)
app.command("demo")(demo)
app.command("backtest")(backtest)
app.command("report")(report)
app.command("sweep")(sweep)
app.command("paper")(paper)
app.command("reconcile")(reconcile)
app.command("trade")(trade)
app.command("sim-server")(sim_server)
app.command("download-data")(download_data)
app.command("synthetic-data")(synthetic_data)
app.command("recover")(recover)
app.command("status")(status)
app.command("smoke")(smoke)
app.command("preflight")(preflight)
app.add_typer(control_app, name="control")


def main() -> None:
    """The ``fsmtrader`` console script and ``python -m fsmtrader``."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
