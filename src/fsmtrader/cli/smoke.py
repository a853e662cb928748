"""``fsmtrader smoke``: the smoke scenarios A-E and their JSON report."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.status import Status

from fsmtrader.cli.console import err, out
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import ConfigOpt, settings_from

if TYPE_CHECKING:
    from fsmtrader.smoke import ScenarioResult

ScenarioOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--scenario", "-s", metavar="A..E", help="A, B, C, D or E (repeatable; default: all)."
    ),
]
ReportOpt = Annotated[
    Path, typer.Option("--report", help="Where to write the JSON report (atomically).")
]
WorkDirOpt = Annotated[
    Path | None,
    typer.Option(
        help="Folder for the scenarios' state (default: a temporary one, kept on a failure)."
    ),
]


def smoke(
    scenario: ScenarioOpt = None,
    report: ReportOpt = Path("smoke_test_report.json"),
    config: ConfigOpt = None,
    work_dir: WorkDirOpt = None,
) -> None:
    """Run the smoke scenarios A-E on the simulated exchange with your settings (exit
    ladder, never_market_sells, timeouts) and write the report; exit 0 when every one
    passes, 1 when one fails, 2 on bad input."""
    from fsmtrader.smoke import parse_scenarios, run_smoke, write_report

    def run() -> None:
        names = parse_scenarios(scenario)
        s = settings_from(config)
        folder = work_dir or Path(tempfile.mkdtemp(prefix="fsmtrader-smoke-"))
        shown = _Shown()
        result = run_smoke(s, names, work_dir=folder, progress=shown)
        path = write_report(result, report)
        if work_dir is None and result.passed:
            shutil.rmtree(folder, ignore_errors=True)
        elif not result.passed:
            err.print(f"scenario state kept in {escape(str(folder))}", highlight=False)
        passed = sum(r.passed for r in result.scenarios)
        word = "PASS" if result.passed else "FAIL"
        out.print(
            f"smoke: {word} {passed}/{len(result.scenarios)} scenarios passed; "
            f"report {escape(str(path))}",
            highlight=False,
        )
        if not result.passed:
            raise typer.Exit(1)

    guard(run)


class _Shown:
    """Each scenario on stderr: a spinner while it runs, then one line with its verdict."""

    def __init__(self) -> None:
        self.status: Status | None = None

    def __call__(self, name: str, title: str, result: ScenarioResult | None) -> None:
        if result is None:
            self.status = err.status(f"smoke {name}: {escape(title)} ...")
            self.status.start()
            return
        if self.status is not None:
            self.status.stop()
        mark = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
        why = f" — {escape(result.reason)}" if result.reason else ""
        err.print(
            f"smoke {name}: {mark} {escape(title)} ({result.wall_s:.2f} s){why}", highlight=False
        )
