"""Observe mode in a real paper session (its SQLite store, its simulated exchange's own
file, the synthetic market): an observed symbol's decisions are audited (``observed``
records with their decision ids), the exchange never sees an order of it and nothing is
reserved for it, while a paper symbol beside it trades as before, each order carrying
its mode."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

from fsmtrader.config import Settings, load_settings
from fsmtrader.session import PaperSession
from fsmtrader_testing.paper import session_toml

OBSERVED, PAPER = "ETH/USDT", "BTC/USDT"


def config(tmp: Path, **modes: str) -> Settings:
    cfg = tmp / "c.toml"
    cfg.write_text(session_toml(seed=4))
    s = load_settings(cfg, env={})
    market = s.market.model_copy(
        update={"modes": {k.replace("_", "/"): v for k, v in modes.items()}}
    )
    return s.model_copy(update={"market": market})


def run_session(s: Settings, state: Path, hours: float = 8) -> tuple[PaperSession, dict[str, Any]]:
    """A whole session, to its simulated end (closed)."""
    session = PaperSession(
        s, state, hours=hours, speed=12_000
    )  # 2.4 s: it trades, not only catches up
    try:
        assert session.start().ok
        summary = session.run()
        orders = {sym: session.exchange.fetch_orders(sym, since=0) for sym in s.market.symbols}
        summary["exchange_orders"] = {sym: len(v) for sym, v in orders.items()}
        summary["reserved"] = str(session.engine.portfolio.reserved_total)
        summary["records"] = list(session.engine.router.records.values())
    finally:
        session.close()
    return session, summary


def audit(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]


def test_an_observe_only_session_audits_every_entry_and_sends_nothing(tmp_path: Path) -> None:
    s = config(tmp_path)
    s = s.model_copy(update={"market": s.market.model_copy(update={"default_mode": "observe"})})
    state = tmp_path / "state"
    _, summary = run_session(s, state)
    records = audit(state)
    observed = [r for r in records if r["kind"] == "observed"]
    assert len(observed) >= 3 and summary["observed"] == len(observed)
    signals = {
        (r["symbol"], r["decision_id"])
        for r in records
        if r["kind"] == "phase" and r["event"] == "SIGNAL"
    }
    for r in observed:
        assert (r["symbol"], r["decision_id"]) in signals  # each a decision, audited
        assert r["side"] == "buy" and r["reason"]
        assert float(r["notional"]) >= 5 and float(r["price"]) * float(r["amount"]) > 0
    # each observed entry goes back to IDLE, entries blocked for the cooldown
    moves = [r for r in records if r["kind"] == "phase" and r["event"] == "OBSERVED"]
    assert len(moves) == len(observed) and {(m["from"], m["to"]) for m in moves} == {
        ("ENTRY_EVAL", "IDLE")
    }
    assert sum(summary["exchange_orders"].values()) == 0  # the exchange saw no order
    assert not summary["records"] and summary["orders"] == 0
    assert not [r for r in records if r["kind"] in ("order", "fill", "trade")]
    assert summary["reserved"] == "0" and summary["cash"] == str(s.market.starting_balance)
    assert json.loads(_meta(state)["modes"]) == dict.fromkeys(s.market.symbols, "observe")


def test_observe_beside_paper_each_order_carrying_its_mode(tmp_path: Path) -> None:
    s = config(tmp_path, ETH_USDT="observe", SOL_USDT="off")
    state = tmp_path / "state"
    session, summary = run_session(s, state)
    assert session.engine.symbols == ["BTC/USDT", "ETH/USDT", "DOGE/USDT"]
    assert "SOL/USDT" not in session.engine.states  # off: not in the engine at all
    records = audit(state)
    assert not [r for r in records if r.get("symbol") == "SOL/USDT"]
    orders = [r for r in records if r["kind"] == "order"]
    assert orders and {r["mode"] for r in orders} == {"paper"}  # "live" is paper here
    assert OBSERVED not in {r["symbol"] for r in orders}
    assert summary["exchange_orders"][OBSERVED] == 0
    assert summary["exchange_orders"][PAPER] + summary["exchange_orders"]["DOGE/USDT"] > 0
    assert {r.intent.mode for r in summary["records"]} == {"paper"}
    observed = [r for r in records if r["kind"] == "observed"]
    assert observed and {r["symbol"] for r in observed} == {OBSERVED}
    by_mode = summary["by_mode"]
    assert by_mode["observe"]["observed"] == len(observed) and by_mode["observe"]["orders"] == 0
    assert by_mode["paper"]["orders"] == len(summary["records"])
    assert Counter(json.loads(_meta(state)["modes"]).values()) == {"paper": 2, "observe": 1}


def _meta(state: Path) -> dict[str, str]:
    with closing(sqlite3.connect(state / "fsmtrader.db")) as c:
        return dict(c.execute("SELECT key, value FROM engine_meta"))
