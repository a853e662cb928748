"""Random wire faults at a rate, for the crash torture and the fault soak.

Why: a queued fault (``POST /__sim/fault``) tests one failure a test chose; hours of
trading need failures nobody chose, at a rate, and reproducibly. Each signed trading
request draws once from one ``random.Random(seed)``: with probability ``rate`` it gets
one of the kinds that can happen to that request, as a :class:`Fault` the same
middleware applies as a queued one. The same seed and the same request sequence give
the same faults; what was injected is counted by kind for ``GET /__sim/state``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from fsmtrader_testing.simserver.state import Fault

#: Kinds a random draw can pick, and the requests each can happen to ("*": any signed
#: trading request; else "METHOD" of /api/v3/order).
RANDOM_KINDS: Final = {
    "timeout_after": "*",  # executed, the answer is lost
    "timeout_before": "*",  # never executed, the client times out
    "rate_limit": "*",  # 429 with Retry-After
    "unavailable": "*",  # 503 HTML
    "error": "*",  # 500 with the venue's unknown-error code
    "lag_spike": "POST",  # the new order is not found for a while
    "ioc_open": "POST",  # MEXC: an IOC comes back open and rests
    "cancel_race": "DELETE",  # the order fills in the instant of the cancel
}
MEXC_ONLY: Final = frozenset({"ioc_open"})
#: Endpoints a random fault can hit: trading and account calls, not market data or the
#: set-up calls a client makes once.
TRADING_PATHS: Final = frozenset(
    {
        "/api/v3/order",
        "/api/v3/openOrders",
        "/api/v3/allOrders",
        "/api/v3/myTrades",
        "/api/v3/account",
    }
)
ORDER_PATH: Final = "/api/v3/order"


@dataclass(slots=True)
class RandomFaults:
    """Draws a fault for a signed trading request with probability ``rate``."""

    rate: float
    seed: int
    kinds: tuple[str, ...]
    spike_ms: int = 5_000  # how long a lag spike hides an order
    delay_s: float = 0.0  # how long a timeout stalls before answering
    injected: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def build(
        cls, rate: float, seed: int, kinds: Iterable[str] | None, flavour: str
    ) -> RandomFaults | None:
        """None when ``rate`` is 0; ValueError naming the bad option otherwise."""
        if not isinstance(rate, int | float) or not math.isfinite(rate) or not 0 <= rate <= 1:
            raise ValueError(f"fault_rate must be a number in [0, 1], got {rate!r}")
        chosen = tuple(sorted(set(kinds))) if kinds is not None else None
        if chosen is not None:
            unknown = set(chosen) - set(RANDOM_KINDS)
            if unknown:
                raise ValueError(
                    f"unknown fault kinds: {', '.join(sorted(unknown))} "
                    f"(allowed: {', '.join(sorted(RANDOM_KINDS))})"
                )
            if flavour != "mexc" and set(chosen) & MEXC_ONLY:
                raise ValueError("fault kind ioc_open is a MEXC behaviour; use flavour 'mexc'")
            if not chosen:
                raise ValueError("fault_kinds must name at least one kind")
        else:
            chosen = tuple(
                k for k in sorted(RANDOM_KINDS) if flavour == "mexc" or k not in MEXC_ONLY
            )
        if rate == 0:
            return None
        return cls(rate=float(rate), seed=seed, kinds=chosen)

    def draw(self, method: str, path: str) -> Fault | None:
        """One draw for this request (every signed trading request draws exactly once,
        so the sequence of faults depends only on the seed and the requests)."""
        if path not in TRADING_PATHS:
            return None
        hit = self._rng.random() < self.rate
        pick = self._rng.random()  # drawn either way: one fixed step per request
        if not hit:
            return None
        fits = [
            k
            for k in self.kinds
            if RANDOM_KINDS[k] == "*" or (path == ORDER_PATH and RANDOM_KINDS[k] == method)
        ]
        if not fits:
            return None
        kind = fits[min(int(pick * len(fits)), len(fits) - 1)]
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return Fault(endpoint=f"{method} {path}", kind=kind, delay_s=self.delay_s)
