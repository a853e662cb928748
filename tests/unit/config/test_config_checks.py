"""Start-up warnings for settings that validate but cannot act as written.

Each warning states how the engine behaves; the tests below check both the message and,
for each rule, that the engine really behaves as the message says.
"""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.config import Settings
from fsmtrader.config.checks import unreachable_settings
from fsmtrader.markets import q_price
from fsmtrader.strategy import ExitRule, check_exit, open_exit
from fsmtrader_testing.harness import BTC, Harness, settings

ESCALATION_25 = (
    "entry.buy_escalation_bps: step 25 is above router.slippage_guard_bps (20) and acts as "
    "20: the router caps every buy at 20 bps over the ask it was priced from (raise the "
    "guard or lower the steps)"
)


def test_consistent_settings_warn_nothing() -> None:
    assert unreachable_settings(settings(entry={"buy_escalation_bps": [0, 10, 20]})) == []
    trailing_off = settings(
        entry={"buy_escalation_bps": [0]},
        exit={"take_profit_pct": 1, "trailing_activation_pct": 0, "trailing_distance_pct": 5},
    )
    assert unreachable_settings(trailing_off) == []


def test_the_defaults_last_escalation_step_is_capped_by_the_router() -> None:
    """The shipped defaults escalate to 25 bps under a 20 bps router guard."""
    assert unreachable_settings(Settings()) == [ESCALATION_25]


def test_several_steps_over_the_guard_are_named_together() -> None:
    s = settings(entry={"buy_escalation_bps": [0, 30, 40]}, router={"slippage_guard_bps": 25})
    assert unreachable_settings(s) == [
        "entry.buy_escalation_bps: steps 30, 40 are above router.slippage_guard_bps (25) and "
        "act as 25: the router caps every buy at 25 bps over the ask it was priced from "
        "(raise the guard or lower the steps)"
    ]


def test_escalation_step_over_the_guard_is_priced_at_the_guard() -> None:
    """What the warning says: the 25 bps step goes out at 20 bps over the same ask."""
    s = settings(
        market={"symbols": ["BTC/USDT"]},
        risk={"position_size": "40", "max_open_positions": 1},
    )
    assert unreachable_settings(s) == [ESCALATION_25]
    h = Harness(s, {"BTC/USDT": BTC}, depth_quote="12")  # thin book: the entry escalates
    h.warm("BTC/USDT", 50_000.0)
    h.bar("BTC/USDT", 48_400.0)
    reserved = {r["intent_id"]: r for r in h.orders(state="RESERVED")}
    legs = {r["leg"]: reserved[r["intent_id"]] for r in h.orders(state="NEW", side="buy")}
    ask = Decimal(legs[0]["price"])  # step 0 buys at the ask
    assert Decimal(legs[1]["price"]) == q_price(ask * Decimal("1.001"), BTC.tick_size)
    assert legs[2]["reason"] == "slippage_guard_applied"
    assert Decimal(legs[2]["price"]) == q_price(ask * Decimal("1.002"), BTC.tick_size)


def test_exposure_for_one_position_only() -> None:
    s = settings(
        entry={"buy_escalation_bps": [0]},
        risk={"position_size": "40", "max_open_positions": 2, "max_total_exposure": "75"},
    )
    [line] = unreachable_settings(s)
    assert line.endswith("(it is 75), so at most 1 full position is open at once")


def test_more_slots_than_the_exposure_holds() -> None:
    """The settings of test_many_simultaneous_signals_respect_slots_and_exposure, which
    shows the engine holding two positions where three slots were configured."""
    s = settings(
        entry={"buy_escalation_bps": [0]},
        risk={"position_size": "25", "max_open_positions": 3, "max_total_exposure": "60"},
    )
    assert unreachable_settings(s) == [
        "risk.max_open_positions: 3 positions of risk.position_size (25) need "
        "risk.max_total_exposure >= 75 (it is 60), so at most 2 full positions are open at once"
    ]
    exact = settings(
        entry={"buy_escalation_bps": [0]},
        risk={"position_size": "25", "max_open_positions": 3, "max_total_exposure": "75"},
    )
    assert unreachable_settings(exact) == []


def test_trailing_that_starts_at_or_above_the_take_profit() -> None:
    for activation in (2.0, 2.5):
        s = settings(
            entry={"buy_escalation_bps": [0]},
            exit={"take_profit_pct": 2, "trailing_activation_pct": activation},
        )
        assert unreachable_settings(s) == [
            f"exit.trailing_activation_pct: {activation:g} is >= exit.take_profit_pct (2): "
            "the take-profit sells at the price that would start the trailing stop, so it "
            "acts only if that sell does not happen (set it below take_profit_pct, or 0 to "
            "turn trailing off)"
        ]


def test_take_profit_fires_before_a_trailing_stop_starting_at_its_price() -> None:
    """What the warning says: rising to the activation price is already a take-profit."""
    rule = ExitRule(
        take_profit_pct=2.0,
        stop_loss_pct=3.0,
        trailing_activation_pct=2.0,
        trailing_distance_pct=0.5,
    )
    tracker = open_exit(100.0, rule)
    prices = [100.0 + i / 10 for i in range(21)]  # up to 102.0 in 0.1 steps
    reasons = [check_exit(tracker, p) for p in prices]
    assert reasons == [""] * 20 + ["take_profit"]
    assert tracker.trail_active  # started by the very price that took the profit


def test_all_rules_report_in_a_fixed_order() -> None:
    s = settings(
        risk={"max_open_positions": 5},
        exit={"trailing_activation_pct": 2.5},
    )
    keys = [line.split(":", 1)[0] for line in unreachable_settings(s)]
    assert keys == [
        "entry.buy_escalation_bps",  # the defaults' 25 bps step
        "risk.max_open_positions",
        "exit.trailing_activation_pct",
    ]
