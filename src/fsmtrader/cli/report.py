"""The ``report`` command: render a run's report.html again, or compare two runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fsmtrader.cli.console import out
from fsmtrader.cli.errors import guard
from fsmtrader.research.report.build import read_report, render_html, write_compare
from fsmtrader.research.report.headline import headline_lines


def report(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A backtest's run folder (holds report.json).")
    ],
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare", metavar="OTHER_RUN", help="Another run folder: write a side-by-side page."
        ),
    ] = None,
) -> None:
    """Render RUN_DIR/report.html again from its report.json, or (--compare) write
    RUN_DIR/compare-<other>.html with both runs side by side."""

    def run() -> None:
        if compare is None:
            path = render_html(run_dir)
            out.print("  ".join(headline_lines(read_report(run_dir))), highlight=False)
            out.print(f"wrote {path}", highlight=False)
        else:
            path = write_compare(run_dir, compare)
            out.print(f"wrote {path}", highlight=False)

    guard(run)
