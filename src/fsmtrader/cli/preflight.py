"""``fsmtrader preflight``: the GO/NO-GO report before real money (exit 0 GO, 1 NO-GO with
every reason, 2 bad input)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fsmtrader.cli.console import out
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import settings_from
from fsmtrader.errors import FsmTraderError
from fsmtrader.preflight.report import PreflightReport


def preflight(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The TOML file meant for live trading.")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="State directory of a paper (or observe) session to measure."),
    ] = None,
    smoke_report: Annotated[
        Path | None,
        typer.Option(help="A fresh `fsmtrader smoke` report for this config (else run it now)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """The GO/NO-GO decision: the live rules on the config, the smoke scenarios A-E, and
    the acceptance metrics of a paper session (entry parity, orphaned orders, partial-fill
    PnL drift, restart idempotency, critical errors, dashboard lag). The session's state
    is never changed (its databases are copied). Exit 0 GO, 1 NO-GO, 2 bad input."""
    from fsmtrader.preflight.run import run_preflight

    def run() -> PreflightReport:
        if config is None:
            raise FsmTraderError("--config: give the file you mean to trade live with")
        s = settings_from(config)
        return run_preflight(s, state_dir=state_dir, smoke_report=smoke_report)

    report = guard(run)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    else:
        _print(report)
    raise typer.Exit(0 if report.go else 1)


def _print(report: PreflightReport) -> None:
    table = Table(title="preflight", show_lines=False)
    for name in ("criterion", "result", "figure", "bar"):
        table.add_column(name, overflow="fold")
    for c in report.criteria:
        mark = "[green]PASS[/green]" if c.passed else "[red]FAIL[/red]"
        table.add_row(c.name, mark, c.figure, c.bar)
    wide = out if out.is_terminal else Console(width=140)  # a log or pipe: no folding
    wide.print(table)
    for note in report.notes:
        out.print(f"note: {note}", highlight=False, markup=False)
    if report.go:
        out.print("[bold green]GO[/bold green]: every criterion passes")
        return
    out.print(f"[bold red]NO-GO[/bold red]: {len(report.reasons())} reason(s)")
    for line in report.reasons():
        out.print(f"  - {line}", highlight=False, markup=False)
