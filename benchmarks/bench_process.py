"""One child process measured on its own: wall and CPU time, peak RSS (``os.wait4``)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Proc:
    """One finished process: wall and CPU seconds, peak RSS (MB), exit code, output."""

    wall_s: float
    cpu_s: float
    rss_mb: float
    code: int
    out: str
    err: str


def run_process(argv: list[str], cwd: str | os.PathLike[str]) -> Proc:
    """Run ``argv`` to its end; its own peak RSS from wait4 (not this process's)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Proc(
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024,
            proc.returncode,
            out.read(),
            err.read(),
        )
