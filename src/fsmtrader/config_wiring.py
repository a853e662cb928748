"""Settings -> the engine's policies, and the one function that builds an Engine.

The core (engine, orders, portfolio, strategy) takes frozen policy values, never the
pydantic settings: this module is the only bridge, so the core can be built and tested
without a configuration file, and a setting's conversion (seconds to ms, float bps to
Decimal) is written once.
"""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.audit import EventBus
from fsmtrader.clock import Clock
from fsmtrader.config import Settings
from fsmtrader.drive import BarRules
from fsmtrader.engine import Engine
from fsmtrader.engine.modes import session_modes
from fsmtrader.engine.policy import (
    EnginePolicy,
    EntryPolicy,
    ErrorPolicy,
    ExitPolicy,
    ProtectPolicy,
    RiskLimits,
    TimeoutPolicy,
)
from fsmtrader.exchange.types import Exchange
from fsmtrader.markets import MarketFilters
from fsmtrader.orders.router import RouterConfig
from fsmtrader.strategy import ExitRule

BPS = Decimal(10_000)


def _dec(x: float) -> Decimal:
    """A float setting as the Decimal a person wrote (0.1, not 0.1000000000000000055)."""
    return Decimal(str(x))


def entry_policy(s: Settings) -> EntryPolicy:
    e = s.entry
    return EntryPolicy(
        anchor_window_min=e.anchor_window_min,
        drop_trigger_pct=e.drop_trigger_pct,
        max_spread_bps=e.max_spread_bps,
        min_volume=e.min_volume,
        sma_filter=e.sma_filter,
        sma_window_min=e.sma_window_min,
        escalation_bps=tuple(_dec(x) for x in e.buy_escalation_bps),
        max_slippage_bps=_dec(e.max_entry_slippage_bps),
        time_in_force=s.router.time_in_force,
    )


def exit_policy(s: Settings) -> ExitPolicy:
    x = s.exit
    return ExitPolicy(
        rule=ExitRule(
            x.take_profit_pct,
            x.stop_loss_pct,
            x.trailing_activation_pct,
            x.trailing_distance_pct,
            x.take_profit_net_of_fees,
        ),
        ladder_bps=tuple(_dec(b) for b in x.exit_ladder_bps),
        max_slippage_bps=_dec(x.max_exit_slippage_bps),
        never_market_sells=x.never_market_sells,
        flash_crash_guard_pct=_dec(x.flash_crash_guard_pct),
    )


def bar_rules(s: Settings) -> BarRules:
    """How a backtest reads its candles (``[backtest]``; paper and live ignore it)."""
    b = s.backtest
    return BarRules(both_touch=b.both_touch, next_open=b.entry_on == "next_open")


def timeout_policy(s: Settings) -> TimeoutPolicy:
    tm = s.timeouts
    return TimeoutPolicy(
        warmup_ms=int(tm.warmup_timeout_s * 1000),
        buy_fill_ms=int(tm.buy_fill_timeout_s * 1000),
        partial_fill_ms=int(tm.partial_fill_stuck_s * 1000),
        sell_fill_ms=int(tm.sell_fill_timeout_s * 1000),
        ioc_ttl_ms=tm.exit_ioc_ttl_ms,
        max_hold_ms=int(s.exit.max_hold_min * 60_000),
        cooldown_ms=int(s.exit.cooldown_s * 1000),
        block_ms=int(s.entry.entry_block_cooldown_s * 1000),
        stuck_ms=int(tm.stuck_state_s * 1000),
        error_backoff_base_s=s.errors.backoff_base_s,
        error_backoff_max_s=s.errors.backoff_max_s,
    )


def engine_policy(s: Settings, *, live: bool = False) -> EnginePolicy:
    """The engine's policy; only the symbols that are not off are in it (``live``: a
    session with a venue to send to, see ``engine.modes.session_modes``)."""
    r = s.risk
    modes = session_modes(s, live=live)
    return EnginePolicy(
        symbols=tuple(modes),
        modes=modes,
        quote=s.market.quote,
        starting_cash=s.market.starting_balance,
        idempotency_expiry_ms=int(s.router.idempotency_expiry_s * 1000),
        entry=entry_policy(s),
        exit=exit_policy(s),
        timeouts=timeout_policy(s),
        risk=RiskLimits(
            position_size=r.position_size,
            max_open_positions=r.max_open_positions,
            max_total_exposure=r.max_total_exposure,
            reserve_fee=_dec(r.reserve_fee_bps) / BPS,
        ),
        errors=ErrorPolicy(
            max_consecutive_errors=s.errors.max_consecutive_errors,
            halt_on_order_race=s.halts.on_order_race,
        ),
        router=router_config(s),
        protect=protect_policy(s),
    )


def protect_policy(s: Settings) -> ProtectPolicy | None:
    """The protective stop's policy, None when ``protect.enabled`` is off."""
    p = s.protect
    if not p.enabled:
        return None
    return ProtectPolicy(_dec(p.limit_offset_bps), _dec(p.min_move_bps))


def router_config(s: Settings) -> RouterConfig:
    """The router's settings; its visibility window is the venue profile's unless
    ``exchange.visibility_window_ms`` overrides it."""
    return RouterConfig(
        max_retries=s.router.max_retries,
        backoff_ms=s.router.backoff_ms,
        slippage_guard_bps=_dec(s.router.slippage_guard_bps),
        visibility_window_ms=s.exchange.window_ms,
    )


def build_engine(
    settings: Settings,
    *,
    clock: Clock,
    exchange: Exchange,
    filters: dict[str, MarketFilters],
    bus: EventBus | None = None,
    starting_cash: Decimal | None = None,
    live: bool = False,
) -> Engine:
    """The engine for ``settings`` on these plugs (``starting_cash`` defaults to
    market.starting_balance; ``live``: the session sends "live" symbols to the venue)."""
    return Engine(
        engine_policy(settings, live=live),
        clock=clock,
        exchange=exchange,
        filters=filters,
        bus=bus,
        starting_cash=starting_cash,
    )
