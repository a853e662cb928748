"""The store across its boundary: values in (a StateDelta), values out (a Snapshot), with
no engine and no router anywhere in the test."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, replace
from decimal import Decimal
from pathlib import Path

import pytest

from fsmtrader.errors import StoreError
from fsmtrader.fsm.phases import Phase
from fsmtrader.orders.intent import Intent, client_order_id
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import ClosedTrade, Ghost, Portfolio, Position
from fsmtrader.state.delta import StateDelta
from fsmtrader.state.fill import FILL_COLUMNS
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import FillRecord, HaltRecord, Record
from fsmtrader.state.symbol import SymbolState
from fsmtrader.store.codec import GHOST, ORDER, POSITION, SYMBOL_COLUMNS, TRADE
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader.strategy import ExitState

D = Decimal


def intent() -> Intent:
    return Intent.create(
        decision_id="BTCUSDT-1-entry",
        symbol="BTC/USDT",
        side="buy",
        amount=D("0.002"),
        limit_price=D("50000.5"),
        ref_price=D("50000"),
        max_slippage_bps=D("15"),
        time_in_force="GTC",
        leg=0,
        created_ms=1_000,
        reason="entry",
        budget=D("100.25"),
    )


def order() -> OrderRecord:
    it = intent()
    return OrderRecord(
        it,
        client_order_id(it.intent_id, 32),
        state=OrderState.PARTIAL,
        order_id="x-1",
        price=D("50000.5"),
        amount=D("0.002"),
        filled=D("0.001"),
        cost=D("50.0005"),
        fee_quote=D("0.05"),
        reserved=D("100.2"),
        attempts=2,
        due_ms=5_000,
        unknown_since=None,
        reason="open",
        seen_trades={"t2", "t1"},
        cancel_requested=True,
    )


def portfolio() -> Portfolio:
    pf = Portfolio(quote="USDT", cash=D("900.5"), fees_paid=D("0.1"), realized_pnl=D("-1.5"))
    pf.reserved = {"i-1": D("100.2")}
    pf.positions = {
        "BTC/USDT": Position("BTC/USDT", "BTCUSDT-1-entry", 1_000, qty=D("0.001"), sell_legs=1)
    }
    pf.dust = {"ETH/USDT": D("0.00001")}
    pf.trades = [
        ClosedTrade(
            "ETH/USDT",
            "d",
            1,
            2,
            D("1"),
            D("1"),
            D("10"),
            D("11"),
            D("0"),
            D("0"),
            1,
            D("0"),
            D("1"),
            "take_profit",
        )
    ]
    pf.ghosts = [Ghost(3, "ETH/USDT", "buy", "i-0", "d0", "below_min_notional")]
    return pf


def fill() -> FillRecord:
    return {
        "kind": "fill",
        "ts": 4_000,
        "intent_id": "i-1",
        "decision_id": "BTCUSDT-1-entry",
        "symbol": "BTC/USDT",
        "side": "buy",
        "trade_id": "t1",
        "order_id": "x-1",
        "price": "50000.5",
        "amount": "0.001",
        "fee": "0.05",
        "fee_currency": "USDT",
    }


def test_a_delta_round_trips_through_the_store(tmp_path: Path) -> None:
    st = SymbolState(
        "BTC/USDT",
        phase=Phase.POSITION,
        entered_ms=2_000,
        seq=7,
        decision_id="BTCUSDT-1-entry",
        entry_ref=D("50000"),
        exit=ExitState(51_000.5, trail_active=True, tp_px=60_000.0),
    )
    st.history.append((2_000, "WAIT_FILL", "BUY_FILLED", "POSITION"))
    halt: HaltRecord = {"kind": "halt", "ts": 5_000, "reason": "test"}
    audit: list[Record] = [fill(), halt]
    store = SqliteStore(tmp_path / "fsmtrader.db")
    pf = portfolio()
    trades, ghosts = pf.unsaved()
    store.save(StateDelta([st], [order()], pf, [fill()], audit, {"halted": "test"}, trades, ghosts))
    store.close()

    snap = SqliteStore(tmp_path / "fsmtrader.db").load()
    back = snap.symbols["BTC/USDT"]
    # the exit tracker comes back with what moves (its levels are the engine's to rebuild)
    assert back.exit == ExitState(51_000.5, trail_active=True)
    back.exit = st.exit
    assert back == st
    assert snap.orders == [order()]
    assert snap.portfolio is not None
    assert snap.portfolio == pf
    assert snap.meta["halted"] == "test"
    assert snap.audit_rows == 2


def test_a_market_sell_intent_round_trips_with_its_none_price_and_budget(
    tmp_path: Path,
) -> None:
    it = replace(intent(), side="sell", limit_price=None, budget=None, time_in_force="IOC")
    rec = replace(order(), intent=it, client_order_id=client_order_id(it.intent_id, 32))
    store = SqliteStore(tmp_path / "fsmtrader.db")
    store.save(StateDelta(orders=[rec]))
    back = store.load().orders
    assert back == [rec]
    assert back[0].intent.limit_price is None and back[0].intent.budget is None
    assert back[0].intent.order_type == "market"


def test_fills_come_from_the_fill_channel_not_the_audit_rows(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "fsmtrader.db")
    store.save(StateDelta(fills=[fill()]))  # no audit record at all: the fill is saved
    on_the_bus = fill()
    on_the_bus["trade_id"] = "t9"
    halt: HaltRecord = {"kind": "halt", "ts": 1, "reason": "x"}
    store.save(StateDelta(audit=[on_the_bus, halt]))  # only observed: not a booked fill
    assert [f.trade_id for f in store.fills()] == ["t1"]
    kept = {k: v for k, v in fill().items() if k not in ("kind", "order_id")}
    assert asdict(store.fills()[0]) == kept
    assert store.load().audit_rows == 2


def test_an_empty_delta_writes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "fsmtrader.db")
    store.save(StateDelta(meta={"halted": ""}))  # meta alone is no commit
    assert store.commits == 0
    assert store.load().meta == {}


def test_a_failed_commit_writes_nothing_and_keeps_new_trades_pending(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "fsmtrader.db")
    pf = portfolio()
    bad = order()
    bad.client_order_id = None  # type: ignore[assignment]  # NOT NULL: the insert fails
    trades, ghosts = pf.unsaved()
    with pytest.raises(sqlite3.IntegrityError):
        store.save(StateDelta(orders=[bad], portfolio=pf, trades=trades, ghosts=ghosts))
    assert store.commits == 0
    assert store.load().portfolio is None
    assert pf.unsaved() == (pf.trades, pf.ghosts)  # still new: nobody marked them saved
    # the retry writes the trade and ghost once
    store.save(StateDelta(portfolio=pf, trades=trades, ghosts=ghosts))
    snap = store.load()
    assert snap.portfolio is not None
    assert (snap.portfolio.trades, snap.portfolio.ghosts) == (pf.trades, pf.ghosts)


def test_the_store_appends_the_trades_and_ghosts_it_is_given_and_no_others(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "fsmtrader.db")
    pf = portfolio()
    store.save(StateDelta(portfolio=pf))  # the portfolio alone: no trade, no ghost
    snap = store.load()
    assert snap.portfolio is not None and (snap.portfolio.trades, snap.portfolio.ghosts) == ([], [])
    store.save(StateDelta(trades=pf.trades, ghosts=pf.ghosts))
    store.save(StateDelta(portfolio=pf))  # the portfolio again: the trades are not repeated
    snap = store.load()
    assert snap.portfolio is not None
    assert (snap.portfolio.trades, snap.portfolio.ghosts) == (pf.trades, pf.ghosts)
    # a loaded portfolio is new to its owner until the owner takes it back as saved
    assert snap.portfolio.unsaved() == (pf.trades, pf.ghosts)
    snap.portfolio.mark_saved()
    assert snap.portfolio.unsaved() == ([], []) and not snap.portfolio.dirty


def test_each_codec_covers_its_table(tmp_path: Path) -> None:
    """Every column of a table comes from its entity's fields (and only from them)."""
    store = SqliteStore(tmp_path / "fsmtrader.db")

    def columns(table: str) -> set[str]:
        return {r[1] for r in store.conn.execute(f"PRAGMA table_info({table})")}

    assert set(SYMBOL_COLUMNS) == columns("symbol_state")
    assert set(ORDER.columns) == columns("orders")
    assert set(POSITION.columns) == columns("positions")
    assert set(TRADE.columns) == columns("trades") - {"id"}
    assert set(GHOST.columns) == columns("ghosts") - {"id"}
    assert set(FILL_COLUMNS) == columns("fills")


def test_read_meta_opens_nothing_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "fsmtrader.db"
    assert SqliteStore.read_meta(path) is None
    store = SqliteStore(path)
    store.set_meta("session", "{}")
    store.close()
    before = path.read_bytes()
    assert SqliteStore.read_meta(path) == {"session": "{}"}
    assert path.read_bytes() == before
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        SqliteStore.read_meta(junk)
