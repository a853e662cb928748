"""The run's summary and the counters that survive a restart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from fsmtrader.orders.router import OrderRouter
from fsmtrader.portfolio import ClosedTrade, Portfolio, Position
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.symbol import SymbolState

ZERO = Decimal(0)


def summary(
    pf: Portfolio,
    router: OrderRouter,
    counts: Counter[str],
    states: Iterable[SymbolState],
    halted: str,
    modes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The run's figures, and the same split by mode (``by_mode``)."""
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
        "observed": counts["observed"],
        "phases": dict(Counter(st.phase.value for st in states)),
        "halted": halted,
        "by_mode": by_mode(
            pf.trades, router.records.values(), modes or {}, pf.positions, counts["observed"]
        ),
    }


def record_mode(rec: OrderRecord, modes: Mapping[str, str]) -> str:
    """An order's mode: its intent's, else (a row no session adopted) its symbol's."""
    return rec.intent.mode or modes.get(rec.intent.symbol, "paper")


def trade_mode(records: Iterable[OrderRecord], modes: Mapping[str, str]) -> dict[str, str]:
    """decision_id -> the mode its orders ran in (a symbol changes mode only when flat,
    so every order of one trade has the same)."""
    return {r.intent.decision_id: record_mode(r, modes) for r in records}


def by_mode(
    trades: Iterable[ClosedTrade],
    records: Iterable[OrderRecord],
    modes: Mapping[str, str],
    positions: Mapping[str, Position],
    observed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per mode: its symbols, orders, closed trades, wins, realised PnL and fees (exact
    text), open positions, and the entries observed (observe mode only)."""
    records = list(records)
    of_trade = trade_mode(records, modes)
    out: dict[str, dict[str, Any]] = {}

    def row(mode: str) -> dict[str, Any]:
        return out.setdefault(
            mode,
            {
                "symbols": 0,
                "orders": 0,
                "trades": 0,
                "wins": 0,
                "realized_pnl": ZERO,
                "fees": ZERO,
                "open_positions": 0,
                "observed": 0,
            },
        )

    for mode in modes.values():
        row(mode)["symbols"] += 1
    for rec in records:
        row(record_mode(rec, modes))["orders"] += 1
    for t in trades:
        r = row(of_trade.get(t.decision_id) or modes.get(t.symbol, "paper"))
        r["trades"] += 1
        r["wins"] += t.realized_pnl > 0
        r["realized_pnl"] += t.realized_pnl
        r["fees"] += t.fees
    for sym, pos in positions.items():
        if pos.qty > 0:
            row(modes.get(sym, "paper"))["open_positions"] += 1
    if observed:
        row("observe")["observed"] = observed
    for r in out.values():
        r["realized_pnl"], r["fees"] = str(r["realized_pnl"]), str(r["fees"])
    return dict(sorted(out.items()))


def persistent_counters(counts: Counter[str], router: OrderRouter) -> dict[str, Any]:
    # transitions are counted by the audit table itself, not rewritten per commit
    engine = {k: v for k, v in counts.items() if k != "transitions"}
    return {"engine": engine, **router.counters()}
