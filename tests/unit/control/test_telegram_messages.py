"""The Telegram messages of real records: a paper session (real engine, simulated exchange,
SQLite) trades for a few seconds; every entry and exit message is checked against the very
record it came from (price, amount, cost, fees, PnL and %, decision_id), and the rarer
kinds (ghost, halt, reconcile mismatch, ERROR and back, stuck) against records made by the
engine's own code or a real record moved to that state."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from fsmtrader.config import load_settings
from fsmtrader.config.control_sections import TelegramSettings
from fsmtrader.control.reads import BookReader
from fsmtrader.control.telegram.messages import (
    daily_summary,
    money,
    notification,
    shown,
    signed,
    trade_pct,
)
from fsmtrader.engine.monitor import stuck_alert
from fsmtrader.session import PaperSession
from fsmtrader.state.symbol import SymbolState
from fsmtrader_testing.paper import session_toml

pytestmark = pytest.mark.timeout(60)
ON = TelegramSettings()
Q8 = Decimal("0.00000001")


@dataclass
class Run:
    audit: list[dict[str, Any]]
    reader: BookReader


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("tgmsg")
    cfg = tmp / "c.toml"
    cfg.write_text(session_toml(seed=4))
    session = PaperSession(load_settings(cfg, env={}), tmp / "state", hours=12, speed=3000)
    try:
        session.start()
        session.run(stop_after_s=3)
        session.engine.halt("telegram test: a halt")
        session.engine.commit()
        path = session.state_dir / "audit.jsonl"
        audit = [json.loads(line) for line in path.read_text().splitlines()]
        reader = BookReader(session.store.path, session.state_dir)
        try:
            yield Run(audit, reader)
        finally:
            reader.close()
    finally:
        session.close()


def kinds(run: Run, kind: str) -> list[dict[str, Any]]:
    return [r for r in run.audit if r["kind"] == kind]


def numbers(text: str) -> list[str]:
    return re.findall(r"[-+]?\d+(?:\.\d+)?", text)


def test_every_entry_message_carries_the_position_records_numbers(run: Run) -> None:
    positions = kinds(run, "position")
    assert len(positions) >= 3  # the session really traded
    for r in positions:
        note = notification(r, ON)
        assert note is not None and note.kind == "entry"
        assert r["symbol"] in note.text and r["decision_id"] in note.text
        assert f"{r['qty']} @ {r['avg_entry']}" in note.text
        cost = Decimal(r["qty"]) * Decimal(r["avg_entry"])
        m = re.search(r"cost ([\d.]+), fees ([\d.]+)", note.text)
        assert m is not None, note.text
        assert abs(Decimal(m[1]) - cost) <= Decimal("0.000000005")
        assert Decimal(m[2]) == Decimal(r["fees"])
        # the same numbers as the buy fill the engine booked for that decision
        fills = [
            f
            for f in kinds(run, "fill")
            if f["decision_id"] == r["decision_id"] and f["side"] == "buy"
        ]
        assert sum(Decimal(f["amount"]) for f in fills) == Decimal(r["qty"])


def test_every_exit_message_carries_the_trade_records_numbers(run: Run) -> None:
    trades = kinds(run, "trade")
    assert len(trades) >= 2
    for r in trades:
        note = notification(r, ON)
        assert note is not None and note.kind == "exit"
        text = note.text
        assert r["symbol"] in text and r["exit_reason"] in text and r["decision_id"] in text
        assert f"{r['sold_qty']} @ {r['avg_exit']}" in text
        m = re.search(r"PnL ([-+][\d.]+)", text)
        assert m is not None and Decimal(m[1]) == Decimal(r["realized_pnl"]).quantize(Q8)
        fees = Decimal(r["buy_fees"]) + Decimal(r["sell_fees"])
        assert f"fees {shown(fees)}" in text
        pct = (
            Decimal(r["realized_pnl"]) * 100 / (Decimal(r["bought_qty"]) * Decimal(r["avg_entry"]))
        )
        m = re.search(r"\(([-+][\d.]+)%\)", text)
        assert m is not None and Decimal(m[1]) == pct.quantize(Decimal("0.01"))
        assert trade_pct(r) == Decimal(m[1])
        legs = r["sell_legs"]
        assert f"{legs} leg" in text
        # the trade's numbers are the books': BookReader.trades has the same row
    books = {t["decision_id"]: t for t in run.reader.trades(None, None, 1000)}
    for r in trades:
        assert books[r["decision_id"]]["realized_pnl"] == r["realized_pnl"]


def test_only_the_records_worth_telling_make_a_message(run: Run) -> None:
    made = {r["kind"] for r in run.audit if notification(r, ON) is not None}
    assert made <= {"position", "trade", "halt"}
    fills_orders_phases = [r for r in run.audit if r["kind"] in ("fill", "order", "phase")]
    assert fills_orders_phases and all(notification(r, ON) is None for r in fills_orders_phases)


def test_each_switch_silences_its_kind(run: Run) -> None:
    pos, trade, halt = kinds(run, "position")[0], kinds(run, "trade")[0], kinds(run, "halt")[-1]
    assert notification(pos, TelegramSettings(notify_entry=False)) is None
    assert notification(trade, TelegramSettings(notify_exit=False)) is None
    assert notification(halt, TelegramSettings(notify_halt=False)) is None
    assert notification(pos, TelegramSettings(notify_exit=False)) is not None


def test_halt_and_reconcile_mismatch(run: Run) -> None:
    halt = kinds(run, "halt")[-1]
    note = notification(halt, ON)
    assert note is not None and note.kind == "halt"
    assert "telegram test: a halt" in note.text
    mismatch = dict(halt, reason="reconcile MISMATCH: 1 orphaned order(s), 0 missing order(s)")
    note = notification(mismatch, ON)
    assert note is not None and note.kind == "reconcile" and "1 orphaned order(s)" in note.text
    assert notification(mismatch, TelegramSettings(notify_reconcile=False)) is None
    resume = notification({"kind": "resume", "ts": 1, "was": "telegram test: a halt"}, ON)
    assert resume is not None and "telegram test: a halt" in resume.text


def test_a_ghost_entry_says_why_and_is_rate_limited_by_kind(run: Run) -> None:
    order = next(r for r in kinds(run, "order") if r["side"] == "buy" and r["state"] == "RESERVED")
    ghost = dict(order, state="FAILED_FINAL", reason="ghost:insufficient_balance")
    note = notification(ghost, ON)
    assert note is not None and note.kind == "ghost"
    assert "insufficient_balance" in note.text and order["decision_id"] in note.text
    assert order["symbol"] in note.text
    assert notification(dict(ghost, reason="cancelled"), ON) is None  # not a ghost
    assert notification(ghost, TelegramSettings(notify_ghost=False)) is None


def test_error_recovered_and_stuck(run: Run) -> None:
    phase = next(r for r in kinds(run, "phase") if r["to"] == "WAIT_FILL")
    err = dict(phase, to="ERROR", event="FAULT", reason="NetworkError: venue down")
    note = notification(err, ON)
    assert note is not None and note.kind == "error"
    assert "ERROR" in note.text and "venue down" in note.text and phase["decision_id"] in note.text
    back = dict(phase, **{"from": "ERROR", "to": "IDLE", "event": "RECOVER"})
    note = notification(back, ON)
    assert note is not None and note.kind == "error" and "recovered" in note.text
    assert notification(err, TelegramSettings(notify_error=False)) is None
    st = SymbolState(symbol="SOL/USDT")
    alert = stuck_alert(st, 1767229352249)
    note = notification(dict(alert), ON)
    assert note is not None and note.kind == "stuck"
    assert "SOL/USDT" in note.text and alert["detail"] in note.text
    assert notification(dict(alert, alert="error"), ON) is None  # the ERROR phase tells it


def test_daily_summary_is_the_books_daily_and_profit(run: Run) -> None:
    days, profit = run.reader.daily(2), run.reader.profit()
    note = daily_summary(days, profit)
    assert note.kind == "daily"
    for d in days:
        assert f"{d['day']}: {d['trades']} trades" in note.text
    assert f"Total: {profit['trades']} trades" in note.text
    assert f"PnL {signed(money(profit['realized_pnl']))}" in note.text
    m = re.search(r"Total: .*PnL ([-+][\d.]+), fees ([\d.]+)", note.text)
    assert m is not None and Decimal(m[1]) == Decimal(profit["realized_pnl"]).quantize(Q8)
    assert Decimal(m[2]) == Decimal(profit["fees"])
    assert all(len(line) < 80 for line in note.text.splitlines()), note.text


def test_shown_never_rounds_beyond_display() -> None:
    assert shown(Decimal("24.32943810")) == "24.3294381"
    assert shown(Decimal("0.000000004")) == "0"
    assert shown(Decimal("1E+2")) == "100"
    assert numbers(shown(Decimal("-0.123456789"))) == ["-0.12345679"]
