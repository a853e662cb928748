"""BookReader's trades, daily, ghosts and alerts on a database the store itself wrote:
filters and limits, UTC days with the empty ones, the ghost rate per SIGNAL transition, and
alert records found incrementally (a second call reads only what came after the first)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.control.reads import DAY_MS, BookReader
from fsmtrader.portfolio import ClosedTrade, Ghost, Portfolio
from fsmtrader.state.delta import StateDelta
from fsmtrader.state.records import Record
from fsmtrader.state.symbol import SymbolState
from fsmtrader.store.sqlite import SqliteStore, open_store

D = Decimal
DAY0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def trade(symbol: str, exit_ms: int, pnl: str) -> ClosedTrade:
    return ClosedTrade(
        symbol=symbol,
        decision_id=f"{symbol}-{exit_ms}",
        entry_ms=exit_ms - 60_000,
        exit_ms=exit_ms,
        bought_qty=D(1),
        sold_qty=D(1),
        avg_entry=D(10),
        avg_exit=D(10) + D(pnl),
        buy_fees=D("0.01"),
        sell_fees=D("0.02"),
        sell_legs=1,
        dust_qty=D(0),
        realized_pnl=D(pnl),
        exit_reason="take_profit",
    )


def phase(ts: int, event: str) -> Record:
    return {
        "kind": "phase",
        "ts": ts,
        "symbol": "A/USDT",
        "seq": ts,
        "from": "IDLE",
        "event": event,
        "to": "ENTRY_EVAL",
        "action": "NONE",
        "decision_id": "",
        "reason": "",
    }


def save(store: SqliteStore, **parts: Any) -> None:
    store.save(StateDelta(symbols=[SymbolState("A/USDT")], **parts))


def test_trades_daily_ghosts_and_alerts(tmp_path: Path) -> None:
    db = tmp_path / "fsmtrader.db"
    store = open_store(db)
    trades = [
        trade("A/USDT", DAY0 + 1_000, "0.5"),
        trade("B/USDT", DAY0 + 2_000, "-0.2"),
        trade("A/USDT", DAY0 + 2 * DAY_MS + 5, "0.25"),
    ]
    pf = Portfolio(quote="USDT", cash=D(1000), realized_pnl=D("0.55"), fees_paid=D("0.09"))
    pf.trades = trades
    ghost = Ghost(DAY0, "A/USDT", "buy", "i1", "d1", "below_min_notional")
    save(
        store,
        portfolio=pf,
        trades=trades,
        ghosts=[ghost, Ghost(DAY0 + 1, "B/USDT", "sell", "i2", "d2", "over_budget")],
        audit=[
            phase(DAY0, "SIGNAL"),
            phase(DAY0 + 1, "GUARDS_PASSED"),
            {"kind": "halt", "ts": DAY0 + 2, "reason": "order race"},
            phase(DAY0 + 3, "SIGNAL"),
        ],
        meta={"halted": "order race"},
    )
    reader = BookReader(db, tmp_path)

    assert [t["id"] for t in reader.trades(None, None, 10)] == [3, 2, 1]
    assert [t["id"] for t in reader.trades("A/USDT", None, 10)] == [3, 1]
    assert [t["id"] for t in reader.trades(None, DAY0 + 1_500, 10)] == [3, 2]
    assert [t["id"] for t in reader.trades(None, None, 1)] == [3]
    assert reader.trades(None, None, 0) == []
    t3 = reader.trades(None, None, 1)[0]
    assert (t3["realized_pnl"], t3["fees"], t3["symbol"]) == ("0.25", "0.03", "A/USDT")

    days = reader.daily(4)
    assert [d["day"] for d in days] == ["2025-12-31", "2026-01-01", "2026-01-02", "2026-01-03"]
    assert [(d["trades"], d["wins"], d["realized_pnl"]) for d in days] == [
        (0, 0, "0"),
        (2, 1, "0.3"),
        (0, 0, "0"),
        (1, 1, "0.25"),
    ]
    assert [d["day"] for d in reader.daily(2, now_ms=DAY0 + 10 * DAY_MS)] == [
        "2026-01-10",
        "2026-01-11",
    ]

    profit = reader.profit()
    assert (profit["trades"], profit["wins"], profit["losses"]) == (3, 2, 1)
    assert profit["realized_pnl"] == profit["trades_pnl"] == "0.55"
    assert profit["fees"] == "0.09" and profit["win_rate"] == 0.6667
    assert profit["best"]["id"] == 1 and profit["worst"]["id"] == 2

    g = reader.ghosts()
    assert g["count"] == 2 and g["signals"] == 2 and g["ghost_rate"] == 1.0
    assert g["by_reason"] == {"below_min_notional": 1, "over_budget": 1}
    assert [x["intent_id"] for x in g["recent"]] == ["i2", "i1"]

    a = reader.alerts(10)
    assert a["halted"] == "order race" and a["entries_stopped"] == ""
    assert [r["kind"] for r in a["records"]] == ["halt"]
    assert a["records"][0]["audit_id"] == 3

    # more records come in: both counts follow, reading only what is new
    save(
        store,
        audit=[
            {"kind": "resume", "ts": DAY0 + 4, "was": "order race"},
            phase(DAY0 + 5, "SIGNAL"),
            {
                "kind": "alert",
                "ts": DAY0 + 6,
                "symbol": "A/USDT",
                "alert": "stuck",
                "detail": "WAIT_FILL for 10 min",
            },
        ],
        meta={"halted": ""},
    )
    g = reader.ghosts()
    assert g["signals"] == 3 and g["ghost_rate"] == round(2 / 3, 6)
    a = reader.alerts(2)
    assert [(r["kind"], r["audit_id"]) for r in a["records"]] == [("alert", 7), ("resume", 5)]
    assert a["halted"] == ""
    assert [r["audit_id"] for r in reader.alerts(10)["records"]] == [7, 5, 3]
    assert [r["audit_id"] for r in reader.audit(4, 2)] == [5, 6]
    assert reader.audit(7, 10) == []
    store.close()
    reader.close()
    fresh = BookReader(db, tmp_path)  # a new reader counts from the start: the same
    assert fresh.ghosts()["signals"] == 3
    assert [r["audit_id"] for r in fresh.alerts(10)["records"]] == [7, 5, 3]
    assert fresh.reconcile_report() is None
    (tmp_path / "reconcile.json").write_text('{"ok": true}')
    assert fresh.reconcile_report() == {"ok": True}
    fresh.close()
