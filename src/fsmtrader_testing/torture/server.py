"""``fsmtrader sim-server`` as a separate process: the exchange outlives every bot it
serves, so a SIGKILLed bot restarts against the same orders, fills and balances.

The server dies with the torture (``PR_SET_PDEATHSIG``) and on :meth:`SimServer.stop`, so
a crashed harness never leaves an exchange listening.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from fsmtrader_testing.paper import clean_env, fsmtrader_argv
from fsmtrader_testing.simserver.threaded import admin
from fsmtrader_testing.torture.lifetime import die_with_parent

API_KEY = "test-key"  # the server's defaults: what `fsmtrader sim-server` accepts
API_SECRET = "test-secret"
MEXC_QUIRKS = ("order_not_found_after_create", "ioc_returns_open")
READY = "listening on "


@dataclass
class SimServer:
    """A running ``fsmtrader sim-server`` and its loopback-only ``/__sim`` endpoints."""

    venue: str
    speed: float
    seed: int
    fault_rate: float = 0.0
    base_url: str = ""
    started_ms: int = 0  # wall clock (the server's clock) when it was launched
    proc: subprocess.Popen[str] | None = field(default=None, repr=False)

    def start(self) -> SimServer:
        """Launch on a free port and wait for its "listening on" line."""
        self.started_ms = int(time.time() * 1000)
        args = ["sim-server", "--flavour", self.venue, "--port", "0"]
        args += ["--speed", f"{self.speed:g}", "--seed", str(self.seed), *self.profile()]
        if self.fault_rate:
            args += ["--fault-rate", f"{self.fault_rate:g}", "--fault-seed", str(self.seed)]
        self.proc = subprocess.Popen(
            fsmtrader_argv(*args),
            env=clean_env(COLUMNS="200"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )
        stdout = self.proc.stdout
        if stdout is None:
            raise RuntimeError("sim-server: no stdout pipe")
        deadline = time.monotonic() + 60
        for line in stdout:
            if READY in line:
                self.base_url = line.split(READY, 1)[1].strip()
                return self
            if time.monotonic() > deadline:
                break
        err = self.proc.stderr.read() if self.proc.stderr else ""
        self.stop()
        raise RuntimeError(f"sim-server did not start: {err.strip()[-500:]}")

    def profile(self) -> list[str]:
        """The venue's behaviours: MEXC's quirks (not found after create, IOC returned
        open); on Binance a 300 ms visibility lag and fees in the received asset (its
        default without BNB), in BNB on every third seed."""
        if self.venue == "mexc":
            return [arg for quirk in MEXC_QUIRKS for arg in ("--quirk", quirk)]
        fees = "bnb" if self.seed % 3 == 0 else "received"
        return ["--visibility-lag-ms", "300", "--fee-asset", fees]

    def set_fault_rate(self, rate: float) -> None:
        """Change the random fault rate (0: no more faults)."""
        admin(self.base_url, "POST", "/__sim/fault-rate", {"rate": rate})

    def faults_injected(self) -> dict[str, int]:
        """The random faults the server injected so far, by kind."""
        got: dict[str, int] = self.state()["faults_injected"]
        return got

    def state(self) -> dict[str, Any]:
        """The server's oracle: every order by clientOrderId, balances, prices."""
        result: dict[str, Any] = admin(self.base_url, "GET", "/__sim/state")
        return result

    def stop(self) -> None:
        """SIGTERM (the server's clean stop), SIGKILL if it lingers."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
