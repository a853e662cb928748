"""Who forgets a change once it is saved: each owner, after the store says so. A commit
that fails leaves every change pending, so the next commit writes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsmtrader.state.delta import StateDelta
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.harness import BTC, Harness, settings


class Refused(Exception):
    pass


def test_owners_clear_their_changes_only_after_the_store_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(settings(market={"symbols": ["BTC/USDT"]}), {"BTC/USDT": BTC})
    store = SqliteStore(tmp_path / "fsmtrader.db")
    h.engine.attach_store(store)
    h.warm("BTC/USDT", 50_000.0)
    save = store.save
    seen: list[StateDelta] = []

    def refuse_fills(delta: StateDelta) -> None:
        if delta.fills:  # the commit that follows the buy's fill fails
            seen.append(delta)
            raise Refused
        save(delta)

    monkeypatch.setattr(store, "save", refuse_fills)
    with pytest.raises(Refused):
        h.bar("BTC/USDT", 48_400.0)  # a drop: an entry, a buy that fills
    router, pf = h.engine.router, h.engine.portfolio
    booked = [r for r in h.sink.records if r["kind"] == "fill"]
    assert booked and seen[0].fills == booked
    # nothing was saved, so nothing was forgotten
    assert router.fills == booked and router.dirty and pf.dirty
    assert store.fills() == []
    monkeypatch.setattr(store, "save", save)
    h.engine.commit()
    assert not router.dirty and not pf.dirty and not router.fills
    assert [f.trade_id for f in store.fills()] == [r["trade_id"] for r in booked]
    snap = store.load()
    assert snap.portfolio is not None and "BTC/USDT" in snap.portfolio.positions


def test_the_portfolio_owner_hands_over_each_closed_trade_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(settings(market={"symbols": ["BTC/USDT"]}), {"BTC/USDT": BTC})
    store = SqliteStore(tmp_path / "fsmtrader.db")
    h.engine.attach_store(store)
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)  # a drop: an entry, a buy that fills
    save = store.save
    seen: list[StateDelta] = []

    def refuse_trades(delta: StateDelta) -> None:
        if delta.trades:  # the commit that closes the trade fails
            seen.append(delta)
            raise Refused
        save(delta)

    monkeypatch.setattr(store, "save", refuse_trades)
    with pytest.raises(Refused):
        h.bar("BTC/USDT", 49_500.0)  # the take-profit: the trade closes
    pf = h.engine.portfolio
    assert seen[0].trades == pf.trades and pf.unsaved()[0] == pf.trades and pf.dirty
    monkeypatch.setattr(store, "save", save)
    h.engine.commit()
    assert pf.unsaved() == ([], []) and not pf.dirty
    h.engine.portfolio.dirty = True
    h.engine.commit()  # the portfolio again: its trades are not handed over again
    snap = store.load()
    assert snap.portfolio is not None and snap.portfolio.trades == pf.trades


def test_a_restored_portfolio_counts_as_saved(tmp_path: Path) -> None:
    """A restart takes the portfolio back from the store: its trades are not new again."""
    s = settings(market={"symbols": ["BTC/USDT"]})
    h = Harness(s, {"BTC/USDT": BTC})
    store = SqliteStore(tmp_path / "fsmtrader.db")
    h.engine.attach_store(store)
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    h.bar("BTC/USDT", 49_500.0)  # a whole round trip
    trades = list(h.engine.portfolio.trades)
    assert trades
    again = Harness(s, {"BTC/USDT": BTC})
    again.engine.restore(store.load())
    again.engine.attach_store(store)  # rewrites the whole portfolio on the next commit
    again.engine.commit()
    snap = store.load()
    assert snap.portfolio is not None and snap.portfolio.trades == trades
