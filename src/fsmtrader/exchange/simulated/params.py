"""The simulated venue's parameters, in one frozen object.

Why one object: the fee, spread and depth settings used to be spelled out in five
parameter lists (the constructor, ``open``, the file check, the runner and the tests);
now each of those takes or builds a :class:`SimParams`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final

from fsmtrader.exchange.simulated.venue import BINANCE, SimVenue
from fsmtrader.markets import MarketFilters

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
BPS: Final = Decimal(10_000)
# Internal money arithmetic runs at this precision so products of prices, amounts and
# fee rates stay exact (the default 28 digits could round a lock share).
PREC: Final = 60


@dataclass(frozen=True, slots=True)
class SimParams:
    """How the simulated venue charges and how deep its synthetic book is.

    ``seed`` starts the one random generator (depth level sizes); ``name`` is the
    exchange's protocol name. Fees and spreads are in basis points; ``depth_quote`` is
    roughly the quote value of one book level and ``level_step_bps`` the distance between
    levels. ``venue`` is the venue's behaviour the simulator copies (client-id rule,
    visibility lag, fee asset, history pages; :mod:`.venue`), Binance's by default."""

    seed: int = 0
    maker_fee_bps: Decimal = Decimal("10")
    taker_fee_bps: Decimal = Decimal("10")
    spread_bps: Decimal = Decimal("5")
    depth_quote: Decimal = Decimal("2000")
    depth_levels: int = 5
    level_step_bps: Decimal = Decimal("5")
    name: str = "sim"
    venue: SimVenue = BINANCE

    def __post_init__(self) -> None:
        if self.depth_levels < 1:
            raise ValueError("depth_levels must be >= 1")
        for label, v in (
            ("maker_fee_bps", self.maker_fee_bps),
            ("taker_fee_bps", self.taker_fee_bps),
            ("spread_bps", self.spread_bps),
            ("depth_quote", self.depth_quote),
            ("level_step_bps", self.level_step_bps),
        ):
            if v < 0:
                raise ValueError(f"{label} must be >= 0, got {v}")

    @property
    def maker_rate(self) -> Decimal:
        return self.maker_fee_bps / BPS

    @property
    def taker_rate(self) -> Decimal:
        return self.taker_fee_bps / BPS

    @property
    def lock_rate(self) -> Decimal:
        """What a limit buy locks per unit of notional: it may fill either way, so the
        dearer of the two fees is set aside."""
        return ONE + max(self.maker_rate, self.taker_rate)

    def file_params(self) -> dict[str, Decimal]:
        """The parameters an exchange file records and must match when reopened (the
        seed is not among them: a file's own random state wins)."""
        return {
            "maker_fee_bps": self.maker_fee_bps,
            "taker_fee_bps": self.taker_fee_bps,
            "spread_bps": self.spread_bps,
            "depth_quote": self.depth_quote,
            "depth_levels": Decimal(self.depth_levels),
            "level_step_bps": self.level_step_bps,
        }

    def with_fees(self, filters: Mapping[str, MarketFilters]) -> dict[str, MarketFilters]:
        """``filters`` as this venue trades them: every market states the maker and taker
        fee the simulator charges, so a session on the simulator sizes its reservations
        from the venue it actually trades on."""
        maker, taker = self.maker_rate, self.taker_rate
        return {s: replace(m, maker_fee=maker, taker_fee=taker) for s, m in filters.items()}
