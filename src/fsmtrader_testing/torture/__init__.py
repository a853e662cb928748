"""The crash torture and the fault soak (``scripts/crash_torture.py`` is its command line).

``run_torture(options, say)`` runs one torture and returns its :class:`Report`; the
report's ``last_line()`` is ``kills=N duplicates=D orphans=O drift=X lost_fills=L``.
Modules: ``server`` (the sim-server process), ``bot`` (one bot run and its kill),
``schedule`` (when runs die), ``config`` (the bot's
configuration), ``paper_run`` / ``live_run`` (the two tortures), ``live_check`` (the
books against the venue), ``report``.
"""

from __future__ import annotations

from collections.abc import Callable

from fsmtrader_testing.torture.live_run import run_live
from fsmtrader_testing.torture.options import TortureOptions
from fsmtrader_testing.torture.paper_run import TortureFailed, run_paper
from fsmtrader_testing.torture.report import Report

__all__ = ["Report", "TortureFailed", "TortureOptions", "run_torture"]


def run_torture(opts: TortureOptions, say: Callable[[str], None]) -> Report:
    """One torture as ``opts`` say; ``say`` receives the progress lines."""
    return run_live(opts, say) if opts.live else run_paper(opts, say)
