"""The run's summary and the counters that survive a restart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from fsmtrader.orders.router import OrderRouter
from fsmtrader.portfolio import Portfolio
from fsmtrader.state.symbol import SymbolState


def summary(
    pf: Portfolio,
    router: OrderRouter,
    counts: Counter[str],
    states: Iterable[SymbolState],
    halted: str,
) -> dict[str, Any]:
    wins = sum(1 for t in pf.trades if t.realized_pnl > 0)
    return {
        "trades": len(pf.trades),
        "wins": wins,
        "win_rate": round(wins / len(pf.trades), 4) if pf.trades else 0.0,
        "realized_pnl": str(pf.realized_pnl),
        "fees": str(pf.fees_paid),
        "cash": str(pf.cash),
        "open_positions": {s: str(p.qty) for s, p in pf.positions.items()},
        "orders": len(router.records),
        "orders_by_final_state": dict(sorted(router.final_states.items())),
        "ghosts": len(pf.ghosts),
        "ghosts_by_reason": dict(sorted(router.ghost_reasons.items())),
        "rejected_orders": sum(router.rejections.values()),
        "rejections_by_reason": dict(sorted(router.rejections.items())),
        "dust": {s: str(q) for s, q in sorted(pf.dust.items())},
        "transitions": counts["transitions"],
        "rejected_events": counts["rejected_events"],
        "guards_blocked": counts["guards_blocked"],
        "phases": dict(Counter(st.phase.value for st in states)),
        "halted": halted,
    }


def persistent_counters(counts: Counter[str], router: OrderRouter) -> dict[str, Any]:
    # transitions are counted by the audit table itself, not rewritten per commit
    engine = {k: v for k, v in counts.items() if k != "transitions"}
    return {"engine": engine, **router.counters()}
