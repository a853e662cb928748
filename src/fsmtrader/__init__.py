"""fsmtrader: crash-safe spot trading engine built on explicit state machines."""

__version__ = "0.1.0"
