"""The live terminal table: rows in the status builder's order (ERROR, active, at rest),
phases colour-coded, idle and warm-up rows hidden by the [display] settings, drawn by
Rich's own thread from the state database (watch_table) at the configured rate, and the
in-memory demo's table built from the engine's books."""

from __future__ import annotations

import io
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fsmtrader.cli.display import (
    MODE_STYLE,
    PHASE_STYLE,
    duration,
    engine_status,
    run_with_display,
    status_rows_table,
    watch_table,
)
from fsmtrader.config import load_settings
from fsmtrader.config.control_sections import DisplaySettings
from fsmtrader.control.reads import BookReader
from fsmtrader.exchange.types import TradeInfo
from fsmtrader.feeds import synthetic_market
from fsmtrader.fsm.phases import Phase
from fsmtrader.portfolio import Portfolio
from fsmtrader.runner import filters_for
from fsmtrader.state.delta import StateDelta
from fsmtrader.state.symbol import SymbolState
from fsmtrader.store.sqlite import open_store

NOW = 1_767_300_000_000
D = Decimal


def write_books(path: Path) -> None:
    """A state database written by the store itself: one symbol per kind of row."""
    pf = Portfolio(quote="USDT", cash=D(500))
    pf.reserve("i1", D(100))
    buy = TradeInfo("t1", "o1", "c1", "HOLD/USDT", "buy", D(2), D(40), D("0.08"), "USDT", NOW)
    pf.apply_buy_fill("i1", "HOLD-1-entry", buy, "HOLD")
    pf.release("i1")
    states = [
        SymbolState("AIDLE/USDT", phase=Phase.IDLE, entered_ms=NOW - 60_000),
        SymbolState("BWARM/USDT", phase=Phase.WARMUP, entered_ms=NOW - 5_000),
        SymbolState("HOLD/USDT", phase=Phase.POSITION, entered_ms=NOW - 7_200_000),
        SymbolState("ZERR/USDT", phase=Phase.ERROR, entered_ms=NOW - 1_000, error_count=2),
        SymbolState("COOL/USDT", phase=Phase.COOLDOWN, entered_ms=NOW - 30_000),
    ]
    states[3].last_error = "exchange said no"
    store = open_store(path)
    try:
        store.save(StateDelta(symbols=states, portfolio=pf, meta={"halted": "test halt"}))
    finally:
        store.close()


def cells(table: Table, column: int) -> list[Any]:
    return list(table.columns[column]._cells)


def render(table: Table) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(table)
    text: str = console.file.getvalue()  # type: ignore[attr-defined]
    return text


@pytest.fixture
def status(tmp_path: Path) -> dict[str, Any]:
    db = tmp_path / "fsmtrader.db"
    write_books(db)
    with BookReader(db, tmp_path) as r:
        return r.status(NOW, {"HOLD/USDT": 2.1})


def test_rows_in_order_with_phase_colours_and_the_books_below(status: dict[str, Any]) -> None:
    table = status_rows_table(status, DisplaySettings(), "t")
    assert [str(c) for c in cells(table, 0)] == [
        "ZERR/USDT",
        "HOLD/USDT",
        "AIDLE/USDT",
        "BWARM/USDT",
        "COOL/USDT",
    ]
    phases = cells(table, 1)
    assert all(isinstance(p, Text) for p in phases)
    assert [(p.plain, p.style) for p in phases] == [
        (name, PHASE_STYLE[name]) for name in ("ERROR", "POSITION", "IDLE", "WARMUP", "COOLDOWN")
    ]
    assert "red" in PHASE_STYLE["ERROR"] and "green" in PHASE_STYLE["POSITION"]
    assert len(set(PHASE_STYLE.values())) >= 6 and set(PHASE_STYLE) == {p.value for p in Phase}
    assert [str(c) for c in cells(table, 2)] == ["1s", "2h00m", "1m00s", "5s", "30s"]
    # HOLD: 40 @2, fee 0.08 USDT; at 2.1: 84 - 80.08 = 3.92
    pnl = cells(table, 6)[1]
    assert (pnl.plain, pnl.style) == ("+3.9200", "green")
    assert str(cells(table, 4)[1]) == "2" and str(cells(table, 5)[1]) == "2.1"
    text = render(table)
    assert "HALTED: test halt" in text
    assert "positions 1  uPnL 3.9200 USDT" in text and "cash 419.9200" in text  # 500 - 80.08
    assert "2 exchange said no" in text


def test_a_canary_table_shows_each_rows_mode_and_a_one_mode_table_does_not(
    tmp_path: Path,
) -> None:
    db = tmp_path / "fsmtrader.db"
    write_books(db)
    store = open_store(db)
    try:  # the modes a canary session saves at its start (engine.modes)
        modes = '{"AIDLE/USDT": "observe", "HOLD/USDT": "live", "ZERR/USDT": "paper"}'
        store.set_meta("modes", modes)
    finally:
        store.close()
    with BookReader(db, tmp_path) as r:
        canary = r.status(NOW, {"HOLD/USDT": 2.1})
    table = status_rows_table(canary, DisplaySettings(), "t")
    assert table.columns[2].header == "mode"
    shown = {str(sym): m for sym, m in zip(cells(table, 0), cells(table, 2), strict=True)}
    assert (shown["HOLD/USDT"].plain, shown["HOLD/USDT"].style) == ("live", MODE_STYLE["live"])
    assert shown["AIDLE/USDT"].plain == "observe" and shown["ZERR/USDT"].plain == "paper"
    assert "live" in render(table)
    with BookReader(db, tmp_path) as r:
        store = open_store(db)
        try:
            store.set_meta("modes", "{}")
        finally:
            store.close()
        one_mode = r.status(NOW, {"HOLD/USDT": 2.1})
    assert "mode" not in [
        c.header for c in status_rows_table(one_mode, DisplaySettings(), "t").columns
    ]


