"""What a torture found, and the one line every torture ends with."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from fsmtrader.smoke.verify import Verdict

UNCHECKED = Verdict(0, 0, Decimal(0), 0, [])


@dataclass
class Report:
    """One torture: how many runs died, what was injected, what the check said."""

    kills: int = 0
    verdict: Verdict = UNCHECKED
    faults: dict[str, int] = field(default_factory=dict)
    failpoint_deaths: int = 0  # runs that died at their failpoint, not by our SIGKILL
    wall_s: float = 0.0
    sim_hours: float = 0.0
    orders: int = 0
    filled_orders: int = 0
    trades: int = 0  # closed trades in the books
    intents: int = 0  # order intents in the books (sent or not)

    def last_line(self) -> str:
        """``kills=N duplicates=D orphans=O drift=X lost_fills=L``."""
        return f"kills={self.kills} {self.verdict.last_line()}"

    def summary(self) -> str:
        """The figures behind the last line (stderr)."""
        faults = ", ".join(f"{k}={n}" for k, n in sorted(self.faults.items())) or "none"
        prices = f", {self.sim_hours:.2f} simulated h of prices" if self.sim_hours else ""
        trading = (
            f"; {self.intents} intents in the books, {self.orders} orders on the exchange "
            f"({self.filled_orders} with fills), {self.trades} closed trades"
            if self.intents or self.orders
            else ""
        )
        deaths = f"; {self.failpoint_deaths} died at their failpoint" if self.kills else ""
        injected = sum(self.faults.values())
        return (
            f"elapsed {self.wall_s:.1f}s wall{prices}{trading}{deaths}; "
            f"faults injected: {injected} ({faults})"
        )
