"""Running a durable session in the test's own thread while a script steers it from
another, as the API or Telegram would: the session stops when the script is done."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsmtrader.live import LiveSession
    from fsmtrader.session import PaperSession


def run_steered(
    session: PaperSession | LiveSession,
    script: Callable[[], None],
    limit_s: float,
) -> None:
    """Run ``session`` until ``script`` returns (or ``limit_s``); the script's failure is
    raised here, and a script still running when the session stopped is a failure too."""
    done = threading.Event()
    failure: list[BaseException] = []

    def steer() -> None:
        try:
            script()
        except BaseException as exc:  # reported in the test's thread
            failure.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=steer, daemon=True)
    t.start()
    session.run(stop_after_s=limit_s, should_stop=done.is_set)
    t.join(5)
    if failure:
        raise failure[0]
    if not done.is_set():
        raise AssertionError("the script did not finish while the session ran")
