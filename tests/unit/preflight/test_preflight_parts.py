"""The pieces preflight reads: the price path (rows with their clock readings, a torn tail
cut), the push lag summary (counts, written whole, added to across restarts), the entry
decisions of an audit, and a smoke report judged scenario by scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.clock import SimClock
from fsmtrader.control.lag_file import LAG_FILE, LagFile, read_lag_summary
from fsmtrader.preflight.parity import ExchangeClock, ReplayClock, entry_decisions
from fsmtrader.preflight.smoke_check import judge
from fsmtrader.store.price_path import PRICE_PATH_FILE, PricePath, read_price_path


def test_rows_carry_the_clock_readings_made_while_they_ran(tmp_path: Path) -> None:
    path = PricePath(tmp_path)
    inner = SimClock(100)
    clock, exchange = path.clock(inner), path.exchange_clock(inner)
    exchange.now_ms()  # the exchange opened, the engine built: the first row holds them
    clock.now_ms()
    assert not (tmp_path / PRICE_PATH_FILE).exists()  # nothing written yet
    path.restart(100)
    path.prime("BTC/USDT", [(0, 1.0, 2.0)])
    path.bar(60_000, "BTC/USDT", 1.1, 0.9, 1.0, 3.0, 60_100)
    inner.set(60_100)
    clock.now_ms()
    exchange.now_ms()
    clock.now_ms()
    path.flush()
    clock.now_ms()  # outside any row (a stuck check): not replayed
    path.timers(70_000, 80_000)  # nothing due: no row
    path.timers(90_000, 80_000)
    path.close()
    rows = list(read_price_path(tmp_path / PRICE_PATH_FILE))
    assert rows == [
        ["r", 100, [100], [100]],
        ["p", "BTC/USDT", [[0, 1.0, 2.0]], [], []],
        ["b", 60_000, "BTC/USDT", 1.1, 0.9, 1.0, 3.0, 60_100, [60_100, 60_100], [60_100]],
        ["t", 90_000, [], []],
    ]


@pytest.mark.parametrize(
    ("bar", "reads"),
    [
        ((60_000, "BTC/USDT", 48_400.12, 48_390.5, 48_395.25, 12.345678, 60_123), [60_123, 60_124]),
        ((1, "BLESS/USDT", 1e-07, 0.0123, 123456789.123456, 0.0, 2), []),
        ((1, "DOGE/USDT", 0.1 + 0.2, 1 / 3, 2.5e-16, 1e22, 3), [1, 2, 3]),
        ((1, "ETH/USDT", float("nan"), 1.0, float("inf"), 1.0, 3), [1]),  # json's own text
        ((1, 'BAD"SYM', 1.0, 1.0, 1.0, 1.0, 3), [1]),  # escaped by json
    ],
)
def test_a_bar_row_is_written_as_json_dumps_would(
    tmp_path: Path, bar: tuple[Any, ...], reads: list[int]
) -> None:
    """A stepped bar's line is the very text json.dumps gives (the recorder's one encoder),
    so a reader never sees two spellings of one row."""
    path = PricePath(tmp_path)
    clock = path.clock(SimClock(0))
    path.bar(*bar)
    for ms in reads:
        clock.inner.set(ms)  # type: ignore[attr-defined]
        clock.now_ms()
    path.close()
    text = (tmp_path / PRICE_PATH_FILE).read_text()
    row = ["b", *bar, reads, []]
    assert text == json.dumps(row, separators=(",", ":")) + "\n"


def test_a_torn_last_line_is_cut_and_reading_stops_there(tmp_path: Path) -> None:
    file = tmp_path / PRICE_PATH_FILE
    file.write_text('["r",1,[],[]]\n["b",2,"X/Y",1')
    assert list(read_price_path(file)) == [["r", 1, [], []]]
    path = PricePath(tmp_path)  # a new start appends after the last whole line
    path.restart(5)
    path.close()
    assert file.read_text() == '["r",1,[],[]]\n["r",5,[],[]]\n'


def test_the_replay_clocks_answer_the_recorded_readings_in_order() -> None:
    clock = ReplayClock()
    exchange = ExchangeClock(clock)
    clock.load([10, 12], at=9)
    exchange.load([11])
    assert [exchange.now_ms(), exchange.now_ms()] == [11, 9]  # then the engine's time
    assert [clock.now_ms(), clock.now_ms(), clock.now_ms()] == [10, 12, 12]
    assert exchange.now_ms() == 12


def test_the_lag_summary_counts_within_the_bar_and_adds_across_restarts(tmp_path: Path) -> None:
    lag = LagFile(tmp_path)
    lag.add([5.0, 199.0, 200.0, 201.0, -0.5, float("nan")])
    s = read_lag_summary(tmp_path)
    assert s is not None and (s.samples, s.within_bar, s.max_ms) == (5, 4, 201.0)
    assert LagFile(tmp_path).summary.samples == 5  # a restart adds to it
    again = LagFile(tmp_path)
    again.add([10.0])
    s = read_lag_summary(tmp_path)
    assert s is not None and (s.samples, s.within_bar) == (6, 5)
    assert round(s.within_pct, 2) == 83.33
    (tmp_path / LAG_FILE).write_text("{not json")
    assert read_lag_summary(tmp_path) is None


def phase(did: str, event: str, reason: str = "") -> dict[str, object]:
    return {"kind": "phase", "decision_id": did, "event": event, "reason": reason}


def test_entry_decisions_and_their_outcomes() -> None:
    records = [
        phase("A-1-entry", "SIGNAL"),
        phase("A-1-entry", "GUARDS_BLOCKED", "spread,exposure"),
        phase("B-1-entry", "SIGNAL"),
        phase("B-1-entry", "GUARDS_PASSED"),
        {"kind": "order", "decision_id": "B-1-entry", "state": "NEW"},
        phase("C-1-entry", "SIGNAL"),
        {"kind": "observed", "decision_id": "C-1-entry"},
        phase("D-1-entry", "SIGNAL"),
        phase("D-1-entry", "GUARDS_PASSED"),
        phase("D-1-entry", "BUY_ABORTED"),
        {"kind": "order", "decision_id": "Z-9-entry"},  # not an entry decision
    ]
    assert entry_decisions(records) == {
        "A-1-entry": "blocked: spread,exposure",
        "B-1-entry": "placed",
        "C-1-entry": "observed",
        "D-1-entry": "passed, nothing placed",
    }


def test_a_smoke_report_is_judged_scenario_by_scenario() -> None:
    ok = {"name": "E", "passed": True, "figures": {"within_200ms_pct": 99.5}}
    data = {
        "passed": False,
        "scenarios": [
            {"name": "A", "passed": True},
            {"name": "B", "passed": False, "title": "partial fills", "reason": "avg off"},
            {"name": "C", "passed": True},
            ok,
        ],
    }
    found = judge(data, source="r.json")
    c = found.criterion
    assert not c.passed and c.figure == "3/5 passed (r.json)"
    assert c.reasons == [
        "scenario B partial fills failed: avg off",
        "scenario D is not in the report",
    ]
    assert found.lag_pct == 99.5
    assert json.dumps(c.to_json())  # plain JSON
