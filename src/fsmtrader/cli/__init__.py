"""The ``fsmtrader`` command line, one module per subject. Errors in input are one line on
stderr, never a trace (:mod:`fsmtrader.cli.errors`)."""

from fsmtrader.cli.app import app, main

__all__ = ["app", "main"]
