"""A state directory from before per-symbol modes: its intents have no mode and its meta
no ``modes``. They decode with mode "", and the next start adopts the one mode the
directory's kind always had (paper here), saves it with each intent, and records the
modes."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from fsmtrader.config import load_settings
from fsmtrader.session import PaperSession
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.paper import session_toml


def test_intents_saved_without_a_mode_adopt_their_session_s(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(session_toml(seed=4))
    s = load_settings(cfg, env={})
    state = tmp_path / "state"
    first = PaperSession(s, state, hours=48, speed=1800)
    try:
        first.start()
        first.run(should_stop=lambda: len(first.engine.router.records) >= 2, stop_after_s=60)
        ids = set(first.engine.router.records)
    finally:
        first.close()
    assert len(ids) >= 2
    db = state / "fsmtrader.db"
    with closing(sqlite3.connect(db)) as c:  # as an older version wrote them
        c.execute("UPDATE orders SET intent = json_remove(intent, '$.mode')")
        c.execute("DELETE FROM engine_meta WHERE key = 'modes'")
        c.commit()
    store = SqliteStore(db)
    try:
        old = store.load()
    finally:
        store.close()
    assert {r.intent.mode for r in old.orders} == {""} and "modes" not in old.meta

    again = PaperSession(s, state, hours=48, speed=1800)
    try:
        assert {r.intent.mode for r in again.engine.router.records.values()} == {"paper"}
        again.engine.commit()  # the adopted intents are saved again, with their mode
    finally:
        again.close()
    with closing(sqlite3.connect(db)) as c:
        modes = {m for (m,) in c.execute("SELECT json_extract(intent, '$.mode') FROM orders")}
        meta = dict(c.execute("SELECT key, value FROM engine_meta"))
    assert modes == {"paper"}
    assert json.loads(meta["modes"]) == dict.fromkeys(s.market.symbols, "paper")
