"""Exchange doubles for measuring the router alone: :class:`Counting` wraps a real exchange,
counts the calls and keeps the last answer of each kind; :class:`Canned` answers with
those recorded answers and no I/O, so what is left of the router's time is its own."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Counting:
    """Counts the exchange calls the router makes and keeps the last answer of each
    kind (calibration only, never timed)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.answers: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            result = attr(*args, **kwargs)
            key = f"{name}:{args[1]}" if name == "create_order" else name
            self.answers[key] = result
            return result

        return wrapped


class Canned:
    """Answers the router with recorded real answers and no I/O: what is left of its
    time is the router's own work (preflight, reservation, booking, events)."""

    def __init__(self, recorded: Counting) -> None:
        self.answers = recorded.answers
        self.last: Any = None

    def fetch_ticker(self, symbol: str) -> Any:
        return self.answers["fetch_ticker"]

    def create_order(self, symbol: str, side: str, *rest: Any) -> Any:
        self.last = self.answers[f"create_order:{side}"]
        return self.last

    def fetch_order(self, order_id: str, symbol: str) -> Any:
        return self.last
