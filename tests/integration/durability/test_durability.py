"""Crash safety: the SQLite store, restart recovery, reconciliation, halts and bad state.

In-process tests restore a saved engine onto the same (outliving) simulated exchange;
subprocess tests kill a real paper session with SIGKILL and start it again."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from fsmtrader.audit import EventBus
from fsmtrader.clock import SimClock
from fsmtrader.config import load_settings
from fsmtrader.config_wiring import build_engine
from fsmtrader.engine import Engine
from fsmtrader.errors import NetworkError
from fsmtrader.fsm.phases import Phase
from fsmtrader.orders.states import OrderState
from fsmtrader.session import open_sim_exchange, session_filters
from fsmtrader.smoke.verify import verify_session
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.harness import BTC, Harness, settings
from fsmtrader_testing.paper import clean_env, fsmtrader_argv, paper_args, session_toml

ROOT = Path(__file__).resolve().parents[3]


def gtc_harness(tmp: Path) -> Harness:
    s = settings(
        market={"symbols": ["BTC/USDT"]},
        router={"time_in_force": "GTC"},
        entry={"buy_escalation_bps": [0]},
        risk={"position_size": "40"},
    )
    return Harness(s, {"BTC/USDT": BTC}, depth_quote="12")


def reborn(h: Harness, db: Path) -> tuple[Engine, SqliteStore]:
    """A new engine process: same exchange (it outlived us), state from the database."""
    store = SqliteStore(db)
    engine = build_engine(
        h.s, clock=h.clock, exchange=h.exchange, filters={"BTC/USDT": BTC}, bus=EventBus()
    )
    engine.restore(store.load())
    engine.attach_store(store)
    return engine, store


def test_restore_puts_back_phase_intent_and_reservation_and_times_out(tmp_path: Path) -> None:
    h = gtc_harness(tmp_path)
    db = tmp_path / "fsmtrader.db"
    store = SqliteStore(db)
    h.engine.attach_store(store)
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    assert h.phase("BTC/USDT") == "WAIT_FILL"
    before = h.engine.portfolio
    reserved, cash = dict(before.reserved), before.cash
    (rec,) = h.engine.router.open_records()
    store.close()  # the process dies here

    engine, store2 = reborn(h, db)
    st = engine.states["BTC/USDT"]
    assert st.phase is Phase.WAIT_FILL and st.decision_id == h.engine.states["BTC/USDT"].decision_id
    assert engine.portfolio.reserved == reserved and engine.portfolio.cash == cash
    assert st.active_intent == rec.intent.intent_id
    again = engine.router.records[rec.intent.intent_id]
    assert again.state is OrderState.PARTIAL and again.filled == rec.filled
    # it was down for a minute: the WAIT_FILL timed out meanwhile and is handled as a timeout
    h.clock.set(h.clock.now_ms() + 60_000)
    engine.run_timers(h.clock.now_ms())
    assert st.phase is Phase.POSITION
    assert engine.portfolio.reserved == {} and not h.exchange.fetch_open_orders()
    assert engine.portfolio.positions["BTC/USDT"].qty == rec.filled
    store2.close()
    # and that outcome is durable too
    third = SqliteStore(db).load()
    assert third.symbols["BTC/USDT"].phase is Phase.POSITION


def test_unknown_intent_is_resolved_by_client_order_id_after_restart(tmp_path: Path) -> None:
    h = Harness(settings(market={"symbols": ["BTC/USDT"]}), {"BTC/USDT": BTC})
    db = tmp_path / "fsmtrader.db"
    store = SqliteStore(db)
    h.engine.attach_store(store)
    h.warm("BTC/USDT", 50_000.0)
    # the order reaches the book, the answer is lost, and every look-up fails too
    h.faults.inject_fault("create_order", NetworkError("reset", maybe_sent=True), after=True)
    h.faults.inject_fault("fetch_order_by_client_id", NetworkError("down"))
    h.bar("BTC/USDT", 48_400.0)
    (rec,) = h.engine.router.open_records()
    assert rec.state is OrderState.UNKNOWN and h.phase("BTC/USDT") == "PLACE_BUY"
    store.close()

    engine, store2 = reborn(h, db)
    touched = engine.router.recover()
    for r in touched:
        engine.on_order_update(r)
    assert engine.states["BTC/USDT"].phase is Phase.POSITION
    orders = h.exchange.orders_by_client_id()
    assert list(orders) == [rec.client_order_id]  # found, never re-sent
    pos = engine.portfolio.positions["BTC/USDT"]
    assert pos.qty == orders[rec.client_order_id].filled  # booked once
    store2.close()


def test_order_race_halts_new_entries_and_books_the_fill() -> None:
    h = gtc_harness(Path("."))
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    (live,) = h.exchange.fetch_open_orders("BTC/USDT")
    h.exchange.race_fill_on_cancel(live.id)
    h.advance(int(h.s.timeouts.partial_fill_stuck_s * 1000) + 1)
    assert h.engine.halted.startswith("order race")
    assert h.engine.portfolio.positions["BTC/USDT"].qty == live.amount
    assert [r for r in h.sink.of_kind("alert") if r["alert"] == "order_race"]


# --- subprocesses -----------------------------------------------------------------------
def fsm(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        fsmtrader_argv(*args),
        env=clean_env(**(env or {}), COLUMNS="200"),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(p: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def open_books(db: Path) -> tuple[int, int]:
    """(open intents, positions) as committed right now (read-only)."""
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        n_open = c.execute(
            "SELECT COUNT(*) FROM orders WHERE state NOT IN ('RECONCILED','FAILED_FINAL')"
        ).fetchone()[0]
        n_pos = c.execute("SELECT COUNT(*) FROM positions").fetchone()[0]
        c.close()
        return int(n_open), int(n_pos)
    except sqlite3.Error:
        return 0, 0


def test_scenario_d_restart_with_open_positions_and_orders_no_drift(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(session_toml(seed=11))
    state = tmp_path / "state"
    p = fsm(*paper_args(state, config))
    deadline = time.monotonic() + 40
    seen = (0, 0)
    while time.monotonic() < deadline:
        seen = open_books(state / "fsmtrader.db")
        if seen[0] > 0 and seen[1] > 0:
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    assert seen[0] > 0 and seen[1] > 0, "never saw open orders and positions together"

    rc, _, err = finish(fsm(*paper_args(state, config, "--for", "1")))
    assert rc == 0, err
    assert "restored session" in err and "reconcile ok" in err
    report = json.loads((state / "reconcile.json").read_text())
    assert report["ok"] and report["recovered_intents"] >= 1
    s = load_settings(config, env={})
    assert verify_session(state, s)[:3] == (0, 0, Decimal(0))
    # the JSONL mirror has every committed audit row exactly once, in order
    ids = [json.loads(ln)["audit_id"] for ln in (state / "audit.jsonl").read_text().splitlines()]
    db_rows = sqlite3.connect(state / "fsmtrader.db").execute("SELECT COUNT(*) FROM audit")
    assert ids == list(range(1, db_rows.fetchone()[0] + 1))


def test_crash_torture_small(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "crash_torture.py"),
            "--kills",
            "5",
            "--seed",
            "3",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    last = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0, proc.stderr[-2000:]
    # issue 8: the last line counts lost fills too (the same line as the live torture)
    assert last == "kills=5 duplicates=0 orphans=0 drift=0 lost_fills=0"


def test_unexplained_mismatch_halts_and_reconcile_reports_it(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(session_toml(seed=5))
    state = tmp_path / "state"
    rc, _, err = finish(fsm(*paper_args(state, config, "--for", "0.5")))
    assert rc == 0, err
    s = load_settings(config, env={})
    ex = open_sim_exchange(s, state, session_filters(s), SimClock(0))
    ex.update_market("BTC/USDT", 1, 90_000.0, 90_000.0, 90_000.0, 1.0)
    ex.create_order(
        "BTC/USDT",
        "buy",
        "limit",
        Decimal("0.0001"),
        Decimal("80000"),
        "GTC",
        "fsmnotours0000000000000000",
    )  # our prefix, unknown intent: an orphan
    ex.close()
    rc, out, err = finish(
        fsm("reconcile", "--state-dir", str(state), "--config", str(config), "--json")
    )
    assert rc == 3
    report = json.loads(out)
    assert not report["ok"] and report["orphaned_orders"][0]["client_order_id"].startswith("fsm")
    rc, out, err = finish(fsm(*paper_args(state, config, "--for", "0.5")))
    assert rc == 0 and "HALTED" in err and "orphaned" in err
    assert json.loads(out)["halted"]
    # recover reconciles first: while the orphan is there, the halt is not lifted
    rc, out, err = finish(
        fsm("recover", "--state-dir", str(state), "--config", str(config), "--clear-halt")
    )
    assert rc == 2 and "reconcile still finds differences" in err and "orphaned" in err, err
    assert "halt lifted" not in out
    # a person deals with the orphan, then lifts the halt; the next start trades again
    ex = open_sim_exchange(s, state, session_filters(s), SimClock(0))
    (orphan,) = [o for o in ex.fetch_open_orders() if o.client_order_id.startswith("fsmnot")]
    ex.cancel_order(orphan.id, "BTC/USDT")
    ex.close()
    rc, out, err = finish(
        fsm("recover", "--state-dir", str(state), "--config", str(config), "--clear-halt")
    )
    assert rc == 0 and "halt lifted" in out, err
    rc, out, err = finish(fsm(*paper_args(state, config, "--for", "0.5")))
    assert rc == 0 and "HALTED" not in err and "reconcile ok" in err
    assert not json.loads(out)["halted"]
    rc, out, err = finish(
        fsm("recover", "--state-dir", str(state), "--config", str(config), "--symbol", "BTC/USDT")
    )
    assert rc == 2 and "not in ERROR" in err


def test_recover_resolves_like_a_start_before_it_takes_a_symbol_out_of_error(
    tmp_path: Path,
) -> None:
    """recover runs the start's recovery first: a symbol whose ERROR backoff ran out while
    the bot was down leaves ERROR by itself (said, not refused); one still backing off is
    taken out by hand. Orders the start would send are held back (look-ups only)."""
    config = tmp_path / "c.toml"
    config.write_text(session_toml(seed=5))
    state = tmp_path / "state"
    rc, _, err = finish(fsm(*paper_args(state, config, "--for", "0.5")))
    assert rc == 0, err
    with closing(sqlite3.connect(state / "fsmtrader.db")) as c, c:
        c.execute(
            "UPDATE symbol_state SET phase='ERROR', error_count=1, entered_ms=? WHERE symbol=?",
            (1_767_225_600_000, "BTC/USDT"),  # the market's first minute: backoff long over
        )
        c.execute(  # entered ERROR after any clock this session can reach: still backing off
            "UPDATE symbol_state SET phase='ERROR', error_count=1, entered_ms=? WHERE symbol=?",
            (1_967_225_600_000, "ETH/USDT"),
        )
    args = ("recover", "--state-dir", str(state), "--config", str(config))
    rc, out, err = finish(fsm(*args, "--symbol", "BTC/USDT", "--symbol", "ETH/USDT"))
    assert rc == 0, err
    assert "reconcile ok" in out
    assert "BTC/USDT: left ERROR during recovery" in out
    assert "ETH/USDT: recovered, now IDLE" in out


# --- bad state --------------------------------------------------------------------------
def refused(state: Path, config: Path, expect: str) -> None:
    rc, _, err = finish(fsm(*paper_args(state, config, "--for", "0.2")))
    assert rc == 2, err
    assert "Traceback" not in err and expect in err


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(session_toml(seed=1))
    return path


def test_corrupt_database_is_refused_and_untouched(tmp_path: Path, cfg: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    db = state / "fsmtrader.db"
    db.write_bytes(b"this is not sqlite at all" * 100)
    refused(state, cfg, "not a readable SQLite database")
    assert db.read_bytes() == b"this is not sqlite at all" * 100


def test_foreign_database_is_refused_and_untouched(tmp_path: Path, cfg: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    db = state / "fsmtrader.db"
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE users (id INTEGER)")
    c.commit()
    c.close()
    before = db.read_bytes()
    refused(state, cfg, "not an fsmtrader database")
    assert db.read_bytes() == before


def test_newer_schema_is_refused_and_untouched(tmp_path: Path, cfg: Path) -> None:
    state = tmp_path / "state"
    SqliteStore(state / "fsmtrader.db").close()
    c = sqlite3.connect(state / "fsmtrader.db")
    c.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    c.commit()
    c.close()
    before = (state / "fsmtrader.db").read_bytes()
    refused(state, cfg, "newer than this fsmtrader supports")
    assert (state / "fsmtrader.db").read_bytes() == before


def test_locked_database_is_a_clear_error(tmp_path: Path, cfg: Path) -> None:
    state = tmp_path / "state"
    SqliteStore(state / "fsmtrader.db").close()
    holder = sqlite3.connect(state / "fsmtrader.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        refused(state, cfg, "locked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_second_bot_on_one_state_dir_refuses(tmp_path: Path, cfg: Path) -> None:
    state = tmp_path / "state"
    first = fsm(*paper_args(state, cfg, "--for", "20"))
    try:
        deadline = time.monotonic() + 20
        while not (state / "fsmtrader.db").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        refused(state, cfg, "another fsmtrader")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()


def test_unsupported_database_url_names_the_setting(tmp_path: Path, cfg: Path) -> None:
    rc, _, err = finish(
        fsm(
            *paper_args(tmp_path / "s", cfg, "--for", "0.2"),
            env={"FSMTRADER_DATABASE_URL": "postgresql://x/y"},
        )
    )
    assert rc == 2 and "database_url" in err and "sqlite" in err


def test_history_survives_many_commits_exactly(tmp_path: Path) -> None:
    """The stored phase history (extended incrementally per commit) always equals the
    bounded in-memory history, also once it wraps around."""
    from fsmtrader.fsm.phases import Event
    from fsmtrader.state.symbol import HISTORY_LEN

    h = Harness(settings(market={"symbols": ["BTC/USDT"]}), {"BTC/USDT": BTC})
    store = SqliteStore(tmp_path / "fsmtrader.db")
    h.engine.attach_store(store)
    st = h.engine.states["BTC/USDT"]
    h.engine.fire(st, Event.WARMUP_DONE)
    for i in range(HISTORY_LEN * 3 + 5):
        h.engine.machine.fire(st, Event.SIGNAL if i % 2 == 0 else Event.GUARDS_BLOCKED, i)
        h.engine.dirty.add("BTC/USDT")
        h.engine.commit()
        if i % 7 == 0:
            saved = SqliteStore(tmp_path / "fsmtrader.db").load().symbols["BTC/USDT"]
            assert list(saved.history) == list(st.history)
    store.close()
    saved = SqliteStore(tmp_path / "fsmtrader.db").load().symbols["BTC/USDT"]
    assert len(saved.history) == HISTORY_LEN and list(saved.history) == list(st.history)


def test_reconcile_reads_recent_fills_not_the_whole_history() -> None:
    from fsmtrader.exchange.simulated import SimExchange
    from fsmtrader.exchange.types import TradeInfo
    from fsmtrader.reconcile import RECENT_MS, reconcile

    asked: list[int | None] = []

    class Recording(SimExchange):
        def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
            asked.append(since)
            return super().fetch_my_trades(symbol, since)

    h = Harness(settings(market={"symbols": ["BTC/USDT"]}), {"BTC/USDT": BTC})
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    h.bar("BTC/USDT", 49_500.0)  # a whole round trip, long ago
    assert h.engine.portfolio.trades
    for _ in range(48):
        h.bar("BTC/USDT", 49_500.0, ts=h.ts + 3_600_000)  # two days later
    h.exchange.__class__ = Recording
    e = h.engine
    report = reconcile(e.books(), e.exchange, now_ms=e.clock.now_ms(), exact_balances=True)
    assert report.ok, report.to_dict()
    assert asked == [h.clock.now_ms() - RECENT_MS]  # nothing open: the last day only
