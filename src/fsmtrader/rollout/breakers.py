"""The loss breakers, pure: a small state (the UTC day and its realised-PnL baseline, the
session's peak equity, the losing streak, how many closed trades it has seen, the halt it
made) and ``check``, which takes the state and the books' figures of this moment and
returns the new state and the crossing, if a breaker is crossed.

Why a state at all: the daily loss needs the realised PnL at the day's start, the drawdown
the highest equity seen, and the streak the trades already counted. It is persisted (the
shell saves ``to_json`` in the engine meta) so a restart neither forgets a loss nor counts
a trade twice.

Re-arming: a crossing halts new entries with a reason starting ``"breaker: "``. When a
person lifts that halt (``recover --clear-halt``, the API's resume), the next ``check``
sees ``halted`` differ from the halt it made and starts again from the current figures
(streak 0, peak = equity now, day baseline = realised PnL now): a lift is a person's
decision that the losses so far are accepted, so the same losses do not trip it again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from fsmtrader.config.rollout_sections import BreakerSettings
from fsmtrader.control.status import mark_decimal
from fsmtrader.portfolio import Portfolio

__all__ = [
    "DAY_MS",
    "PREFIX",
    "BreakerState",
    "Crossing",
    "Figures",
    "armed",
    "check",
    "equity",
]

ZERO = Decimal(0)
DAY_MS = 86_400_000
PREFIX = "breaker: "  # every halt reason a breaker sets starts with this


@dataclass(frozen=True, slots=True)
class Figures:
    """The books at one moment, as the breakers need them."""

    now_ms: int  # the session's clock (simulated in paper, wall in trade)
    realized_pnl: Decimal  # the portfolio's realised PnL so far
    equity: Decimal  # cash + reservations + what is held at the last prices
    trades: int  # closed trades so far
    new_pnls: tuple[Decimal, ...] = ()  # realised PnL of the trades not yet seen, in order
    quote: str = "USDT"


@dataclass(frozen=True, slots=True)
class BreakerState:
    """What the breakers remember between two checks (and across a restart)."""

    day: int = -1  # UTC day number (ms // DAY_MS) of the baseline; -1: never armed
    day_start_pnl: Decimal = ZERO  # realised PnL when that day (or the last re-arm) began
    peak_equity: Decimal = ZERO
    streak: int = 0  # losing trades in a row
    trades_seen: int = 0  # closed trades already counted into the streak
    tripped: str = ""  # the halt reason this breaker set ("" while armed)

    def to_json(self) -> str:
        d = asdict(self)
        for key in ("day_start_pnl", "peak_equity"):
            d[key] = str(d[key])
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BreakerState:
        """The saved state; "" (never saved) is a fresh state. ValueError on a damaged one."""
        if not text:
            return cls()
        try:
            d = json.loads(text)
            return cls(
                day=int(d["day"]),
                day_start_pnl=Decimal(d["day_start_pnl"]),
                peak_equity=Decimal(d["peak_equity"]),
                streak=int(d["streak"]),
                trades_seen=int(d["trades_seen"]),
                tripped=str(d["tripped"]),
            )
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
            raise ValueError(f"breaker state in the engine meta is damaged ({exc})") from None


@dataclass(frozen=True, slots=True)
class Crossing:
    """A crossed breaker: the setting's name, the halt reason, the figures behind it."""

    breaker: str
    reason: str
    figures: dict[str, str]


def equity(pf: Portfolio, marks: Mapping[str, float]) -> Decimal:
    """Free cash, plus the cash reserved for buys in flight, plus what is held (positions
    and recorded dust) at the last prices; a position without a price counts at its
    average entry (no price is no news, not a loss)."""
    total = pf.cash + pf.reserved_total
    for sym, pos in pf.positions.items():
        last = mark_decimal(marks.get(sym))
        total += pos.qty * (last if last is not None else pos.avg_entry)
    for sym, qty in pf.dust.items():
        last = mark_decimal(marks.get(sym))
        if last is not None:
            total += qty * last
    return total


def armed(f: Figures) -> BreakerState:
    """A state that starts from the current figures: nothing lost yet, the peak is now."""
    return BreakerState(
        day=f.now_ms // DAY_MS,
        day_start_pnl=f.realized_pnl,
        peak_equity=f.equity,
        streak=0,
        trades_seen=f.trades,
    )


def check(
    state: BreakerState, f: Figures, limits: BreakerSettings, *, halted: str
) -> tuple[BreakerState, Crossing | None]:
    """The new state, and the first breaker crossed (None: none, or entries are halted
    already — a halt is never overwritten, its reason stays the one a person reads)."""
    if state.day < 0 or (state.tripped and halted != state.tripped):
        state = armed(f)  # first check ever, or a person lifted our halt: from now on
    else:
        state = _track(state, f)
    if halted:
        if halted.startswith(PREFIX) and not state.tripped:
            # our halt was committed but the state saying so was not (a crash between)
            state = replace(state, tripped=halted)
        return state, None
    crossing = _crossed(state, f, limits)
    if crossing is not None:
        state = replace(state, tripped=crossing.reason)
    return state, crossing


def _track(state: BreakerState, f: Figures) -> BreakerState:
    day, base = state.day, state.day_start_pnl
    today = f.now_ms // DAY_MS
    if today != day:
        day, base = today, f.realized_pnl
    streak = state.streak
    for pnl in f.new_pnls:
        streak = streak + 1 if pnl < 0 else 0
    return replace(
        state,
        day=day,
        day_start_pnl=base,
        peak_equity=max(state.peak_equity, f.equity),
        streak=streak,
        trades_seen=f.trades,
    )


def _crossed(state: BreakerState, f: Figures, limits: BreakerSettings) -> Crossing | None:
    q = f.quote
    loss = state.day_start_pnl - f.realized_pnl
    cap = limits.max_daily_loss
    if cap > 0 and loss >= cap:
        since = datetime.fromtimestamp(state.day * DAY_MS / 1000, UTC).strftime("%Y-%m-%d")
        return Crossing(
            "max_daily_loss",
            f"{PREFIX}daily realised loss {_num(loss)} {q} >= max_daily_loss {_num(cap)} "
            f"(since {since} 00:00 UTC)",
            {
                "loss": str(loss),
                "limit": str(cap),
                "day_start_pnl": str(state.day_start_pnl),
                "realized_pnl": str(f.realized_pnl),
            },
        )
    peak, pct = state.peak_equity, Decimal(str(limits.max_drawdown_pct))
    if pct > 0 and peak > 0:
        dd = (peak - f.equity) / peak * 100
        if dd >= pct:
            return Crossing(
                "max_drawdown_pct",
                f"{PREFIX}drawdown {_num(dd, '0.01')}% from peak equity {_num(peak)} {q} "
                f"(equity {_num(f.equity)} {q}) >= max_drawdown_pct {_num(pct)}",
                {
                    "drawdown_pct": str(dd),
                    "limit": str(pct),
                    "peak_equity": str(peak),
                    "equity": str(f.equity),
                },
            )
    n = limits.max_consecutive_losses
    if n > 0 and state.streak >= n:
        return Crossing(
            "max_consecutive_losses",
            f"{PREFIX}{state.streak} losing trades in a row >= max_consecutive_losses {n}",
            {"streak": str(state.streak), "limit": str(n)},
        )
    return None


def _num(x: Decimal, places: str = "0.00000001") -> str:
    """A figure as a person reads it: rounded, no trailing zeros, never an exponent."""
    q = x.quantize(Decimal(places)).normalize()
    return format(q if q != 0 else ZERO, "f")
