"""Settings that validate but cannot act as written, given the others: start-up warnings.

Each rule follows from the settings alone (no markets, no prices) and from how the engine
uses them: the router caps every buy at ``router.slippage_guard_bps`` over the live ask, the
exposure guard admits an entry only while ``exposure + position_size`` fits under
``max_total_exposure``, and a take-profit is checked before the trailing stop. A run with
such settings is safe, it just does not do what a setting says, so these are warnings and
not errors. What needs the venue's markets (a position below a minimum order) is checked
where the markets are known.
"""

from __future__ import annotations

from fsmtrader.config.display import show
from fsmtrader.config.schema import Settings

__all__ = ["unreachable_settings"]


def unreachable_settings(s: Settings) -> list[str]:
    """One line per setting that cannot take effect as written (empty: none)."""
    return [
        *_escalation_over_router_guard(s),
        *_positions_over_exposure(s),
        *_trailing_after_take_profit(s),
        *_sim_lag_over_window(s),
    ]


def _escalation_over_router_guard(s: Settings) -> list[str]:
    """A buy step is priced over the current ask, and the router caps that at its guard."""
    guard = s.router.slippage_guard_bps
    over = [step for step in s.entry.buy_escalation_bps if step > guard]
    if not over:
        return []
    steps = ", ".join(show(step) for step in over)
    verbs = ("steps", "are", "act") if len(over) > 1 else ("step", "is", "acts")
    return [
        f"entry.buy_escalation_bps: {verbs[0]} {steps} {verbs[1]} above "
        f"router.slippage_guard_bps ({show(guard)}) and {verbs[2]} as {show(guard)}: the "
        f"router caps every buy at {show(guard)} bps over the ask it was priced from "
        f"(raise the guard or lower the steps)"
    ]


def _positions_over_exposure(s: Settings) -> list[str]:
    """Full-size positions stop at the exposure cap before the slots run out."""
    r = s.risk
    need = r.max_open_positions * r.position_size
    if need <= r.max_total_exposure:
        return []
    fit = int(r.max_total_exposure // r.position_size)
    fits = "1 full position is" if fit == 1 else f"{fit} full positions are"
    return [
        f"risk.max_open_positions: {r.max_open_positions} positions of risk.position_size "
        f"({r.position_size}) need risk.max_total_exposure >= {need} (it is "
        f"{r.max_total_exposure}), so at most {fits} open at once"
    ]


def _trailing_after_take_profit(s: Settings) -> list[str]:
    """The price that starts the trailing stop already takes the profit."""
    x = s.exit
    if x.trailing_activation_pct == 0 or x.trailing_activation_pct < x.take_profit_pct:
        return []
    return [
        f"exit.trailing_activation_pct: {show(x.trailing_activation_pct)} is >= "
        f"exit.take_profit_pct ({show(x.take_profit_pct)}): the take-profit sells at the "
        f"price that would start the trailing stop, so it acts only if that sell does not "
        f"happen (set it below take_profit_pct, or 0 to turn trailing off)"
    ]


def _sim_lag_over_window(s: Settings) -> list[str]:
    """The router believes "not found" once the window is over (docs/orders.md): a
    simulated venue that hides orders longer makes paper sessions send an intent twice."""
    lag, window = s.sim.visibility_lag_ms, s.exchange.window_ms
    if lag is None or lag <= window:
        return []
    return [
        f"sim.visibility_lag_ms: {lag} is longer than the router's visibility window "
        f"({window} ms, exchange.visibility_window_ms or the venue's): in paper sessions a "
        f"lost answer's order may be sent twice (set exchange.visibility_window_ms >= {lag})"
    ]
