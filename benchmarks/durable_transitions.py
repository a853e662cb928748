"""Durable transitions per second: each transition's new phase and its audit row committed
in one SQLite transaction (WAL), against the seeds' design of writing one JSON snapshot
file per transition (write a temp file, rename over the old one), in the same run.

    .venv/bin/python benchmarks/durable_transitions.py [--n 20000] [--fsync]

--fsync compares the power-loss-safe variants: synchronous=FULL against fsync per snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from fsmtrader.clock import SimClock
from fsmtrader.engine import Engine
from fsmtrader.fsm.phases import Event
from fsmtrader.runner import filters_from_price
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.harness import Harness, settings

SYM = "BTC/USDT"
CYCLE = (Event.SIGNAL, Event.GUARDS_BLOCKED)  # IDLE -> ENTRY_EVAL -> IDLE


def engine_on(folder: Path, synchronous: str) -> tuple[Engine, SqliteStore, SimClock]:
    s = settings(market={"symbols": [SYM]})
    h = Harness(s, {SYM: filters_from_price(SYM, 50_000.0)}, start_ms=0)
    store = SqliteStore(folder / "fsmtrader.db", synchronous=synchronous)
    h.engine.attach_store(store)
    h.engine.fire(h.engine.states[SYM], Event.WARMUP_DONE)
    return h.engine, store, h.clock


def sqlite_rate(folder: Path, n: int, synchronous: str) -> float:
    engine, store, clock = engine_on(folder, synchronous)
    st = engine.states[SYM]
    machine = engine.machine
    t0 = time.perf_counter()
    for i in range(n):
        clock.set(i + 1)
        machine.fire(st, CYCLE[i % 2], i + 1)  # the pure transition, published to the bus
        engine.dirty.add(SYM)
        engine.commit()  # phase row + audit row + meta, one transaction
    dt = time.perf_counter() - t0
    rows = store.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    store.close()
    assert rows >= n, rows
    return n / dt


def snapshot_rate(folder: Path, n: int, fsync: bool) -> float:
    """One JSON file per symbol rewritten atomically per transition, audit appended."""
    engine, store, _ = engine_on(folder, "NORMAL")
    store.close()
    engine.store = None
    st = engine.states[SYM]
    machine = engine.machine
    snap = folder / "snap.json"
    tmp = folder / "snap.json.tmp"
    audit = (folder / "audit.jsonl").open("a")
    t0 = time.perf_counter()
    for i in range(n):
        t = machine.fire(st, CYCLE[i % 2], i + 1)
        assert t is not None
        data = json.dumps(
            {
                "symbol": st.symbol,
                "phase": st.phase.value,
                "seq": st.seq,
                "entered_ms": st.entered_ms,
                "decision_id": st.decision_id,
                "history": list(st.history),
            }
        )
        with tmp.open("w") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, snap)
        audit.write(json.dumps(t.to_record()) + "\n")
        audit.flush()
        if fsync:
            os.fsync(audit.fileno())
    dt = time.perf_counter() - t0
    audit.close()
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--fsync", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        sync = "FULL" if args.fsync else "NORMAL"
        n = args.n if not args.fsync else max(args.n // 10, 500)
        sq = sqlite_rate(Path(a), n, sync)
        js = snapshot_rate(Path(b), n, args.fsync)
    print(f"transitions          {n:,}")
    print(f"sqlite WAL {sync:<6}    {sq:,.0f} durable transitions/s (phase + audit row + meta)")
    print(
        f"json snapshot{' +fsync' if args.fsync else '       '}  {js:,.0f} transitions/s "
        "(temp file + rename + audit line)"
    )
    print(f"ratio                {sq / js:.2f}x")


if __name__ == "__main__":
    main()
