"""How to build an adapter: one frozen value instead of a parameter list repeated by the
async client, the sync facade and every caller. No ccxt import, so settings code can
build one without loading ccxt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fsmtrader.exchange.ccxt_adapter.venues import SUPPORTED, VENUES, ExchangeId, VenueProfile


@dataclass(frozen=True, slots=True)
class CcxtOptions:
    """Connection, retry and venue settings of one adapter.

    ``base_url`` sends every API family of the venue there (a local server), path kept,
    so nothing can reach the real venue by accident. ``not_found_grace_ms`` None means
    the venue's own window (:class:`VenueProfile`). ``retry_attempts`` counts all
    attempts of one call, the first included; ``max_wait_s`` caps one backoff sleep (a
    longer Retry-After goes back to the caller). ``ccxt_options`` are merged over the
    venue's; ``rate_limit`` is ccxt's client-side throttle. ``profile`` replaces the
    venue's profile (its limits and windows: settings overrides, tests with small pages);
    it must be the same venue's.
    """

    exchange_id: ExchangeId
    api_key: str | None = field(repr=False)
    api_secret: str | None = field(repr=False)
    base_url: str | None = None
    timeout_ms: int = 10_000
    not_found_grace_ms: int | None = None
    retry_attempts: int = 4
    retry_base_s: float = 0.2
    max_wait_s: float = 10.0
    ccxt_options: Mapping[str, Any] | None = None
    rate_limit: bool = True
    profile: VenueProfile | None = None

    def __post_init__(self) -> None:
        if self.exchange_id not in SUPPORTED:
            raise ValueError(f"exchange_id must be one of {SUPPORTED}, got {self.exchange_id!r}")
        if self.profile is not None and self.profile.id != self.exchange_id:
            raise ValueError(f"profile is {self.profile.id}'s, not {self.exchange_id}'s")
        if self.retry_attempts < 1:
            raise ValueError("retry_attempts must be >= 1")

    @property
    def venue(self) -> VenueProfile:
        return self.profile if self.profile is not None else VENUES[self.exchange_id]

    @property
    def grace_ms(self) -> int:
        """The not-found window in force: the caller's, else the venue's."""
        if self.not_found_grace_ms is None:
            return self.venue.not_found_grace_ms
        return self.not_found_grace_ms

    @property
    def authenticated(self) -> bool:
        return bool(self.api_key and self.api_secret)


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, tables merged key by key (the caller's ccxt options over
    the venue's)."""
    out: dict[str, Any] = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
