"""Reconcile on every start, both ways, in a real paper session (its SQLite store and its
simulated exchange's own file): a fill the exchange holds for an intent the books gave
up is booked once, with its ``found_fill`` audit record, and stays booked across
restarts; an unexplained difference halts new entries with a reason that says what was
found, and the halt survives a restart."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from fsmtrader.clock import SimClock
from fsmtrader.config import Settings
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.fsm.phases import Phase
from fsmtrader.orders.intent import Intent, client_order_id, make_intent_id
from fsmtrader.orders.states import OrderState
from fsmtrader.reconcile.account import BASELINE_META
from fsmtrader.session import PaperSession, open_sim_exchange, session_filters
from fsmtrader.state.delta import StateDelta
from fsmtrader.state.order import OrderRecord
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.harness import settings

D = Decimal
SYM = "BTC/USDT"


def config() -> Settings:
    return settings(market={"symbols": [SYM]}, seed=3)


def first_start(state: Path, s: Settings) -> int:
    """A fresh session started once (it records the account's outside holdings); returns
    the simulated time it stopped at."""
    session = PaperSession(s, state, hours=2, speed=1.0)
    try:
        assert session.start().ok
        now = session.clock.now_ms()
    finally:
        session.close()
    assert BASELINE_META in SqliteStore(state / "fsmtrader.db").load().meta
    return now


def sim_at(state: Path, s: Settings, now: int) -> SimExchange:
    return open_sim_exchange(s, state, session_filters(s), SimClock(now))


def ioc_buy(ex: SimExchange, coid: str) -> str:
    ask = ex.fetch_ticker(SYM).ask
    limit = (ask * D("1.01")).quantize(D("0.01"))
    o = ex.create_order(SYM, "buy", "limit", D("0.0002"), limit, "IOC", coid)
    assert o.filled > 0, o
    return o.id


def test_a_fill_of_a_given_up_intent_is_booked_on_start_once(tmp_path: Path) -> None:
    s, state = config(), tmp_path / "state"
    now = first_start(state, s)
    it = Intent.create(
        decision_id="BTCUSDT-1-entry",
        symbol=SYM,
        side="buy",
        amount=D("0.0002"),
        limit_price=D("1"),
        ref_price=D("1"),
        max_slippage_bps=D(50),
        time_in_force="IOC",
        leg=0,
        created_ms=now,
    )
    coid = client_order_id(it.intent_id)
    store = SqliteStore(state / "fsmtrader.db")  # the books gave it up: FAILED_FINAL
    store.save(StateDelta(orders=[OrderRecord(it, coid, OrderState.FAILED_FINAL)]))
    store.close()
    ex = sim_at(state, s, now + 1_000)
    order_id = ioc_buy(ex, coid)  # ... but one create had reached the venue and filled
    ex.close()
    session = PaperSession(s, state, hours=2, speed=1.0)
    try:
        rep = session.start()
        assert rep.ok, rep.to_dict()
        rec = session.engine.router.records[it.intent_id]
        assert rec.state is OrderState.RECONCILED and rec.order_id == order_id
        assert not session.engine.halted
        assert [f["was"] for f in rep.found_fills] == ["FAILED_FINAL"] * len(rep.found_fills)
        assert session.engine.portfolio.positions[SYM].qty == rec.filled > 0
        # never an IDLE symbol holding an unwatched position (WARMUP hands it on to IDLE,
        # which takes it as a position)
        assert session.engine.states[SYM].phase is not Phase.IDLE
    finally:
        session.close()
    audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    found = [r for r in audit if r["kind"] == "found_fill"]
    assert found and {r["order_id"] for r in found} == {order_id}
    # DESIGN invariant 8: the audit rebuilds the correction reconcile made (given up,
    # then found filled) like any fill: FAILED_FINAL -> FILLED with what filled, then
    # RECONCILED, decision_id throughout
    moves = [r for r in audit if r["kind"] == "order" and r["intent_id"] == it.intent_id]
    assert [(r["from"], r["state"]) for r in moves] == [
        ("FAILED_FINAL", "FILLED"),
        ("FILLED", "RECONCILED"),
    ]
    assert moves[0]["filled"] == moves[1]["filled"] == "0.0002"
    assert all(r["decision_id"] == it.decision_id for r in moves)
    assert all(r["decision_id"] == it.decision_id for r in moves)
    session = PaperSession(s, state, hours=2, speed=1.0)  # again: nothing more to book
    try:
        again = session.start()
        assert again.ok and again.found_fills == [], again.to_dict()
    finally:
        session.close()
    audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    assert [r for r in audit if r["kind"] == "found_fill"] == found
    assert json.loads((state / "reconcile.json").read_text())["ok"] is True


def test_an_unexplained_fill_halts_entries_and_the_halt_survives_a_restart(
    tmp_path: Path,
) -> None:
    s, state = config(), tmp_path / "state"
    now = first_start(state, s)
    ex = sim_at(state, s, now + 1_000)
    coid = client_order_id(make_intent_id("not-ours", "buy", 0))
    ioc_buy(ex, coid)  # our prefix, an intent the books never had, and it filled
    ex.close()
    session = PaperSession(s, state, hours=2, speed=1.0)
    try:
        rep = session.start()
        halted = session.engine.halted
    finally:
        session.close()
    assert not rep.ok and rep.orphaned_orders[0]["client_order_id"] == coid
    assert halted.startswith("reconcile MISMATCH: 1 orphaned order(s)") and coid in halted
    assert json.loads((state / "reconcile.json").read_text())["ok"] is False
    session = PaperSession(s, state, hours=2, speed=1.0)  # the halt was persisted
    try:
        assert session.engine.halted == halted
        session.start()
        assert session.engine.halted.startswith("reconcile MISMATCH")
    finally:
        session.close()
