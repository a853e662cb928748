"""Write-ahead (DESIGN invariant 3) through the store boundary: when the exchange is asked
to create an order, the database another process would open already holds that intent,
in a state recovery treats as possibly sent, with the clientOrderId the exchange is given."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.exchange.types import OrderInfo
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.harness import BTC, Harness, settings


def test_every_order_is_in_the_database_before_the_exchange_is_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(settings(market={"symbols": ["BTC/USDT"]}), {"BTC/USDT": BTC})
    db = tmp_path / "fsmtrader.db"
    h.engine.attach_store(SqliteStore(db))
    h.warm("BTC/USDT", 50_000.0)
    create = h.exchange.create_order
    seen: list[tuple[str, list[tuple[str, str, str]]]] = []

    def create_after_checking(*args: Any, **kw: Any) -> OrderInfo:
        coid = kw.get("client_order_id", args[6] if len(args) > 6 else "")
        other = sqlite3.connect(db)  # what a restart would read
        try:
            rows = other.execute("SELECT intent_id, client_order_id, state FROM orders").fetchall()
        finally:
            other.close()
        seen.append((coid, rows))
        return create(*args, **kw)

    monkeypatch.setattr(h.exchange, "create_order", create_after_checking)
    h.bar("BTC/USDT", 48_400.0)  # a drop: an entry, a buy
    h.bar("BTC/USDT", 52_000.0)  # and its exit
    assert len(seen) >= 2, "a buy and a sell reached the exchange"
    for coid, rows in seen:
        mine = [r for r in rows if r[1] == coid]
        assert len(mine) == 1, (coid, rows)
        # saved before the send: a restart treats it as possibly sent and looks it up by
        # this clientOrderId (OrderRouter.recover) instead of sending blind
        assert mine[0][2] in ("RESERVED", "RETRY"), mine
    assert h.engine.portfolio.realized_pnl != Decimal(0)
