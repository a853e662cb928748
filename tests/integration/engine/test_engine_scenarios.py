"""The engine end to end on the simulated exchange: lifecycle, smoke scenarios A-C, guards,
timeouts, errors. Every test drives real prices through the real engine."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from fsmtrader.config_wiring import build_engine
from fsmtrader.errors import PortfolioError
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.exchange.types import Ticker
from fsmtrader.fsm.phases import Phase
from fsmtrader.portfolio import Portfolio
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.harness import BLESS, BTC, MIN, Harness, mf, settings

FULL_CYCLE = [
    "IDLE",
    "ENTRY_EVAL",
    "PLACE_BUY",
    "WAIT_FILL",
    "POSITION",
    "EXIT_EVAL",
    "PLACE_SELL",
    "WAIT_SELL_FILL",
    "POST_TRADE",
    "COOLDOWN",
    "IDLE",
]


def btc_harness(**overrides: object) -> Harness:
    base: dict[str, object] = {"market": {"symbols": ["BTC/USDT"]}}
    base.update(overrides)
    return Harness(settings(**base), {"BTC/USDT": BTC})


def test_full_lifecycle_warmup_to_idle() -> None:
    h = btc_harness()
    h.warm("BTC/USDT", 50_000.0)
    assert h.phase("BTC/USDT") == "IDLE"
    h.bar("BTC/USDT", 48_400.0)  # -3.2 % from the anchor
    assert h.phase("BTC/USDT") == "POSITION"
    h.bar("BTC/USDT", 49_500.0)  # above +2 % take-profit
    assert h.phase("BTC/USDT") == "COOLDOWN"
    h.advance(int(h.s.exit.cooldown_s * 1000))
    assert h.phase("BTC/USDT") == "IDLE"
    assert h.phases("BTC/USDT") == FULL_CYCLE
    trades = h.engine.portfolio.trades
    assert len(trades) == 1 and trades[0].exit_reason == "take_profit"
    assert trades[0].realized_pnl > 0
    # decision_id carried from the signal to every phase change, order, fill and trade
    did = trades[0].decision_id
    assert did.startswith("BTCUSDT-")
    cycle = [r for r in h.sink.records if r.get("decision_id") == did]
    kinds = {r["kind"] for r in cycle}
    assert {"phase", "order", "fill", "trade", "position"} <= kinds
    for r in h.sink.of_kind("order"):
        assert r["decision_id"] == did and r["intent_id"] and r["client_order_id"]


def test_scenario_a_entry_bumped_to_min_notional_and_placed() -> None:
    """BLESS/USDT: tick 0.000001, step 1, min notional 5; a 4-USDT position is too small,
    and the budget allows the bump to 5 USDT."""
    s = settings(
        market={"symbols": ["BLESS/USDT"]},
        risk={"position_size": "4", "max_total_exposure": "20"},
    )
    h = Harness(s, {"BLESS/USDT": BLESS})
    h.warm("BLESS/USDT", 0.0125)
    h.bar("BLESS/USDT", 0.0120)
    assert h.phase("BLESS/USDT") == "POSITION"
    reserved = h.orders(state="RESERVED")
    assert len(reserved) == 1 and "bumped_to_min_notional" in reserved[0]["reason"]
    pos = h.engine.portfolio.positions["BLESS/USDT"]
    assert pos.buy_cost >= BLESS.min_notional
    assert pos.qty == pos.qty.to_integral_value()  # on the step grid
    assert h.orders(state="FILLED")
    assert not h.engine.portfolio.ghosts


def test_scenario_a_ghost_when_budget_cannot_reach_min_notional() -> None:
    s = settings(
        market={"symbols": ["BLESS/USDT"], "starting_balance": "4.5"},
        risk={"position_size": "4", "max_total_exposure": "20"},
    )
    h = Harness(s, {"BLESS/USDT": BLESS})
    h.warm("BLESS/USDT", 0.0125)
    h.bar("BLESS/USDT", 0.0120)
    # the can_afford guard sees 4.5 USDT cannot buy 5 USDT: no order, entry blocked
    assert h.phase("BLESS/USDT") == "IDLE"
    assert h.engine.counts["guards_blocked"] == 1
    assert not h.exchange.orders_by_client_id()
    blocked = [r for r in h.sink.of_kind("phase") if r["event"] == "GUARDS_BLOCKED"]
    assert "can_afford" in blocked[0]["reason"]


def test_scenario_b_partial_fills_weighted_average_and_fees_exact() -> None:
    h = Harness(
        settings(market={"symbols": ["BTC/USDT"]}, risk={"position_size": "40"}),
        {"BTC/USDT": BTC},
        depth_quote="12",
    )
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    assert h.phase("BTC/USDT") == "POSITION"
    pos = h.engine.portfolio.positions["BTC/USDT"]
    fills = [t for t in h.exchange.fetch_my_trades("BTC/USDT") if t.side == "buy"]
    assert len(fills) >= 2 and len({t.price for t in fills}) >= 2  # several levels
    qty = sum((t.amount for t in fills), Decimal(0))
    cost = sum((t.price * t.amount for t in fills), Decimal(0))
    assert pos.qty == qty
    assert pos.avg_entry == cost / qty
    assert pos.buy_fees == sum((t.fee for t in fills), Decimal(0))
    assert h.orders(state="PARTIAL") or h.orders(state="CANCELED")
    steps = {r["intent_id"] for r in h.orders(side="buy")}
    assert len(steps) >= 2  # the entry escalated past step 0


def test_scenario_c_exit_ladder_steps_down_never_market() -> None:
    h = Harness(
        settings(market={"symbols": ["BTC/USDT"]}, risk={"position_size": "40"}),
        {"BTC/USDT": BTC},
        depth_quote="12",
    )
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    h.bar("BTC/USDT", 49_600.0)  # take-profit
    sells = [o for o in h.exchange.orders_by_client_id().values() if o.side == "sell"]
    assert len(sells) >= 2
    ordered = sorted(sells, key=lambda o: int(o.id))
    prices = [o.price for o in ordered]
    assert prices == sorted(prices, reverse=True) and prices[0] > prices[-1]
    assert all(o.order_type == "limit" and o.time_in_force == "IOC" for o in sells)
    trade = h.engine.portfolio.trades[0]
    sell_fills = [t for t in h.exchange.fetch_my_trades("BTC/USDT") if t.side == "sell"]
    assert trade.sell_fees == sum((t.fee for t in sell_fills), Decimal(0))
    assert trade.sell_legs >= 2
    # PnL recomputed independently from the exchange's fills agrees to 1e-8
    buys = [t for t in h.exchange.fetch_my_trades("BTC/USDT") if t.side == "buy"]
    bought = sum((t.amount for t in buys), Decimal(0))
    sold = sum((t.amount for t in sell_fills), Decimal(0))
    basis = sum((t.price * t.amount + t.fee for t in buys), Decimal(0))
    proceeds = sum((t.price * t.amount - t.fee for t in sell_fills), Decimal(0))
    assert abs(trade.realized_pnl - (proceeds - basis * sold / bought)) < Decimal("1e-8")


def test_ladder_exhausted_waits_instead_of_market_selling() -> None:
    h = Harness(
        settings(
            market={"symbols": ["BTC/USDT"]},
            risk={"position_size": "60", "max_total_exposure": "100"},
            exit={"exit_ladder_bps": [0, 5]},
        ),
        {"BTC/USDT": BTC},
        depth_quote="12",
    )
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    h.bar("BTC/USDT", 49_600.0)
    assert h.phase("BTC/USDT") == "POSITION"
    blocked = [r for r in h.sink.of_kind("phase") if r["event"] == "SELL_BLOCKED"]
    assert blocked and "ladder exhausted" in blocked[0]["reason"]
    assert all(o.order_type == "limit" for o in h.exchange.orders_by_client_id().values())
    # a minute later the exit resumes on a fresh book and finishes the job
    for _ in range(5):
        h.bar("BTC/USDT", 49_600.0)
    assert not h.engine.portfolio.positions
    assert h.engine.portfolio.trades[0].sell_legs >= 3


def test_flash_crash_guard_holds_the_position() -> None:
    h = btc_harness()
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    h.bar("BTC/USDT", 42_000.0)  # -13 %: stop-loss fires, but the guard refuses to sell
    assert h.phase("BTC/USDT") == "POSITION"
    assert h.engine.counts["flash_crash_guard"] == 1
    assert not [o for o in h.exchange.orders_by_client_id().values() if o.side == "sell"]
    h.bar("BTC/USDT", 46_500.0)  # back above the guard (43,564); still below stop-loss
    h.bar("BTC/USDT", 46_500.0)
    assert not h.engine.portfolio.positions
    assert h.engine.portfolio.trades[0].exit_reason == "stop_loss"


def test_max_hold_timeout_exits() -> None:
    h = btc_harness(exit={"max_hold_min": 30})
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    for _ in range(31):
        h.bar("BTC/USDT", 48_500.0)
    assert h.engine.portfolio.trades[0].exit_reason == "max_hold"
    assert h.phase("BTC/USDT") == "COOLDOWN"


def test_trailing_stop_exits_after_activation() -> None:
    h = btc_harness(
        exit={"take_profit_pct": 10, "trailing_activation_pct": 1.0, "trailing_distance_pct": 0.5}
    )
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    h.bar("BTC/USDT", 49_200.0)  # +1.6 %: trailing armed, peak 49,200
    assert h.phase("BTC/USDT") == "POSITION"
    h.bar("BTC/USDT", 48_900.0)  # 0.6 % below the peak
    assert h.engine.portfolio.trades[0].exit_reason == "trailing_stop"


def test_gtc_partial_fill_stuck_is_cancelled_and_kept() -> None:
    h = Harness(
        settings(
            market={"symbols": ["BTC/USDT"]},
            router={"time_in_force": "GTC"},
            entry={"buy_escalation_bps": [0]},
            risk={"position_size": "40"},
        ),
        {"BTC/USDT": BTC},
        depth_quote="12",
    )
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    assert h.phase("BTC/USDT") == "WAIT_FILL"
    live = h.exchange.fetch_open_orders("BTC/USDT")
    assert len(live) == 1 and live[0].filled > 0
    h.advance(int(h.s.timeouts.partial_fill_stuck_s * 1000) + 1)
    assert h.phase("BTC/USDT") == "POSITION"
    assert not h.exchange.fetch_open_orders("BTC/USDT")
    pos = h.engine.portfolio.positions["BTC/USDT"]
    assert pos.qty == live[0].filled
    assert h.engine.portfolio.reserved == {}


def test_gtc_unfilled_buy_times_out_and_releases_budget() -> None:
    h = Harness(
        settings(
            market={"symbols": ["BTC/USDT"]},
            router={"time_in_force": "GTC"},
            entry={"buy_escalation_bps": [0]},
        ),
        {"BTC/USDT": BTC},
        depth_quote="0.000001",  # an empty book: nothing fills
    )
    h.warm("BTC/USDT", 50_000.0)
    cash = h.engine.portfolio.cash
    h.bar("BTC/USDT", 48_400.0)
    assert h.phase("BTC/USDT") == "WAIT_FILL"
    assert h.engine.portfolio.cash < cash
    h.advance(int(h.s.timeouts.buy_fill_timeout_s * 1000) + 1)
    assert h.phase("BTC/USDT") == "IDLE"
    assert h.engine.portfolio.cash == cash and h.engine.portfolio.reserved == {}
    assert h.orders(state="CANCELED")


def test_a_restored_symbol_keeps_its_live_signal(tmp_path: Path) -> None:
    """The signal is not saved (it is rebuilt from prices): a restart primes it from
    history, and restoring the saved symbol state must not throw that away."""
    h = btc_harness()
    store = SqliteStore(tmp_path / "fsmtrader.db")
    h.engine.attach_store(store)
    h.warm("BTC/USDT", 50_000.0)
    assert h.phase("BTC/USDT") == "IDLE"
    store.close()  # the process dies here

    old = h.engine
    h.engine = build_engine(h.s, clock=h.clock, exchange=h.faults, filters=old.filters, bus=old.bus)
    primed = h.engine.states["BTC/USDT"].signal
    primed.prime([(h.ts - i * MIN, 50_000.0, 1e6) for i in range(60, -1, -1)])
    store2 = SqliteStore(tmp_path / "fsmtrader.db")
    h.engine.restore(store2.load())
    h.engine.attach_store(store2)
    st = h.engine.states["BTC/USDT"]
    assert st.phase is Phase.IDLE and st.signal is primed and st.signal.anchor == 50_000.0
    assert st == old.states["BTC/USDT"]  # by value: the signals take no part
    h.bar("BTC/USDT", 48_400.0)  # -3.2 % from the primed anchor: it trades at once
    assert h.phase("BTC/USDT") == "POSITION"
    store2.close()


def test_many_simultaneous_signals_respect_slots_and_exposure() -> None:
    symbols = [f"C{i}/USDT" for i in range(6)]
    markets = {sym: mf(sym, "0.0001", "0.01", "0.01", "5") for sym in symbols}
    s = settings(
        market={"symbols": symbols},
        risk={"position_size": "25", "max_open_positions": 3, "max_total_exposure": "60"},
    )
    h = Harness(s, markets)
    for _ in range(61):
        h.ts += MIN
        for sym in symbols:
            h.bar(sym, 10.0, ts=h.ts)
    h.ts += MIN
    for sym in symbols:
        h.bar(sym, 9.6, ts=h.ts)
        assert h.engine.portfolio.exposure() <= Decimal(60)
    held = [sym for sym in symbols if h.phase(sym) == "POSITION"]
    assert len(held) == 2  # exposure 60 allows two positions of 25, slots would allow 3
    reasons = [r["reason"] for r in h.sink.of_kind("phase") if r["event"] == "GUARDS_BLOCKED"]
    assert len(reasons) == 4 and all("exposure" in r for r in reasons)


def test_guard_block_arms_entry_cooldown_no_guard_loop() -> None:
    h = btc_harness(entry={"max_spread_bps": 1})  # the sim quotes 2 bps: always blocked
    h.warm("BTC/USDT", 50_000.0)
    for _ in range(5):
        h.bar("BTC/USDT", 48_400.0, ts=h.ts + 10_000)
    blocked = [r for r in h.sink.of_kind("phase") if r["event"] == "GUARDS_BLOCKED"]
    assert len(blocked) == 1  # 50 s of signals, one evaluation: the 60 s block holds
    h.bar("BTC/USDT", 48_400.0, ts=h.ts + 20_000)
    blocked = [r for r in h.sink.of_kind("phase") if r["event"] == "GUARDS_BLOCKED"]
    assert len(blocked) == 2


def test_fault_enters_error_backs_off_and_returns_to_idle() -> None:
    h = btc_harness()
    h.warm("BTC/USDT", 50_000.0)
    h.faults.inject_fault("fetch_ticker", RuntimeError("exchange adapter bug"))
    h.bar("BTC/USDT", 48_400.0)
    st = h.engine.states["BTC/USDT"]
    assert st.phase is Phase.ERROR and st.error_count == 1
    assert "exchange adapter bug" in st.last_error
    h.advance(9_000)
    assert st.phase is Phase.ERROR
    h.advance(1_001)  # 10 s base backoff
    assert st.phase is Phase.IDLE
    assert not h.engine.portfolio.reserved


def test_manual_recovery_and_halt_after_consecutive_errors() -> None:
    h = btc_harness(errors={"max_consecutive_errors": 2})
    h.warm("BTC/USDT", 50_000.0)
    st = h.engine.states["BTC/USDT"]
    for _ in range(2):
        h.faults.inject_fault("fetch_ticker", RuntimeError("boom"))
        h.bar("BTC/USDT", 48_400.0, ts=h.ts + 61_000)
        assert st.phase is Phase.ERROR
        assert h.engine.recover("BTC/USDT")
        assert st.phase is Phase.IDLE
    assert h.engine.halted and "2 consecutive errors" in h.engine.halted
    h.bar("BTC/USDT", 48_000.0, ts=h.ts + 61_000)
    assert st.phase is Phase.IDLE  # halted: no new entries
    assert not h.exchange.orders_by_client_id()


def test_event_with_no_row_is_rejected_and_logged() -> None:
    h = btc_harness()
    st = h.engine.states["BTC/USDT"]
    from fsmtrader.fsm.phases import Event

    h.engine.fire(st, Event.SELL_FILLED, "bogus")
    assert st.phase is Phase.WARMUP
    rejected = h.sink.of_kind("rejected_event")
    assert rejected and rejected[0]["event"] == "SELL_FILLED"


def test_stuck_state_detection_alerts_once() -> None:
    h = btc_harness(router={"time_in_force": "GTC"}, entry={"buy_escalation_bps": [0]})
    h.warm("BTC/USDT", 50_000.0)
    h.faults.inject_fault("cancel_order", RuntimeError("cancel endpoint down"), times=50)
    h.bar("BTC/USDT", 48_400.0)
    # a GTC buy fills at once on this deep book: make a resting one instead
    assert h.phase("BTC/USDT") in ("POSITION", "WAIT_FILL")
    st = h.engine.states["BTC/USDT"]
    if st.phase is Phase.POSITION:
        st.entered_ms -= int((h.s.exit.max_hold_min * 60 + h.s.timeouts.stuck_state_s) * 1000) + 1
    else:
        st.entered_ms -= int(h.s.timeouts.stuck_state_s * 1000) + 1
    assert h.engine.check_stuck() == [st]
    assert h.engine.check_stuck() == [st]
    alerts = [r for r in h.sink.of_kind("alert") if r["alert"] == "stuck"]
    assert len(alerts) == 1


def test_one_quote_request_per_decision_step() -> None:
    """Live, every quote is an HTTP request: an entry asks once (guards, reference price and
    limit price share it), an exit evaluation once, each later order step once more."""
    Counting.quotes = 0
    h = btc_harness()
    h.exchange.__class__ = Counting  # the same simulated exchange, counting its quotes
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)  # entry: one IOC buy, filled at once
    assert h.phase("BTC/USDT") == "POSITION"
    assert Counting.quotes == 1
    h.bar("BTC/USDT", 49_500.0)  # exit: confirm + rung 0 share one quote; the dust check
    assert h.phase("BTC/USDT") == "COOLDOWN"  # after the sell asks once more
    assert Counting.quotes == 3


def test_a_quote_given_with_the_bar_is_not_asked_for_again() -> None:
    """Live, the session polls the venue's ticker and hands it to on_bar: the entry it
    triggers asks the venue for nothing more."""
    Counting.quotes = 0
    h = btc_harness()
    h.warm("BTC/USDT", 50_000.0)
    h.ts += MIN
    h.clock.set(h.ts)
    h.exchange.update_market("BTC/USDT", h.ts, 48_400.0, 48_400.0, 48_400.0, 1e6)
    polled = h.exchange.fetch_ticker("BTC/USDT")
    h.exchange.__class__ = Counting
    h.engine.on_bar(h.ts, "BTC/USDT", 48_400.0, 48_400.0, 48_400.0, 1e6, quote=polled)
    assert h.phase("BTC/USDT") == "POSITION"
    assert Counting.quotes == 0


class Counting(SimExchange):
    """The real simulated exchange, counting its quote requests (each one is an HTTP
    request on a live venue)."""

    quotes = 0

    def fetch_ticker(self, symbol: str) -> Ticker:
        Counting.quotes += 1
        return super().fetch_ticker(symbol)


def test_buy_reservation_uses_the_venues_fee_else_reserve_fee_bps() -> None:
    """A live-shaped market (no fees in its data) reserves risk.reserve_fee_bps; a market
    that states its fees reserves the dearer of them. The simulator's settings play no
    part (they priced every reservation before, live too)."""
    sym = "BTC/USDT"
    gtc = {"time_in_force": "GTC"}
    for filters, want in (
        (BTC, Decimal("0.0025")),  # live-shaped: no fee in the market data
        (replace(BTC, maker_fee=Decimal("0.004"), taker_fee=Decimal("0.001")), Decimal("0.004")),
    ):
        s = settings(
            market={"symbols": [sym]},
            risk={"reserve_fee_bps": 25},
            router=gtc,
            entry={"buy_escalation_bps": [0]},
            sim={"maker_fee_bps": "0", "taker_fee_bps": "0"},
        )
        h = Harness(s, {sym: BTC}, depth_quote="0.000001")  # an empty book: the buy rests
        h.engine = build_engine(
            s, clock=h.clock, exchange=h.exchange, filters={sym: filters}, bus=h.engine.bus
        )
        assert h.engine.router.cfg.fee_rate_for(sym) == want == h.engine.view(sym).fee_rate
        h.warm(sym, 50_000.0)
        h.bar(sym, 48_400.0)
        (rec,) = h.engine.router.open_records()
        assert rec.price is not None and rec.reserved == rec.price * rec.amount * (1 + want)
        assert h.engine.portfolio.reserved[rec.intent.intent_id] == rec.reserved


def test_accounting_invariant_break_halts_and_parks_the_symbol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PortfolioError inside a decision's command is not a transient fault: the engine
    halts (no new entries) and the symbol parks in ERROR."""
    h = btc_harness()
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    assert h.phase("BTC/USDT") == "POSITION"

    def broken(self: Portfolio, symbol: str, ts: int, reason: str) -> None:
        raise PortfolioError("sold more than was bought")

    monkeypatch.setattr(Portfolio, "close_position", broken)
    h.bar("BTC/USDT", 49_500.0)  # take profit: the sell fills, booking the trade fails
    assert h.phase("BTC/USDT") == "ERROR"
    assert "accounting invariant broken" in h.engine.halted
    assert "sold more than was bought" in h.engine.states["BTC/USDT"].last_error
    halts = h.sink.of_kind("halt")
    assert len(halts) == 1 and "PortfolioError" in halts[0]["reason"]  # type: ignore[typeddict-item]
    h.advance(11_000)  # ERROR backs off as usual, but the halt stays until a person lifts it
    assert h.engine.halted
