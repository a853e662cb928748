"""One-line error handling: the user sees one line on stderr and an exit code, never a trace."""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from rich.markup import escape

from fsmtrader.cli.console import err
from fsmtrader.errors import (
    CommitFailed,
    FsmTraderError,
    IllegalOrderTransition,
    PortfolioError,
)

T = TypeVar("T")
# Raised on purpose, but only when our own books broke: a bug to report, not a user error.
BROKEN_INVARIANTS = (PortfolioError, IllegalOrderTransition)


def guard(fn: Callable[[], T]) -> T:
    """Run a command; known errors become one red line and exit code 2, anything else a
    one-line message with the trace saved to a file (not dumped on the user). A state
    write that failed stops trading with one line and exit code 2 too: the cause (disk
    full, an I/O error) is the machine's, and the next start puts the books right."""
    try:
        return fn()
    except CommitFailed as exc:
        err.print(
            f"[red]error:[/red] {escape(str(exc))}; trading stopped — free the disk or fix the I/O "
            "error, then start again (it resolves and reconciles with the exchange)",
            highlight=False,
            markup=True,
        )
        raise typer.Exit(2) from None
    except BROKEN_INVARIANTS as exc:
        _internal_error(exc)
    except FsmTraderError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            err.print(f"[red]error:[/red] {escape(line)}", highlight=False, markup=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        _internal_error(exc)


def _internal_error(exc: BaseException) -> NoReturn:
    """One line naming the error, the trace saved to a file, exit code 1."""
    crash = Path(tempfile.gettempdir()) / f"fsmtrader-crash-{os.getpid()}.log"
    crash.write_text(traceback.format_exc())
    err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (trace in {crash})")
    raise typer.Exit(1) from None
