"""Children that cannot outlive the torture: each asks the kernel for a SIGKILL when its
parent dies, so an interrupted harness leaves no bot trading and no server listening."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` of a child: SIGKILL it when this process dies (Linux; elsewhere the
    children's own time limits end them)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
