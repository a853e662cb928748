"""Faithful bars: a backtest on hand-made candles, through the real engine, simulated
exchange and run folder. Exits trigger inside a candle from its high and low and fill at
the level they met; everything a candle causes is stamped at its close; the rule for a
candle reaching both levels and the entry on the next open are settings.

The candles: four flat ones at 103.10 (the anchor), then a signal candle closing at 99.99
(-3.02 %). With ``spread_bps = 0`` the simulator's ask is a tick above the bid, so the
entry buys at exactly 100.00: take-profit +2 % = 102.00, stop-loss -3 % = 97.00.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.config import load_settings
from fsmtrader.errors import DataError
from fsmtrader.feeds import Candles
from fsmtrader.markets import ceil_to
from fsmtrader.runner import Backtest, _filters

MIN = 60_000
SYM = "BTC/USDT"
ANCHOR = (103.10, 103.10, 103.10, 103.10)
SIGNAL = (103.10, 103.10, 99.99, 99.99)
ENTRY_T = 5 * MIN  # the signal candle opens at 4 min and acts at its close, 5 min
D = Decimal

Row = tuple[float, float, float, float]


def backtest(
    tmp_path: Path,
    after: list[Row],
    *,
    exit_: dict[str, Any] | None = None,
    bt: dict[str, Any] | None = None,
    spread_bps: int = 0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the candles ANCHOR x4, SIGNAL, then ``after``; (trades.jsonl, audit.jsonl)."""
    overrides: dict[str, Any] = {
        "market": {"symbols": [SYM]},
        "entry": {"anchor_window_min": 3, "drop_trigger_pct": 3.0},
        "sim": {"spread_bps": spread_bps, "taker_fee_bps": 10, "maker_fee_bps": 10},
        "exit": {
            "take_profit_pct": 2.0,
            "stop_loss_pct": 3.0,
            "trailing_activation_pct": 0,
            "max_hold_min": 600,
            **(exit_ or {}),
        },
        "timeouts": {"warmup_timeout_s": 60},
        "backtest": bt or {},
    }
    s = load_settings(None, env={}, overrides=overrides)
    rows = [ANCHOR] * 4 + [SIGNAL] + after
    o, h, lo, c = (list(col) for col in zip(*rows, strict=True))
    candles = Candles(SYM, [i * MIN for i in range(len(rows))], o, h, lo, c, [1.0] * len(rows))
    filters = {SYM: _filters(SYM, "0.01", "0.00001", "0.00001", "5")}
    run = Backtest(s, [candles], filters, tmp_path / "run").run()
    trades = [json.loads(x) for x in (run.run_dir / "trades.jsonl").read_text().splitlines()]
    audit = [json.loads(x) for x in (run.run_dir / "audit.jsonl").read_text().splitlines()]
    return trades, audit


