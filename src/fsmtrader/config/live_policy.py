"""What a configuration must satisfy before it may trade real money: ONE rule list, used by
``trade --live`` (plus the credentials), ``config --check-live`` and ``preflight``, so the
three never disagree. The bars come from the rollout checklist (exit slippage 500 bps,
entry block >= 60 s, fill timeouts 30 s, exit IOC TTL 500 ms, max hold 120 min, at most 3
open positions, halts on, at most 3 consecutive errors, loss breakers armed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fsmtrader.config.schema import Settings
from fsmtrader.config.secrets import credentials
from fsmtrader.config.sources import ENV_PREFIX

__all__ = ["LIVE_RULES", "LiveRule", "live_problems", "live_rule_problems"]


@dataclass(frozen=True)
class LiveRule:
    """One rule: the setting it reads, the bar in words, and the test of its value."""

    setting: str
    bar: str
    value: Callable[[Settings], Any]
    ok: Callable[[Settings, Any], bool]

    def problem(self, s: Settings) -> str | None:
        """``setting = value: must be <bar> for live trading``, or None when it holds."""
        got = self.value(s)
        if self.ok(s, got):
            return None
        return f"{self.setting} = {_show(got)}: must be {self.bar} for live trading"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _at_most(setting: str, bar: float, get: Callable[[Settings], Any], unit: str) -> LiveRule:
    return LiveRule(setting, f"<= {_show(bar)}{unit}", get, lambda s, v: v <= bar)


def _on(setting: str, get: Callable[[Settings], bool]) -> LiveRule:
    return LiveRule(setting, "true", get, lambda s, v: v is True)


LIVE_RULES: tuple[LiveRule, ...] = (
    _on("exit.never_market_sells", lambda s: s.exit.never_market_sells),
    _at_most("exit.max_exit_slippage_bps", 500, lambda s: s.exit.max_exit_slippage_bps, " bps"),
    LiveRule(
        "entry.entry_block_cooldown_s",
        ">= 60 s",
        lambda s: s.entry.entry_block_cooldown_s,
        lambda s, v: v >= 60,
    ),
    _at_most("timeouts.buy_fill_timeout_s", 30, lambda s: s.timeouts.buy_fill_timeout_s, " s"),
    _at_most("timeouts.sell_fill_timeout_s", 30, lambda s: s.timeouts.sell_fill_timeout_s, " s"),
    _at_most("timeouts.exit_ioc_ttl_ms", 500, lambda s: s.timeouts.exit_ioc_ttl_ms, " ms"),
    _at_most("exit.max_hold_min", 120, lambda s: s.exit.max_hold_min, " min (the trade TTL)"),
    LiveRule(
        "risk.position_size",
        "<= live.max_position_size",
        lambda s: s.risk.position_size,
        lambda s, v: v <= s.live.max_position_size,
    ),
    LiveRule(
        "risk.max_total_exposure",
        "<= live.max_total_exposure",
        lambda s: s.risk.max_total_exposure,
        lambda s, v: v <= s.live.max_total_exposure,
    ),
    _at_most("risk.max_open_positions", 3, lambda s: s.risk.max_open_positions, ""),
    _on("halts.on_reconcile_mismatch", lambda s: s.halts.on_reconcile_mismatch),
    _on("halts.on_order_race", lambda s: s.halts.on_order_race),
    _at_most("errors.max_consecutive_errors", 3, lambda s: s.errors.max_consecutive_errors, ""),
    LiveRule(
        "breakers.max_daily_loss",
        "> 0 (the daily loss breaker armed)",
        lambda s: s.breakers.max_daily_loss,
        lambda s, v: v > Decimal(0),
    ),
    LiveRule(
        "breakers.max_drawdown_pct",
        "> 0 (the drawdown breaker armed)",
        lambda s: s.breakers.max_drawdown_pct,
        lambda s, v: v > 0,
    ),
)


def live_rule_problems(s: Settings) -> list[str]:
    """Every live rule this configuration breaks, one line each naming the setting, its
    value and the rule (empty: the file may trade live). Credentials are not a file's
    property: see :func:`live_problems`."""
    out: list[str] = []
    for rule in LIVE_RULES:
        problem = rule.problem(s)
        if problem is not None:
            if rule.setting.startswith("risk.") and "live." in rule.bar:
                limit = rule.bar.split("<= ")[1]
                problem += f" ({limit} = {_show(_limit(s, limit))})"
            out.append(problem)
    return out


def _limit(s: Settings, name: str) -> Any:
    section, key = name.split(".")
    return getattr(getattr(s, section), key)


def live_problems(s: Settings) -> list[str]:
    """Why this configuration may not trade real money now (empty: it may): the live rules
    and the credentials a live start needs."""
    out = live_rule_problems(s)
    if credentials(s) is None:
        out.append(
            f"exchange.api_key: no credentials; set {ENV_PREFIX}EXCHANGE__API_KEY and "
            f"{ENV_PREFIX}EXCHANGE__API_SECRET, or exchange.key_file"
        )
    return out
