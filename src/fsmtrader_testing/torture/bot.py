"""One run of the bot in a subprocess, ended by a :class:`Kill` or by itself.

The bot's stderr is read as it comes, so a kill can be timed from the moment the bot
says it is trading (its start-up, with the venue's markets and the recovery, takes
seconds on a loaded machine and varies).
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fsmtrader_testing.paper import clean_env
from fsmtrader_testing.torture.lifetime import die_with_parent
from fsmtrader_testing.torture.schedule import Kill

START_TIMEOUT_S = 90.0


@dataclass(frozen=True, slots=True)
class RunResult:
    returncode: int
    stderr: str
    sent_kill: bool = False  # we SIGKILLed it (else it died by itself: a failpoint)

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def run_bot(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    ready: str,
    kill: Kill | None,
    timeout_s: float = 300.0,
) -> RunResult:
    """Run ``argv``; with ``kill``, SIGKILL it ``kill.delay_s`` after the launch (early)
    or after the stderr line containing ``ready``; without, wait for it to end."""
    proc = subprocess.Popen(
        list(argv),
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    lines: deque[str] = deque(maxlen=400)  # a soak's stderr is long; the tail tells
    started = threading.Event()
    reader = threading.Thread(target=_read, args=(proc, ready, lines, started), daemon=True)
    reader.start()
    sent = False
    try:
        sent = _wait_for_end(proc, started, kill, timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(10)
    return RunResult(proc.returncode, "".join(lines), sent)


def _wait_for_end(
    proc: subprocess.Popen[str], started: threading.Event, kill: Kill | None, timeout_s: float
) -> bool:
    """Wait as ``kill`` says; True if we sent the SIGKILL."""
    if kill is None:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
        return False
    if not kill.early:
        # poll so a bot that dies in start-up (a bug or a failpoint) is not waited for
        for _ in range(int(START_TIMEOUT_S / 0.05)):
            if started.wait(0.05) or proc.poll() is not None:
                break
    try:
        proc.wait(timeout=kill.delay_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        return True
    return False


def _read(
    proc: subprocess.Popen[str], ready: str, lines: deque[str], started: threading.Event
) -> None:
    stream = proc.stderr
    if stream is None:
        return
    for line in stream:
        lines.append(line)
        if ready in line:
            started.set()
