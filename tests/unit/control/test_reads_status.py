"""The status row builder (control.status): rows sorted ERROR, active, at rest; unrealised
PnL exact in Decimal and equal to what closing the position at the mark would book; rows
at rest hidden on request and never one that holds, has an order or is in ERROR."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from fsmtrader.control.status import (
    build_status,
    mark_decimal,
    sort_key,
    unrealized_pnl,
    visible_rows,
)
from fsmtrader.exchange.types import TradeInfo
from fsmtrader.fsm.phases import Phase
from fsmtrader.orders.intent import Intent, client_order_id
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import Portfolio
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.symbol import SymbolState

D = Decimal
NOW = 1_767_300_000_000


def fill(symbol: str, side: str, price: str, amount: str, fee: str, cur: str) -> TradeInfo:
    return TradeInfo(
        id=f"t{price}{amount}",
        order_id="o1",
        client_order_id="c1",
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        price=D(price),
        amount=D(amount),
        fee=D(fee),
        fee_currency=cur,
        timestamp=NOW - 60_000,
    )


def order(symbol: str, side: str, state: OrderState, leg: int = 0) -> OrderRecord:
    it = Intent.create(
        decision_id=f"{symbol}-1-entry",
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        amount=D("0.5"),
        limit_price=D("100.10"),
        ref_price=D("100.10"),
        max_slippage_bps=D(50),
        time_in_force="GTC",
        leg=leg,
        created_ms=NOW - 5_000,
    )
    return OrderRecord(
        intent=it,
        client_order_id=client_order_id(it.intent_id),
        state=state,
        price=D("100.10"),
        amount=D("0.5"),
        filled=D("0.2"),
        cost=D("20.02"),
        reserved=D("30.03"),
    )


def books() -> tuple[list[SymbolState], list[OrderRecord], Portfolio]:
    """Six symbols: one in ERROR, one holding (bought with a quote fee and a base fee,
    one exit leg sold), one buying, one IDLE, one WARMUP, one IDLE with a stray open order."""
    pf = Portfolio(quote="USDT", cash=D(1000))
    pf.reserve("i-hold", D(200))
    pf.apply_buy_fill(
        "i-hold", "HOLD-1-entry", fill("HOLD/USDT", "buy", "2.5", "40", "0.1", "USDT"), "HOLD"
    )
    pf.apply_buy_fill(
        "i-hold", "HOLD-1-entry", fill("HOLD/USDT", "buy", "2.6", "10", "0.01", "HOLD"), "HOLD"
    )
    pf.release("i-hold")
    assert pf.lock_for_sell("HOLD/USDT", D(20))
    pf.apply_sell_fill(fill("HOLD/USDT", "sell", "2.7", "20", "0.054", "USDT"), "HOLD")
    states = [
        SymbolState("IDLE/USDT", phase=Phase.IDLE, entered_ms=NOW - 90_000),
        SymbolState("HOLD/USDT", phase=Phase.POSITION, entered_ms=NOW - 3_600_000),
        SymbolState("WARM/USDT", phase=Phase.WARMUP, entered_ms=NOW - 1_000),
        SymbolState(
            "ERR/USDT", phase=Phase.ERROR, entered_ms=NOW - 10, error_count=3, last_error="boom"
        ),
        SymbolState("BUY/USDT", phase=Phase.WAIT_FILL, entered_ms=NOW - 2_000),
        SymbolState("STRAY/USDT", phase=Phase.IDLE, entered_ms=NOW - 5),
    ]
    buying = order("BUY/USDT", "buy", OrderState.PARTIAL)
    states[4].active_intent = buying.intent.intent_id
    records = [
        order("BUY/USDT", "buy", OrderState.RECONCILED, leg=9),  # done: never shown
        buying,
        order("STRAY/USDT", "sell", OrderState.UNKNOWN),
    ]
    return states, records, pf


def status(marks: dict[str, float] | None = None) -> dict:  # type: ignore[type-arg]
    states, records, pf = books()
    return build_status(
        states,
        records,
        pf,
        marks={"HOLD/USDT": 2.8, "BUY/USDT": 100.2} if marks is None else marks,
        now_ms=NOW,
        halted="",
        entries_stopped="api at 2026-01-01",
    )


def test_rows_are_error_then_active_then_at_rest_by_symbol() -> None:
    rows = status()["symbols"]
    assert [r["symbol"] for r in rows] == [
        "ERR/USDT",
        "BUY/USDT",
        "HOLD/USDT",
        "STRAY/USDT",  # IDLE, but an order in flight: active
        "IDLE/USDT",
        "WARM/USDT",
    ]
    assert rows == sorted(rows, key=sort_key)
    assert [r["time_in_phase_ms"] for r in rows] == [10, 2_000, 3_600_000, 5, 90_000, 1_000]


def test_unrealized_pnl_is_exact_and_what_closing_at_the_mark_would_book() -> None:
    rows = {r["symbol"]: r for r in status()["symbols"]}
    hold = rows["HOLD/USDT"]
    # bought 40 @2.5 (fee 0.1 USDT) + 10 @2.6 (fee 0.01 HOLD: 9.99 held), sold 20 @2.7
    # (fee 0.054): held 29.99; cost basis 100 + 26 + 0.1 = 126.1; proceeds 54 - 0.054.
    assert hold["position"] == "29.99"
    assert hold["entry_price"] == str(D(126) / D("49.99"))
    assert hold["last_price"] == "2.8"
    expected = D("54") - D("0.054") + D("29.99") * D("2.8") - D("126.1")
    assert D(hold["unrealized_pnl"]) == expected == D("11.818")
    # the same number closing books: sell the rest at the mark without a fee
    _, _, pf = books()
    pos = pf.positions["HOLD/USDT"]
    assert unrealized_pnl(pos, D("2.8")) == expected
    assert pf.lock_for_sell("HOLD/USDT", pos.qty)
    pf.apply_sell_fill(fill("HOLD/USDT", "sell", "2.8", str(pos.qty), "0", "USDT"), "HOLD")
    assert pf.close_position("HOLD/USDT", NOW, "test").realized_pnl == expected
    totals = status()["totals"]
    assert totals["unrealized_pnl"] == str(expected)
    assert totals["total_pnl"] == str(expected)  # nothing realised yet
    assert totals["positions"] == 1 and totals["unpriced"] == []


def test_a_float_mark_is_its_printed_value_and_a_missing_mark_is_no_pnl() -> None:
    assert mark_decimal(0.1) == D("0.1")
    assert mark_decimal(93195.31) == D("93195.31")
    assert mark_decimal(None) is None and mark_decimal(0.0) is None
    assert mark_decimal(float("nan")) is None
    st = status(marks={})
    hold = next(r for r in st["symbols"] if r["symbol"] == "HOLD/USDT")
    assert hold["last_price"] is None and hold["unrealized_pnl"] is None
    assert st["totals"]["unpriced"] == ["HOLD/USDT"]
    assert st["totals"]["unrealized_pnl"] == "0"


def test_open_order_is_the_active_intent_and_terminal_orders_are_left_out() -> None:
    st = status()
    rows = {r["symbol"]: r for r in st["symbols"]}
    buy = rows["BUY/USDT"]
    assert buy["open_orders"] == 1
    o = buy["open_order"]
    assert (o["side"], o["state"], o["price"], o["amount"], o["filled"]) == (
        "buy",
        "PARTIAL",
        "100.10",
        "0.5",
        "0.2",
    )
    assert o["avg_price"] == "100.1"
    assert rows["IDLE/USDT"]["open_order"] is None
    assert st["totals"]["open_orders"] == 2
    assert st["totals"]["errors"] == 1
    assert st["totals"]["active"] == 3
    assert st["entries_allowed"] is False  # stopped entries


@pytest.mark.parametrize(
    ("hide_idle", "hide_warmup", "hidden", "gone"),
    [
        (False, False, {}, set()),
        (True, False, {"IDLE": 1}, {"IDLE/USDT"}),
        (False, True, {"WARMUP": 1}, {"WARM/USDT"}),
        (True, True, {"IDLE": 1, "WARMUP": 1}, {"IDLE/USDT", "WARM/USDT"}),
    ],
)
def test_hidden_rows_are_only_those_at_rest(
    hide_idle: bool, hide_warmup: bool, hidden: dict[str, int], gone: set[str]
) -> None:
    st = status()
    rows, counted = visible_rows(st, hide_idle=hide_idle, hide_warmup=hide_warmup)
    names = {r["symbol"] for r in st["symbols"]}
    assert {r["symbol"] for r in rows} == names - gone
    assert counted == hidden
    assert "STRAY/USDT" in {r["symbol"] for r in rows}  # IDLE with an order: shown


def test_the_builder_changes_nothing_it_is_given() -> None:
    states, records, pf = books()
    before = copy.deepcopy((states, records, pf))
    build_status(
        states, records, pf, marks={"HOLD/USDT": 3.0}, now_ms=NOW, halted="x", entries_stopped=""
    )
    assert (states, records, pf) == before
