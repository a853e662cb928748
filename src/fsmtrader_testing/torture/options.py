"""What one torture runs: the venue, how many kills, the seed, the fault rate, the soak."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Venue = Literal["sim", "binance", "mexc"]
VENUES: tuple[Venue, ...] = ("sim", "binance", "mexc")

#: Server price speed of the live tortures: simulated seconds per wall second.
LIVE_SPEED = 240.0
#: Speed of the paper torture's session (as it always ran).
PAPER_SPEED = 1800.0
#: How much longer a live run lives on each venue before its kill: ccxt paces its MEXC
#: client by the venue's request weights, so a MEXC poll round takes seconds.
KILL_PACE: dict[str, float] = {"binance": 1.0, "mexc": 1.5}
#: Wall seconds the bot trades, fault-free, before the final check.
QUIET_S = 8.0


@dataclass(frozen=True)
class TortureOptions:
    """``venue`` "sim" is the paper session (``fsmtrader paper``, no wire); "binance" and
    "mexc" run ``trade --live`` against ``fsmtrader sim-server`` with that profile.
    ``hours`` is the paper session's length, or with ``kills == 0`` on a live venue the
    soak: that many hours of the server's prices, i.e. ``hours * 3600 / speed`` wall
    seconds of trading."""

    base: Path
    venue: Venue = "sim"
    kills: int = 10
    seed: int = 1
    fault_rate: float = 0.0
    hours: float = 48.0
    speed: float | None = None  # default: PAPER_SPEED, or LIVE_SPEED on a live venue
    tif: str | None = None
    quiet_s: float = QUIET_S

    @property
    def live(self) -> bool:
        return self.venue != "sim"

    @property
    def time_in_force(self) -> str:
        """GTC on odd seeds, IOC on even ones, unless chosen."""
        return self.tif or ("GTC" if self.seed % 2 else "IOC")

    @property
    def price_speed(self) -> float:
        if self.speed is not None:
            return self.speed
        return LIVE_SPEED if self.live else PAPER_SPEED

    @property
    def soak_wall_s(self) -> float:
        return self.hours * 3600.0 / self.price_speed

    def problems(self) -> list[str]:
        """Why these options cannot run (empty: they can)."""
        out = []
        if self.venue not in VENUES:
            out.append(f"--venue: must be one of {', '.join(VENUES)} (got {self.venue!r})")
        if self.kills < 0:
            out.append(f"--kills: must be >= 0 (got {self.kills})")
        if not 0 <= self.fault_rate <= 1:
            out.append(f"--fault-rate: must be in [0, 1] (got {self.fault_rate:g})")
        if self.fault_rate and not self.live:
            out.append("--fault-rate: wire faults need a live venue (--venue binance|mexc)")
        if not self.price_speed > 0 or not self.hours > 0:
            out.append("--speed and --hours: must be > 0")
        if self.tif not in (None, "IOC", "GTC"):
            out.append(f"--tif: must be IOC or GTC (got {self.tif!r})")
        return out
