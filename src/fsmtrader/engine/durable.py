"""The engine's side of the persistence boundary: what changed since the last commit, as a
``StateDelta`` of values for the store, and putting a ``Snapshot`` back."""

from __future__ import annotations

import json

from fsmtrader.engine.parts import EngineParts
from fsmtrader.engine.risk import taker_fee_rate
from fsmtrader.errors import StoreError
from fsmtrader.state.delta import Snapshot, StateDelta
from fsmtrader.strategy import ExitRule, open_exit


def delta(engine: EngineParts) -> StateDelta | None:
    """What changed since the last commit (None: nothing did)."""
    router, pf = engine.router, engine.portfolio
    if not (engine.dirty or router.dirty or pf.dirty or engine.pending_audit):
        return None
    # Counters change only with orders, the portfolio, a halt or an engine count:
    # check that cheaply instead of rewriting (and re-encoding) them every commit.
    meta = {}
    if router.dirty or pf.dirty or meta_signature(engine) != engine.meta_saved:
        meta = {
            "halted": engine.halted,
            "entries_stopped": engine.entries_stopped,
            "counters": json.dumps(engine.persistent_counters(), sort_keys=True),
        }
    states = engine.states
    trades, ghosts = pf.unsaved() if pf.dirty else ([], [])
    return StateDelta(
        symbols=[states[sym] for sym in engine.dirty],
        orders=[router.records[iid] for iid in router.dirty],
        portfolio=pf if pf.dirty else None,
        fills=router.fills,
        audit=engine.pending_audit,
        meta=meta,
        trades=trades,
        ghosts=ghosts,
    )


def meta_signature(engine: EngineParts) -> tuple[str, str, int]:
    """What the saved meta (halt, stop, counters) depends on, besides orders and the
    portfolio."""
    return (
        engine.halted,
        engine.entries_stopped,
        engine.counts.total() - engine.counts["transitions"],
    )


def check_restorable(snap: Snapshot, known: set[str]) -> None:
    """A saved position or open order of a symbol no longer traded must not be dropped."""
    stray = [
        s
        for s in snap.symbols
        if s not in known and (snap.portfolio is not None and s in snap.portfolio.positions)
    ]
    stray += sorted(
        {r.intent.symbol for r in snap.orders if not r.done and r.intent.symbol not in known}
    )
    if stray:
        raise StoreError(
            f"market.symbols: {', '.join(sorted(set(stray)))} still has an open position or "
            "order in the state database; add it back to market.symbols to manage it"
        )


def restore_symbols(engine: EngineParts, snap: Snapshot, rule: ExitRule) -> None:
    """The saved symbol states, each open position's exit levels rebuilt from it; each
    keeps the live signal (not saved: primed or warmed from prices, before or after)."""
    for sym, st in snap.symbols.items():
        live = engine.states.get(sym)
        if live is None:
            continue
        st.signal = live.signal
        engine.states[sym] = st
        pos = engine.portfolio.positions.get(sym)
        saved, st.exit = st.exit, None
        if pos is not None and pos.bought_qty > 0:  # the levels come from the position
            peak, trail = (saved.peak, saved.trail_active) if saved else (None, False)
            fee = taker_fee_rate(engine.filters[sym], engine.policy.risk.reserve_fee)
            st.exit = open_exit(float(pos.avg_entry), rule, peak, trail, fee)