@pytest.mark.parametrize(
    ("hide_idle", "hide_warmup", "shown", "note"),
    [
        (True, False, ["ZERR/USDT", "HOLD/USDT", "BWARM/USDT", "COOL/USDT"], "hidden: 1 IDLE"),
        (False, True, ["ZERR/USDT", "HOLD/USDT", "AIDLE/USDT", "COOL/USDT"], "hidden: 1 WARMUP"),
        (True, True, ["ZERR/USDT", "HOLD/USDT", "COOL/USDT"], "hidden: 1 IDLE, 1 WARMUP"),
    ],
)
def test_idle_and_warmup_rows_hide_by_setting(
    status: dict[str, Any], hide_idle: bool, hide_warmup: bool, shown: list[str], note: str
) -> None:
    display = DisplaySettings(hide_idle=hide_idle, hide_warmup=hide_warmup)
    table = status_rows_table(status, display, "t")
    assert [str(c) for c in cells(table, 0)] == shown
    assert note in render(table)


def test_durations() -> None:
    assert [duration(ms) for ms in (0, 59_999, 61_000, 3_600_000, 90_061_000, -5)] == [
        "0s",
        "59s",
        "1m01s",
        "1h00m",
        "1d01h",
        "0s",
    ]


def test_watch_table_draws_from_the_database_in_rich_thread_at_the_set_rate(
    tmp_path: Path,
) -> None:
    db = tmp_path / "fsmtrader.db"
    write_books(db)
    drawn_in: set[int] = set()

    def now_ms() -> int:
        drawn_in.add(threading.get_ident())
        return NOW

    def count(rate: float) -> int:
        drawn_in.clear()
        calls = 0

        def marks() -> dict[str, float]:
            nonlocal calls
            calls += 1
            return {"HOLD/USDT": 1.9}

        sink = Console(
            file=io.StringIO(), width=160, height=60, force_terminal=True, color_system=None
        )
        display = DisplaySettings(refresh_per_s=rate, hide_warmup=True)
        with watch_table(
            db, tmp_path, marks=marks, now_ms=now_ms, display=display, title="w", console=sink
        ):
            time.sleep(1.0)
        text = sink.file.getvalue()  # type: ignore[attr-defined]
        assert (
            "ZERR/USDT" in text and "-4.0800" in text
        )  # 40 x 1.9 - 80.08 and "hidden: 1 WARMUP" in text
        assert text.index("ZERR/USDT") < text.index("HOLD/USDT") < text.index("AIDLE/USDT")
        assert "BWARM/USDT" not in text
        assert threading.get_ident() in drawn_in  # Live draws on start and stop
        return calls, len(drawn_in)

    (fast, fast_threads), (slow, _) = count(20.0), count(1.0)
    assert fast_threads == 2, "drawn by Rich's refresh thread too"
    assert fast >= 10, fast
    assert slow <= 4, slow  # start, stop and at most a tick or two
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fsmtrader.db"], "no side file"


def test_a_failed_read_shows_the_last_table_and_why(tmp_path: Path) -> None:
    db = tmp_path / "fsmtrader.db"
    sink = Console(file=io.StringIO(), width=160, force_terminal=True, color_system=None)
    with watch_table(
        db,
        tmp_path,
        marks=dict,
        now_ms=lambda: NOW,
        display=DisplaySettings(refresh_per_s=20),
        title="w",
        console=sink,
    ):
        time.sleep(0.2)
    assert "status not read" in sink.file.getvalue()  # type: ignore[attr-defined]


def test_the_demo_table_comes_from_the_engine_books(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = load_settings(None, env={}, overrides={"runs_dir": str(tmp_path / "runs")})
    market = synthetic_market(s.market.symbols, minutes=130, seed=3)
    warm = s.entry.anchor_window_min
    series = [c.slice(warm, 130) for c in market]
    result = run_with_display(
        s,
        series,
        filters_for(series, s.market.quote),
        "demo",
        backfill=[c.slice(0, warm) for c in market],
    )
    drawn = capsys.readouterr().err
    assert "demo" in drawn and "bars (100%)" in drawn and "uPnL" in drawn
    for sym in s.market.symbols:
        assert sym in drawn
    st = engine_status(result.engine)
    assert st["totals"]["realized_pnl"] == result.summary["realized_pnl"]
    assert st["totals"]["cash"] == result.summary["cash"]
    assert st["totals"]["by_phase"] == result.summary["phases"]
    assert (result.run_dir / "summary.json").exists()
