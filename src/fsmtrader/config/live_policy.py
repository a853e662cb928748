"""What a configuration must satisfy before it may trade real money (``trade --live``)."""

from __future__ import annotations

from fsmtrader.config.schema import Settings
from fsmtrader.config.secrets import credentials
from fsmtrader.config.sources import ENV_PREFIX

__all__ = ["live_problems"]


def live_problems(s: Settings) -> list[str]:
    """Why this configuration may not trade real money (empty: it may)."""
    out = []
    if not s.exit.never_market_sells:
        out.append("exit.never_market_sells: must be true for live trading")
    if s.risk.max_total_exposure > s.live.max_total_exposure:
        out.append(
            f"risk.max_total_exposure: {s.risk.max_total_exposure} is above the live limit "
            f"live.max_total_exposure = {s.live.max_total_exposure}"
        )
    if s.risk.position_size > s.live.max_position_size:
        out.append(
            f"risk.position_size: {s.risk.position_size} is above the live limit "
            f"live.max_position_size = {s.live.max_position_size}"
        )
    if credentials(s) is None:
        out.append(
            f"exchange.api_key: no credentials; set {ENV_PREFIX}EXCHANGE__API_KEY and "
            f"{ENV_PREFIX}EXCHANGE__API_SECRET, or exchange.key_file"
        )
    return out
