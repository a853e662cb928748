"""The one drive step and the clocks every driver runs on."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from fsmtrader.clock import SimClock, WallClock
from fsmtrader.drive import BarRules, step, step_bar
from fsmtrader.exchange.types import Ticker


class Recorder:
    """An engine and a market that write down what the step asked of them, in order."""

    def __init__(self, due: int | None) -> None:
        self.due = due
        self.calls: list[tuple[object, ...]] = []
        self.at_open = False

    def next_due(self) -> int | None:
        return self.due

    def run_timers(self, now: int, /) -> None:
        self.calls.append(("timers", now))

    def on_bar(
        self,
        ts: int,
        symbol: str,
        high: float,
        low: float,
        close: float,
        vol: float,
        quote: Ticker | None = None,
        at_open: bool = False,
        /,
    ) -> None:
        self.calls.append(("engine", ts, symbol, high, low, close, vol, quote))
        self.at_open = at_open

    def update_market(
        self, symbol: str, ts_ms: int, price: float, high: float, low: float, volume: float, /
    ) -> None:
        self.calls.append(("market", symbol, ts_ms, price, high, low, volume))


def test_timers_due_run_first_then_before_then_the_market_then_the_engine() -> None:
    rec = Recorder(due=1_000)
    step(
        rec,
        rec,
        1_000,
        "BTC/USDT",
        11.0,
        9.0,
        10.0,
        5.0,
        None,
        lambda ts: rec.calls.append(("before", ts)),
    )
    assert rec.calls == [
        ("timers", 1_000),
        ("before", 1_000),
        ("market", "BTC/USDT", 1_000, 10.0, 11.0, 9.0, 5.0),
        ("engine", 1_000, "BTC/USDT", 11.0, 9.0, 10.0, 5.0, None),
    ]


@pytest.mark.parametrize("due", [None, 1_001])
def test_no_timers_when_none_is_due_by_the_bar(due: int | None) -> None:
    rec = Recorder(due=due)
    step(rec, rec, 1_000, "BTC/USDT", 1.0, 1.0, 1.0, 1.0)
    assert [c[0] for c in rec.calls] == ["market", "engine"]


def test_live_has_no_market_to_feed_and_hands_the_engine_its_quote() -> None:
    rec = Recorder(due=None)
    quote = Ticker("BTC/USDT", 1_000, Decimal(9), Decimal(11), Decimal(10), Decimal(2))
    step(rec, None, 1_000, "BTC/USDT", 10.0, 10.0, 10.0, 2.0, quote)
    assert rec.calls == [("engine", 1_000, "BTC/USDT", 10.0, 10.0, 10.0, 2.0, quote)]


def test_a_sim_clock_moved_by_before_never_goes_back() -> None:
    clock, rec = SimClock(500), Recorder(due=None)
    step(rec, rec, 1_000, "BTC/USDT", 1.0, 1.0, 1.0, 1.0, None, clock.set)
    assert clock.now_ms() == 1_000
    with pytest.raises(ValueError, match="cannot go back"):
        step(rec, rec, 999, "BTC/USDT", 1.0, 1.0, 1.0, 1.0, None, clock.set)


def test_wall_clock_is_wall_time_by_default() -> None:
    before = int(time.time() * 1000)
    now = WallClock().now_ms()
    assert before - 2 <= now <= int(time.time() * 1000) + 2


def test_wall_clock_from_a_saved_origin_kept_running_while_down() -> None:
    """A session saved (sim 1,000 ms at wall time t-10 s, 60x): 600 simulated s later."""
    clock = WallClock(60.0, origin_ms=1_000, origin_wall_s=time.time() - 10.0)
    assert 1_000 + 600_000 - 500 <= clock.now_ms() <= 1_000 + 600_000 + 60_000  # < 1 s late
    first = clock.now_ms()
    time.sleep(0.05)
    assert clock.now_ms() - first >= 0.05 * 60 * 1000 * 0.9  # and it runs at 60x


class BarRecorder(Recorder):
    """The engine and market of a backtest candle: watching, a path exit, an open entry."""

    def __init__(self, due: int | None, hit: tuple[str, Decimal] | None = None) -> None:
        super().__init__(due)
        self.watching: set[str] = set()
        self.open_entries: dict[str, tuple[int, float, float]] = {}
        self.hit = hit

    def candle_exit(
        self, ts: int, symbol: str, o: float, h: float, lo: float, c: float, rule: str, /
    ) -> tuple[str, Decimal] | None:
        self.calls.append(("path", ts, o, h, lo, c, rule))
        return self.hit

    def fire_exit(self, symbol: str, reason: str, /) -> None:
        self.calls.append(("exit", reason))

    def enter_at_open(self, ts: int, symbol: str, /) -> None:
        self.calls.append(("enter", ts))
        self.watching.discard(symbol)

    def quote_at(self, symbol: str, ts_ms: int, bid: Decimal, volume: float, /) -> None:
        self.calls.append(("quote_at", ts_ms, bid))


CANDLE = (60_000, "BTC/USDT", 10.0, 12.0, 8.0, 11.0, 5.0)  # acts at its close, 120,000
CLOSE = ("market", "BTC/USDT", 120_000, 11.0, 12.0, 8.0, 5.0)
ENGINE = ("engine", 120_000, "BTC/USDT", 12.0, 8.0, 11.0, 5.0, None)


def bar_calls(rec: BarRecorder, rules: BarRules | None = None) -> list[tuple[object, ...]]:
    before = lambda ts: rec.calls.append(("before", ts))  # noqa: E731
    step_bar(rec, rec, CANDLE, 60_000, rules or BarRules(), before)
    return rec.calls


def test_a_quiet_candle_acts_at_its_close_as_one_bar() -> None:
    rec = BarRecorder(due=None)
    assert bar_calls(rec) == [
        ("before", 120_000),
        CLOSE,
        ENGINE,
    ]
    assert not rec.at_open


def test_timers_inside_the_candle_fire_first_and_at_its_close_after_its_path() -> None:
    rec = BarRecorder(due=90_000)
    rec.watching.add("BTC/USDT")
    assert bar_calls(rec) == [
        ("timers", 119_999),
        ("before", 120_000),
        ("path", 120_000, 10.0, 12.0, 8.0, 11.0, "stop_first"),
        CLOSE,
        ("timers", 120_000),  # one due at the close: a max hold, on the close
        ENGINE,
    ]


def test_a_level_met_on_the_path_is_quoted_then_sold_before_the_close() -> None:
    rec = BarRecorder(due=None, hit=("stop_loss", Decimal("9.00")))
    rec.watching.add("BTC/USDT")
    calls = bar_calls(rec, BarRules(both_touch="target_first"))
    assert calls == [
        ("before", 120_000),
        ("path", 120_000, 10.0, 12.0, 8.0, 11.0, "target_first"),
        ("quote_at", 120_000, Decimal("9.00")),
        ("exit", "stop_loss"),
        CLOSE,
        ENGINE,
    ]


def test_a_signal_waiting_for_this_open_is_entered_on_the_opens_quote() -> None:
    rec = BarRecorder(due=None)
    rec.watching.add("BTC/USDT")
    rec.open_entries["BTC/USDT"] = (0, 9.5, 10.0)
    assert bar_calls(rec, BarRules(next_open=True)) == [
        ("timers", 60_000),  # (moves a backtest's clock to the open)
        ("market", "BTC/USDT", 60_000, 10.0, 10.0, 10.0, 5.0),
        ("enter", 60_000),
        ("before", 120_000),
        CLOSE,
        ENGINE,
    ]
    assert rec.at_open  # the close's signal waits for the next open too
