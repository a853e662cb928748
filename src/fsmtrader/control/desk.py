"""The one way to steer a running bot: a control is submitted from any thread (the API,
later Telegram) and run by the engine's own thread between two stimuli, so a control never
races a decision. The submitter gets a future; the session loop wakes at once."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from fsmtrader.errors import FsmTraderError

log = logging.getLogger("fsmtrader.control")

ACTIONS = ("stopentry", "resume", "forceexit", "recover", "reconcile")


@dataclass(frozen=True)
class ControlResult:
    """``status`` is the HTTP status a client shows: 200 done, 400 bad input, 409 refused
    in the bot's present state, 503 the bot is not there to do it."""

    status: int
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "data": self.data}


Runner = Callable[[str, Mapping[str, str], str], ControlResult]
_Job = tuple[str, Mapping[str, str], str, "Future[ControlResult]"]


class ControlDesk:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._closed = False

    def submit(self, action: str, args: Mapping[str, str], who: str) -> Future[ControlResult]:
        """Queue a control for the engine thread (any thread; never blocks)."""
        fut: Future[ControlResult] = Future()
        if action not in ACTIONS:
            fut.set_result(
                ControlResult(400, f"{action!r}: unknown control (allowed: {', '.join(ACTIONS)})")
            )
        elif self._closed:
            fut.set_result(ControlResult(503, "the bot is stopping; no control is taken now"))
        else:
            self._jobs.put((action, dict(args), who, fut))
            self._wake.set()
        return fut

    def serve(self, run: Runner) -> int:
        """Run every queued control in this (the engine's) thread; returns how many."""
        n = 0
        while True:
            try:
                action, args, who, fut = self._jobs.get_nowait()
            except queue.Empty:
                return n
            n += 1
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                result = run(action, args, who)
            except FsmTraderError as exc:
                result = ControlResult(409, str(exc))
            except Exception as exc:  # a failing control must not stop the bot
                log.exception("control %s failed", action)
                result = ControlResult(500, f"{action} failed: {type(exc).__name__}: {exc}")
            fut.set_result(result)

    def wait(self, timeout_s: float) -> None:
        """Sleep up to ``timeout_s``, waking at once when a control arrives."""
        if self._wake.wait(timeout_s):
            self._wake.clear()

    def close(self) -> None:
        """Refuse new controls and answer the queued ones: the bot is going away."""
        self._closed = True
        while True:
            try:
                *_, fut = self._jobs.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_result(ControlResult(503, "the bot stopped before running this control"))
