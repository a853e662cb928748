"""The protective stop's decisions as pure functions over a fixed view: where it rests,
when it is placed, replaced or left alone, what a partial fill leaves to manage, and when
the trade is over (engine/protect.py)."""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.engine import protect
from fsmtrader.engine.commands import Cancel, Count, Fire, Place, Publish, Then
from fsmtrader.engine.policy import EnginePolicy, ProtectPolicy
from fsmtrader.exchange.types import Ticker
from fsmtrader.fsm.phases import Event, Phase
from fsmtrader.orders.intent import Intent
from fsmtrader.orders.states import OrderState
from fsmtrader.portfolio import Position
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.symbol import SymbolState
from fsmtrader.strategy import ExitRule, open_exit
from fsmtrader_testing.harness import BTC
from fsmtrader_testing.views import FixedView

D = Decimal
SYM = "BTC/USDT"
POLICY = EnginePolicy(symbols=(SYM,), protect=ProtectPolicy(D(100), D(25)))
RULE = ExitRule(10.0, 3.0, 1.0, 0.5)
TS = 1_000


def position(qty: str = "0.001", locked: str = "0", sold: str = "0") -> Position:
    return Position(
        SYM,
        "BTCUSDT-1-entry",
        0,
        qty=D(qty),
        bought_qty=D(qty) + D(sold),
        buy_cost=(D(qty) + D(sold)) * D(50_000),
        sold_qty=D(sold),
        sell_locked=D(locked),
    )


def state(peak: float | None = None, trail: bool = False) -> SymbolState:
    st = SymbolState(SYM, phase=Phase.POSITION, sell_leg=2)
    st.exit = open_exit(50_000.0, RULE, peak, trail)
    return st


def quote(last: str = "50000") -> Ticker:
    px = D(last)
    return Ticker(SYM, TS, px - 1, px + 1, px, D(1))


def stop_record(stop: str, amount: str, state_: OrderState, filled: str = "0") -> OrderRecord:
    it = Intent.create(
        decision_id="BTCUSDT-1-entry",
        symbol=SYM,
        side="sell",
        amount=D(amount),
        limit_price=D(stop) * D("0.99"),
        ref_price=D(stop) * D("0.99"),
        max_slippage_bps=D(0),
        time_in_force="GTC",
        leg=0,
        created_ms=0,
        stop_price=D(stop),
    )
    rec = OrderRecord(it, "fsmx", state=state_, amount=D(amount), filled=D(filled))
    return rec


def view(pos: Position | None, stops: list[OrderRecord] | None = None, **kw: object) -> FixedView:
    kw.setdefault("quote", quote())
    return FixedView(SYM, BTC, position=pos, protective_stops=stops or [], **kw)  # type: ignore[arg-type]


def test_the_stop_rests_at_the_stop_loss_then_under_an_armed_trailing_stop() -> None:
    assert protect.stop_level(state().exit, D("0.01")) == D("48500.00")  # type: ignore[arg-type]
    armed = state(peak=51_000.0, trail=True).exit
    assert protect.stop_level(armed, D("0.01")) == D("50745.00")  # type: ignore[arg-type]
    low_peak = state(peak=48_000.0, trail=True).exit  # the trail under the stop-loss
    assert protect.stop_level(low_peak, D("0.01")) == D("48500.00")  # type: ignore[arg-type]


def test_a_new_stop_for_all_that_is_held_with_its_own_leg() -> None:
    d = protect.sync_stop(TS, state(), view(position()), POLICY)
    [place] = d.commands
    assert isinstance(place, Place)
    it = place.intent
    assert (it.side, it.time_in_force, it.amount, it.stop_price) == (
        "sell",
        "GTC",
        D("0.001"),
        D("48500.00"),
    )
    assert it.limit_price == D("48015.00") and it.ref_price == it.limit_price
    assert (it.decision_id, it.leg, it.created_ms) == ("BTCUSDT-1-entry", 2, TS)
    assert d.changes == {"sell_leg": 3}


def test_no_stop_below_the_minimum_or_under_the_last_price_and_why_is_published() -> None:
    small = protect.sync_stop(TS, state(), view(position("0.0001")), POLICY)  # 4.8 < 10
    under = protect.sync_stop(TS, state(), view(position(), quote=quote("48400")), POLICY)
    for d, words in ((small, "min_notional"), (under, "would trigger at once")):
        count, pub = d.commands
        assert isinstance(count, Count) and count.name == "protect_skipped"
        assert isinstance(pub, Publish) and pub.record["kind"] == "alert"
        assert words in str(pub.record["detail"])
    # on a new peak it is tried again, but not reported again
    assert (
        protect.sync_stop(TS, state(), view(position("0.0001")), POLICY, trail=True).commands == []
    )


def test_a_resting_stop_is_replaced_only_when_it_rises_enough_or_covers_too_little() -> None:
    rest = stop_record("50700.00", "0.001", OrderState.SENT)
    pos = position(locked="0.001")
    near = protect.sync_stop(TS, state(51_000.0, True), view(pos, [rest]), POLICY)
    assert near.commands == []  # 50,745 is < 25 bps above 50,700
    far = protect.sync_stop(TS, state(51_200.0, True), view(pos, [rest]), POLICY)
    cancel, then = far.commands
    assert isinstance(cancel, Cancel) and cancel.intent_id == rest.intent.intent_id
    assert isinstance(then, Then)
    topped = position("0.002", locked="0.001")  # a buy top-up: 0.001 unguarded
    more = protect.sync_stop(
        TS, state(), view(topped, [stop_record("48500", "0.001", OrderState.SENT)]), POLICY
    )
    assert isinstance(more.commands[0], Cancel)
    settling = stop_record("48500", "0.001", OrderState.SENT)
    settling.cancel_requested = True
    assert (
        protect.sync_stop(TS, state(51_200.0, True), view(pos, [settling]), POLICY).commands == []
    )


def test_a_partial_fill_shrinks_the_position_and_the_rest_stays_guarded() -> None:
    part = stop_record("48500", "0.001", OrderState.PARTIAL, filled="0.0004")
    pos = position("0.0006", locked="0.0006", sold="0.0004")
    assert protect.stop_news(TS, state(), view(pos, [part]), POLICY).commands == []
    # the rest of a stop that ended (cancelled, say) gets a stop of its own
    d = protect.stop_news(TS, state(), view(position("0.0006", sold="0.0004")), POLICY)
    [place] = d.commands
    assert isinstance(place, Place) and place.intent.amount == D("0.0006")


def test_a_stop_that_sold_everything_closes_the_trade_as_protective_stop() -> None:
    for pos in (position("0", sold="0.001"), position("0.00001", sold="0.00099")):  # dust
        d = protect.stop_news(TS, state(), view(pos), POLICY)
        [fire] = d.commands
        assert isinstance(fire, Fire) and fire.event is Event.STOP_FILLED
        assert d.changes == {"exit_reason": "protective_stop"}
    assert protect.stop_news(TS, state(), view(position()), POLICY).commands != []  # not sold


def test_a_sell_waits_for_the_stop_cancel_to_settle() -> None:
    live = stop_record("48500", "0.001", OrderState.SENT)
    blocked = protect.after_cancel(view(position(locked="0.001"), [live]))
    assert blocked is not None
    [fire] = blocked.commands
    assert isinstance(fire, Fire) and fire.event is Event.SELL_BLOCKED
    assert protect.after_cancel(view(position())) is None  # settled: sell


def test_off_decides_nothing() -> None:
    off = EnginePolicy(symbols=(SYM,))
    assert protect.sync_stop(TS, state(), view(position()), off).commands == []