def only(trades: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(trades) == 1, trades
    return trades[0]


def test_take_profit_fills_at_its_level_inside_the_candle(tmp_path: Path) -> None:
    trade = only(backtest(tmp_path, [(100.0, 102.5, 99.9, 101.0)])[0])
    assert trade["avg_entry"] == "100.00" and trade["entry_ms"] == ENTRY_T
    assert (trade["exit_reason"], trade["avg_exit"]) == ("take_profit", "102.00")
    assert trade["exit_ms"] == ENTRY_T + MIN  # the exit candle's close


def test_stop_loss_fills_at_its_level_not_at_the_close(tmp_path: Path) -> None:
    trade = only(backtest(tmp_path, [(100.0, 100.5, 96.0, 96.5)])[0])
    assert (trade["exit_reason"], trade["avg_exit"]) == ("stop_loss", "97.00")
    # the loss is the stop's 3 % plus the two fees, no overshoot to the close
    assert D(trade["realized_pnl"]) == D(trade["sold_qty"]) * D("-3") - D(trade["buy_fees"]) - D(
        trade["sell_fees"]
    )


@pytest.mark.parametrize(
    ("row", "reason", "price"),
    [
        ((96.0, 96.5, 95.5, 96.2), "stop_loss", "96.00"),  # gapped below the stop
        ((103.0, 103.5, 102.8, 103.2), "take_profit", "103.00"),  # gapped above the target
    ],
)
def test_a_candle_opening_past_a_level_fills_at_the_open(
    tmp_path: Path, row: Row, reason: str, price: str
) -> None:
    trade = only(backtest(tmp_path, [row])[0])
    assert (trade["exit_reason"], trade["avg_exit"]) == (reason, price)


BOTH = (100.0, 102.5, 96.5, 100.0)  # reaches the target (102) and the stop (97)


@pytest.mark.parametrize(
    ("rule", "row", "reason", "price"),
    [
        ("stop_first", BOTH, "stop_loss", "97.00"),
        ("target_first", BOTH, "take_profit", "102.00"),
        ("nearer_open_first", BOTH, "take_profit", "102.00"),  # 2 to the target, 3 to the stop
        ("nearer_open_first", (98.0, 102.5, 96.5, 100.0), "stop_loss", "97.00"),  # 1 vs 4
    ],
)
def test_both_touch_rule_decides_a_candle_reaching_both_levels(
    tmp_path: Path, rule: str, row: Row, reason: str, price: str
) -> None:
    trade = only(backtest(tmp_path, [row], bt={"both_touch": rule})[0])
    assert (trade["exit_reason"], trade["avg_exit"]) == (reason, price)


TRAIL = {"trailing_activation_pct": 1.0, "trailing_distance_pct": 0.5}
ARMING = (100.0, 101.6, 100.9, 101.5)  # arms at 101, peak 101.60: the stop at 101.092


def test_trailing_stop_is_tracked_along_the_path_and_fills_at_its_level(tmp_path: Path) -> None:
    trades, _ = backtest(tmp_path, [ARMING, (101.5, 101.55, 100.5, 100.8)], exit_=TRAIL)
    trade = only(trades)
    # the next candle falls through 101.60 * 0.995 = 101.092: sold at the tick below it,
    # a profit, where the close (100.80) would have sold at a loss after fees
    assert (trade["exit_reason"], trade["avg_exit"]) == ("trailing_stop", "101.09")
    assert trade["exit_ms"] == ENTRY_T + 2 * MIN
    assert D(trade["realized_pnl"]) > 0


def test_the_order_of_high_and_low_decides_a_trailing_stop_in_one_candle(tmp_path: Path) -> None:
    trades, _ = backtest(tmp_path / "t", [ARMING], exit_=TRAIL, bt={"both_touch": "target_first"})
    # high first: armed and peaked at 101.60, then the low (100.90) goes through 101.092
    assert (only(trades)["exit_reason"], only(trades)["avg_exit"]) == ("trailing_stop", "101.09")
    held, _ = backtest(tmp_path / "s", [ARMING], exit_=TRAIL, bt={"both_touch": "stop_first"})
    assert held == []  # low first: the low came before the peak; still held at the end


def test_take_profit_net_of_fees_is_the_gain_after_both_fees(tmp_path: Path) -> None:
    trades, _ = backtest(
        tmp_path, [(100.0, 103.0, 99.9, 101.0)], exit_={"take_profit_net_of_fees": True}
    )
    trade = only(trades)
    fee = D("0.001")  # the venue's taker fee (sim.taker_fee_bps = 10), both legs
    level = D(100) * D("1.02") * (1 + fee) / (1 - fee)  # 102.2042...
    assert trade["exit_reason"] == "take_profit"
    assert D(trade["avg_exit"]) == ceil_to(level, D("0.01")) == D("102.21")
    cost = D(trade["bought_qty"]) * D(trade["avg_entry"]) + D(trade["buy_fees"])
    net = D(trade["realized_pnl"]) / cost
    assert D("0.02") <= net < D("0.02") + D("0.0002")  # 2 %, plus less than a tick's worth


def test_without_net_of_fees_the_target_is_the_plain_price(tmp_path: Path) -> None:
    trade = only(backtest(tmp_path, [(100.0, 103.0, 99.9, 101.0)])[0])
    assert trade["avg_exit"] == "102.00"


FLAT = (100.2, 100.3, 100.1, 100.2)


def test_max_hold_exits_exactly_max_hold_after_the_entry_at_that_close(tmp_path: Path) -> None:
    # three candles after the entry; the third closes at 100.50, exactly 3 min after it
    after = [FLAT, FLAT, (100.2, 100.6, 100.1, 100.5), FLAT, FLAT]
    trade = only(backtest(tmp_path, after, exit_={"max_hold_min": 3})[0])
    assert trade["exit_reason"] == "max_hold"
    assert trade["exit_ms"] - trade["entry_ms"] == 3 * MIN
    assert trade["avg_exit"] == "100.50"  # the close at that moment, no candle early


def test_everything_a_candle_causes_is_stamped_at_its_close(tmp_path: Path) -> None:
    trades, audit = backtest(tmp_path, [(100.0, 102.5, 99.9, 101.0)])
    did = only(trades)["decision_id"]
    caused = [r for r in audit if r.get("decision_id") == did and r["kind"] != "trade"]
    entry = [r for r in caused if r["kind"] in ("phase", "order", "fill") and r["ts"] <= ENTRY_T]
    exits = [r for r in caused if r["ts"] > ENTRY_T]
    assert {r["ts"] for r in entry} == {ENTRY_T}  # the signal candle opened a minute before
    assert {r["ts"] for r in exits} == {ENTRY_T + MIN}
    fills = [r for r in audit if r["kind"] == "fill"]
    assert [(r["side"], r["ts"], r["price"]) for r in fills] == [
        ("buy", ENTRY_T, "100.00"),
        ("sell", ENTRY_T + MIN, "102.00"),
    ]


def test_entry_on_next_open_buys_at_the_next_candles_open(tmp_path: Path) -> None:
    after = [(99.49, 99.8, 99.3, 99.6), FLAT]
    trades, audit = backtest(tmp_path, after, bt={"entry_on": "next_open"})
    fills = [r for r in audit if r["kind"] == "fill"]
    assert [(r["side"], r["price"]) for r in fills] == [("buy", "99.50")]  # open + a tick
    signal = [r for r in audit if r["kind"] == "phase" and r["event"] == "SIGNAL"]
    assert [r["ts"] for r in signal] == [ENTRY_T]  # the next candle opens at the signal's close
    assert fills[0]["ts"] == ENTRY_T and trades == []


def test_entry_on_next_open_exits_inside_the_entry_candle(tmp_path: Path) -> None:
    # bought at the open (99.50); the same candle reaches 99.50 * 1.02 = 101.49
    trades, _ = backtest(tmp_path, [(99.49, 101.8, 99.3, 100.0)], bt={"entry_on": "next_open"})
    trade = only(trades)
    assert (trade["avg_entry"], trade["avg_exit"]) == ("99.50", "101.49")
    assert (trade["entry_ms"], trade["exit_ms"]) == (ENTRY_T, ENTRY_T + MIN)


def test_with_a_spread_the_trigger_fill_is_still_the_level(tmp_path: Path) -> None:
    # the half spread is paid on the entry (ask above the close) but not on the level a
    # candle traded at: the target is met at its own price
    trade = only(backtest(tmp_path, [(100.0, 102.9, 99.9, 101.0)], spread_bps=10)[0])
    entry = D(trade["avg_entry"])
    assert entry == ceil_to(D("99.99") * (1 + D("0.0005")), D("0.01")) == D("100.04")
    assert D(trade["avg_exit"]) == ceil_to(entry * D("1.02"), D("0.01")) == D("102.05")


def two_symbol_run(tmp_path: Path, bt: dict[str, Any], eth_ts_step: int = MIN) -> Any:
    s = load_settings(
        None,
        env={},
        overrides={
            "market": {"symbols": [SYM, "ETH/USDT"]},
            "entry": {"anchor_window_min": 3, "drop_trigger_pct": 3.0},
            "sim": {"spread_bps": 0},
            "timeouts": {"warmup_timeout_s": 60},
            "backtest": bt,
        },
    )
    rows = [ANCHOR] * 4 + [SIGNAL, (99.49, 99.8, 99.3, 99.6), FLAT]
    o, h, lo, c = (list(col) for col in zip(*rows, strict=True))
    vol = [1.0] * len(rows)
    btc = Candles(SYM, [i * MIN for i in range(len(rows))], o, h, lo, c, vol)
    eth = Candles("ETH/USDT", [i * eth_ts_step for i in range(len(rows))], o, h, lo, c, vol)
    filters = {sym: _filters(sym, "0.01", "0.00001", "0.00001", "5") for sym in (SYM, "ETH/USDT")}
    return Backtest(s, [btc, eth], filters, tmp_path / "run")


def test_next_open_entries_of_two_symbols_on_one_open(tmp_path: Path) -> None:
    run = two_symbol_run(tmp_path, {"entry_on": "next_open"}).run()
    audit = [json.loads(x) for x in (run.run_dir / "audit.jsonl").read_text().splitlines()]
    fills = [(r["symbol"], r["side"], r["price"]) for r in audit if r["kind"] == "fill"]
    assert fills == [(SYM, "buy", "99.50"), ("ETH/USDT", "buy", "99.50")]
    # BTC/USDT's candle of that open acted at its close before ETH/USDT's open was seen:
    # the clock does not go back, so ETH/USDT's entry is stamped at that close
    stamps = [r["ts"] for r in audit if r["kind"] == "fill"]
    assert stamps == [ENTRY_T, ENTRY_T + MIN]


def test_series_of_different_intervals_are_refused_in_one_line(tmp_path: Path) -> None:
    bt = two_symbol_run(tmp_path, {}, eth_ts_step=5 * MIN)
    with pytest.raises(DataError, match=r"different candle intervals \(BTC/USDT 60 s, ETH"):
        bt.run()
