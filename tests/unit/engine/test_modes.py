"""Effective modes and the mode-change rule, as pure functions: off symbols are left
out, "live" is "paper" outside a live session, a pre-modes directory ran every symbol in
its kind's mode, and a change of a symbol that is not flat is refused with a message
naming the symbol, both modes and what to do."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fsmtrader.engine.modes import (
    check_mode_change,
    decode_modes,
    encode_modes,
    saved_modes,
    session_modes,
    without_off,
)
from fsmtrader.errors import ConfigError
from fsmtrader.orders.intent import Intent, client_order_id
from fsmtrader.orders.states import OrderState
from fsmtrader.state.delta import Snapshot
from fsmtrader.state.order import OrderRecord
from fsmtrader_testing.harness import settings

SYMS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def record(sym: str, state: OrderState) -> OrderRecord:
    it = Intent.create(
        decision_id=f"{sym}-1-entry",
        symbol=sym,
        side="buy",
        amount=Decimal("0.1"),
        limit_price=Decimal(10),
        ref_price=Decimal(10),
        max_slippage_bps=Decimal(50),
        time_in_force="GTC",
        leg=0,
        created_ms=1,
    )
    return OrderRecord(it, client_order_id(it.intent_id), state)


def test_effective_modes() -> None:
    s = settings(market={"symbols": SYMS, "modes": {"ETH/USDT": "observe", "SOL/USDT": "off"}})
    assert session_modes(s, live=True) == {"BTC/USDT": "live", "ETH/USDT": "observe"}
    assert session_modes(s, live=False) == {"BTC/USDT": "paper", "ETH/USDT": "observe"}
    assert decode_modes(encode_modes({"A/B": "live"})) == {"A/B": "live"}
    assert decode_modes("not json") == {} and decode_modes('{"A/B": "bogus"}') == {}


def test_a_change_is_refused_while_an_order_is_not_over_and_allowed_when_flat() -> None:
    snap = Snapshot(
        orders=[record("BTC/USDT", OrderState.SENT), record("ETH/USDT", OrderState.RECONCILED)]
    )
    before = saved_modes(snap, "live")  # a directory from before modes: its kind's mode
    assert before == {"BTC/USDT": "live", "ETH/USDT": "live"}
    with pytest.raises(ConfigError) as err:
        check_mode_change(snap, before, {"BTC/USDT": "observe", "ETH/USDT": "live"})
    text = str(err.value)
    assert text.startswith("market.modes: BTC/USDT was live and is now observe, but it has")
    assert text.endswith("exit the position first, or keep mode live for BTC/USDT")
    with pytest.raises(ConfigError, match="BTC/USDT was live and is now off"):
        check_mode_change(snap, before, {"ETH/USDT": "live"})
    check_mode_change(snap, before, {"BTC/USDT": "live", "ETH/USDT": "paper"})  # ETH is flat
    without_off(snap, {"BTC/USDT": "live"})
    assert [r.intent.symbol for r in snap.orders] == ["BTC/USDT"]
