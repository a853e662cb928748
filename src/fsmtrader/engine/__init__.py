"""The engine: pure decisions (entry, exit, errors, timeouts, outcomes) and the shell that
runs them (``Engine``)."""

from fsmtrader.engine.shell import Engine

__all__ = ["Engine"]
