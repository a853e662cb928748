"""What a torture found, and the one line every torture ends with."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class Verdict:
    """The check of the books against the exchange. ``lost_fills``: fills the exchange
    made for our orders that the books do not hold (the money is gone from the bot's
    sight); duplicates, orphans and drift as in :mod:`fsmtrader_testing.verify`."""

    duplicates: int = 0
    orphans: int = 0
    drift: Decimal = Decimal(0)
    lost_fills: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return not (self.duplicates or self.orphans or self.drift or self.lost_fills)


@dataclass
class Report:
    """One torture: how many runs died, what was injected, what the check said."""

    kills: int = 0
    verdict: Verdict = field(default_factory=Verdict)
    faults: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    sim_hours: float = 0.0
    orders: int = 0
    filled_orders: int = 0
    trades: int = 0  # closed trades in the books

    def last_line(self) -> str:
        v = self.verdict
        return (
            f"kills={self.kills} duplicates={v.duplicates} orphans={v.orphans} "
            f"drift={v.drift} lost_fills={v.lost_fills}"
        )

    def summary(self) -> str:
        """The figures behind the last line (stderr)."""
        faults = ", ".join(f"{k}={n}" for k, n in sorted(self.faults.items())) or "none"
        prices = f", {self.sim_hours:.2f} simulated h of prices" if self.sim_hours else ""
        trading = (
            f"; {self.orders} orders on the exchange ({self.filled_orders} with fills), "
            f"{self.trades} closed trades"
            if self.orders
            else ""
        )
        injected = sum(self.faults.values())
        return (
            f"elapsed {self.wall_s:.1f}s wall{prices}{trading}; "
            f"faults injected: {injected} ({faults})"
        )
