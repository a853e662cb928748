"""The books: reservations, fills (quote and base fees), multi-leg exits, PnL, dust, invariants.

Expected numbers come from the fills themselves (cash flows and an independent PnL
recomputation), not from the Portfolio's own formulas.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmtrader.errors import PortfolioError
from fsmtrader.exchange.types import TradeInfo
from fsmtrader.markets import Side
from fsmtrader.portfolio import ClosedTrade, Portfolio, Position

D = Decimal
BTC = "BTC/USDT"
_ids = itertools.count()


def fill(
    side: Side,
    price: str | Decimal,
    amount: str | Decimal,
    fee: str | Decimal = "0",
    fee_currency: str = "USDT",
    symbol: str = BTC,
    ts: int = 1_000,
) -> TradeInfo:
    n = next(_ids)
    return TradeInfo(
        id=f"t{n}",
        order_id=f"o{n}",
        client_order_id=f"fsm{n}",
        symbol=symbol,
        side=side,
        price=D(price),
        amount=D(amount),
        fee=D(fee),
        fee_currency=fee_currency,
        timestamp=ts,
    )


def close_enough(a: Decimal, b: Decimal, tol: str = "1e-8") -> bool:
    return abs(a - b) <= D(tol)


# --- reservations ------------------------------------------------------------------------


def test_reserve_moves_cash_and_is_idempotent() -> None:
    p = Portfolio("USDT", D(100))
    assert p.reserve("i1", D(30))
    assert (p.cash, p.reserved) == (D(70), {"i1": D(30)})
    assert p.reserve("i1", D(30))  # the same intent again: no second reservation
    assert p.reserve("i1", D(50))
    assert (p.cash, p.reserved_total) == (D(70), D(30))
    assert p.reserve("i2", D(70))
    assert p.cash == 0 and p.reserved_total == D(100)
    p.check()


def test_reserve_refuses_more_than_cash() -> None:
    p = Portfolio("USDT", D(100))
    assert not p.reserve("i1", D("100.01"))
    assert (p.cash, p.reserved) == (D(100), {})
    assert p.reserve("i1", D(60))
    assert not p.reserve("i2", D(41))
    assert (p.cash, p.reserved) == (D(40), {"i1": D(60)})


@pytest.mark.parametrize("amount", [D(0), D(-1), D("-0.0001")])
def test_reserve_rejects_non_positive(amount: Decimal) -> None:
    p = Portfolio("USDT", D(100))
    with pytest.raises(PortfolioError):
        p.reserve("i1", amount)
    assert p.cash == 100 and p.reserved == {}


def test_release_is_idempotent_and_never_negative() -> None:
    p = Portfolio("USDT", D(100))
    p.reserve("i1", D(25))
    assert p.release("i1") == D(25)
    assert (p.cash, p.reserved) == (D(100), {})
    assert p.release("i1") == 0
    assert p.release("never-reserved") == 0
    assert p.cash == D(100)
    p.check()


# --- buy fills ---------------------------------------------------------------------------


def test_buy_fill_with_quote_fee() -> None:
    p = Portfolio("USDT", D(1000))
    p.reserve("i1", D("60"))
    p.apply_buy_fill("i1", "d1", fill("buy", "100", "0.5", "0.05"), base="BTC")
    pos = p.positions[BTC]
    assert (pos.qty, pos.bought_qty) == (D("0.5"), D("0.5"))
    assert pos.buy_cost == D(50) and pos.buy_fees == D("0.05")
    assert pos.avg_entry == D(100)
    assert pos.cost_basis == D("50.05")
    assert p.reserved["i1"] == D("9.95")  # 60 - 50 - 0.05
    assert p.cash == D(940)
    assert p.fees_paid == D("0.05")
    assert p.release("i1") == D("9.95")
    assert p.cash + pos.cost_basis == D(1000)  # every quote unit is accounted for
    p.check()


def test_buy_fill_with_base_currency_fee() -> None:
    p = Portfolio("USDT", D(1000))
    p.reserve("i1", D(150))
    p.apply_buy_fill("i1", "d1", fill("buy", "100", "1", "0.001", "BTC"), base="BTC")
    pos = p.positions[BTC]
    assert pos.qty == D("0.999")  # the fee came out of what we received
    assert pos.buy_cost == D(100)
    assert pos.buy_fees == D("0.1")  # 0.001 BTC valued at the fill price
    assert p.fees_paid == D("0.1")
    assert p.reserved["i1"] == D(50)  # only the cost left the reservation
    assert p.cash == D(850)
    p.check()
    # the fee is already paid in BTC: the quote committed is the 100 spent, not 100.1
    assert p.release("i1") == D(50)
    assert p.cash + p.exposure() == D(1000)


def test_weighted_average_entry_over_partial_fills() -> None:
    p = Portfolio("USDT", D(1000))
    p.reserve("i1", D(100))
    p.apply_buy_fill("i1", "d1", fill("buy", "100", "0.1"), base="BTC")
    p.apply_buy_fill("i1", "d1", fill("buy", "104", "0.3"), base="BTC")
    pos = p.positions[BTC]
    assert pos.avg_entry == D(103)
    assert pos.qty == D("0.4") and pos.buy_cost == D("41.2")
    assert p.reserved["i1"] == D("58.8")
    p.apply_buy_fill("i1", "d1", fill("buy", "98", "0.6"), base="BTC")
    assert pos.avg_entry == (D("41.2") + D("58.8")) / 1 == D(100)
    assert p.reserved["i1"] == 0


def test_buy_fill_beyond_reservation_takes_from_cash_or_fails() -> None:
    p = Portfolio("USDT", D(100))
    p.reserve("i1", D(50))
    p.apply_buy_fill("i1", "d1", fill("buy", "100", "0.5", "0.05"), base="BTC")
    assert p.reserved["i1"] == 0 and p.cash == D("49.95")
    with pytest.raises(PortfolioError):
        p.apply_buy_fill("i1", "d1", fill("buy", "100", "0.5", "0.05"), base="BTC")
    assert p.cash == D("49.95") and p.reserved["i1"] == 0
    assert p.positions[BTC].qty == D("0.5")
    p.check()


# --- sells, close, PnL, dust -------------------------------------------------------------


def base_fee(t: TradeInfo) -> Decimal:
    return t.fee if t.fee_currency != "USDT" else D(0)


def quote_fee(t: TradeInfo) -> Decimal:
    return t.fee if t.fee_currency == "USDT" else D(0)


@dataclass
class Ledger:
    """The fills of one round trip, for recomputing PnL without the Portfolio."""

    buys: list[TradeInfo] = field(default_factory=list)
    sells: list[TradeInfo] = field(default_factory=list)

    def pnl(self) -> Decimal:
        """Proceeds - sell fees - cost basis x sold share. A buy fee charged in the base
        asset costs no quote: it only shrinks the quantity received."""
        bought = sum((t.amount - base_fee(t) for t in self.buys), D(0))
        basis = sum((t.price * t.amount + quote_fee(t) for t in self.buys), D(0))
        proceeds = sum((t.price * t.amount for t in self.sells), D(0))
        sell_fees = sum((t.fee for t in self.sells), D(0))
        sold = sum((t.amount for t in self.sells), D(0))
        return proceeds - sell_fees - basis * sold / bought


def buy_position(p: Portfolio, ledger: Ledger, *fills: TradeInfo) -> Position:
    p.reserve("buy-1", sum((t.price * t.amount + t.fee for t in fills), D(0)))
    for t in fills:
        p.apply_buy_fill("buy-1", "d1", t, base="BTC")
        ledger.buys.append(t)
    p.release("buy-1")
    return p.positions[BTC]


def sell_leg(p: Portfolio, ledger: Ledger, t: TradeInfo) -> None:
    assert p.lock_for_sell(BTC, t.amount)
    p.note_sell_leg(BTC)
    p.apply_sell_fill(t, base="BTC")
    ledger.sells.append(t)
    p.check()


def test_multi_leg_exit_sums_fees_and_legs() -> None:
    p = Portfolio("USDT", D(1000))
    ledger = Ledger()
    buy_position(p, ledger, fill("buy", "100", "0.4", "0.04"), fill("buy", "101", "0.6", "0.0606"))
    cash_before_sells = p.cash
    legs = [
        fill("sell", "110", "0.3", "0.033"),
        fill("sell", "109.5", "0.5", "0.05475"),
        fill("sell", "108", "0.2", "0.0216"),
    ]
    for t in legs:
        sell_leg(p, ledger, t)
    trade = p.close_position(BTC, 9_000, "take_profit")
    assert isinstance(trade, ClosedTrade)
    assert trade.sell_fees == D("0.033") + D("0.05475") + D("0.0216")
    assert trade.buy_fees == D("0.1006")
    assert trade.fees == trade.buy_fees + trade.sell_fees
    assert trade.sell_legs == 3
    assert trade.sold_qty == trade.bought_qty == D(1)
    assert trade.dust_qty == 0 and BTC not in p.dust
    assert trade.avg_exit == sum((t.price * t.amount for t in legs), D(0)) / D(1)
    assert trade.exit_reason == "take_profit" and trade.exit_ms == 9_000
    assert close_enough(trade.realized_pnl, ledger.pnl())
    # a full round trip with quote fees: PnL is exactly the net cash it produced
    assert p.cash == D(1000) + trade.realized_pnl
    assert p.cash - cash_before_sells == sum((t.cost - t.fee for t in legs), D(0))
    assert p.realized_pnl == trade.realized_pnl
    assert p.trades == [trade] and BTC not in p.positions
    assert p.fees_paid == trade.fees


def test_partial_exit_records_dust_and_excludes_its_cost() -> None:
    p = Portfolio("USDT", D(1000))
    ledger = Ledger()
    buy_position(p, ledger, fill("buy", "3", "10", "0.03"), fill("buy", "3.3", "3", "0.0099"))
    sell_leg(p, ledger, fill("sell", "3.5", "12.9", "0.045150"))
    trade = p.close_position(BTC, 5_000, "stop_loss")
    assert trade.dust_qty == D("0.1")
    assert p.dust[BTC] == D("0.1")
    assert close_enough(trade.realized_pnl, ledger.pnl())
    # the dust's share of the cost basis stays out of the trade's loss
    full_basis = sum((t.cost + t.fee for t in ledger.buys), D(0))
    assert trade.realized_pnl > D("3.5") * D("12.9") - D("0.04515") - full_basis
    # a second trade's dust accumulates
    ledger2 = Ledger()
    buy_position(p, ledger2, fill("buy", "3", "1"))
    sell_leg(p, ledger2, fill("sell", "3", "0.75"))
    p.close_position(BTC, 6_000, "x")
    assert p.dust[BTC] == D("0.35")
    assert p.realized_pnl == sum((t.realized_pnl for t in p.trades), D(0))


def test_round_trip_with_base_fee_pnl_equals_cash_flow() -> None:
    p = Portfolio("USDT", D(1000))
    p.reserve("i1", D(100))
    p.apply_buy_fill("i1", "d1", fill("buy", "100", "1", "0.001", "BTC"), base="BTC")
    p.release("i1")
    held = p.positions[BTC].qty  # 0.999 BTC, paid 100 USDT
    assert p.lock_for_sell(BTC, held)
    p.apply_sell_fill(fill("sell", "110", held, "0.10989"), base="BTC")
    trade = p.close_position(BTC, 2_000, "take_profit")
    assert trade.dust_qty == 0
    # 100 USDT out, 109.89 - 0.10989 in: the trade made 9.78011 USDT
    assert p.cash - D(1000) == D("9.78011")
    assert trade.realized_pnl == p.cash - D(1000)


def test_exposure_counts_reservations_and_held_cost() -> None:
    p = Portfolio("USDT", D(1000))
    assert p.exposure() == 0
    ledger = Ledger()
    buy_position(p, ledger, fill("buy", "100", "2", "0.2"))
    assert p.exposure() == D("200.2")
    p.reserve("eth-buy", D(50))
    assert p.exposure() == D("250.2")
    sell_leg(p, ledger, fill("sell", "120", "0.5", "0.06"))
    assert p.exposure() == D("200.2") * D("1.5") / D(2) + D(50)
    p.release("eth-buy")
    assert p.exposure() == D("150.15")


def test_lock_and_unlock() -> None:
    p = Portfolio("USDT", D(1000))
    assert not p.lock_for_sell(BTC, D(1))  # no position
    buy_position(p, Ledger(), fill("buy", "100", "1"))
    assert not p.lock_for_sell(BTC, D(0))
    assert not p.lock_for_sell(BTC, D("1.01"))
    assert p.lock_for_sell(BTC, D("0.6"))
    assert not p.lock_for_sell(BTC, D("0.5"))  # only 0.4 is still sellable
    assert p.positions[BTC].sellable == D("0.4")
    with pytest.raises(PortfolioError):
        p.unlock_sell(BTC, D("0.61"))
    assert p.positions[BTC].sell_locked == D("0.6")
    p.unlock_sell(BTC, D("0.6"))
    assert p.positions[BTC].sell_locked == 0
    p.unlock_sell("NOPE/USDT", D(1))  # no position: nothing to unlock
    p.check()


def test_sell_fill_errors() -> None:
    p = Portfolio("USDT", D(1000))
    with pytest.raises(PortfolioError, match="without a position"):
        p.apply_sell_fill(fill("sell", "100", "0.1"), base="BTC")
    buy_position(p, Ledger(), fill("buy", "100", "1"))
    p.lock_for_sell(BTC, D("0.5"))
    with pytest.raises(PortfolioError):
        p.apply_sell_fill(fill("sell", "100", "0.6"), base="BTC")
    assert p.positions[BTC].qty == 1 and p.cash == D(900)
    with pytest.raises(PortfolioError, match="locked"):
        p.close_position(BTC, 1, "x")


def test_check_raises_on_corrupted_state() -> None:
    p = Portfolio("USDT", D(100))
    p.reserve("i1", D(10))
    buy_position(p, Ledger(), fill("buy", "10", "1"))
    p.check()
    p.cash = D("-0.01")
    with pytest.raises(PortfolioError):
        p.check()
    p.cash = D(80)
    p.reserved["i1"] = D(-1)
    with pytest.raises(PortfolioError):
        p.check()
    p.reserved["i1"] = D(10)
    p.check()
    pos = p.positions[BTC]
    pos.sell_locked = D(2)  # more locked than held
    with pytest.raises(PortfolioError):
        p.check()
    pos.sell_locked = D(0)
    pos.qty = D(-1)
    with pytest.raises(PortfolioError):
        p.check()


def test_discard_empty_keeps_filled_positions() -> None:
    p = Portfolio("USDT", D(100))
    p.open_position("ETH/USDT", "d1", 0)
    p.discard_empty("ETH/USDT")
    assert "ETH/USDT" not in p.positions
    buy_position(p, Ledger(), fill("buy", "10", "1"))
    p.discard_empty(BTC)
    assert BTC in p.positions


# --- hypothesis: nothing ever goes negative ----------------------------------------------

SYMBOLS = [BTC, "ETH/USDT"]
INTENTS = ["i0", "i1", "i2", "i3"]
Q = D("0.0001")


@dataclass(frozen=True)
class Reserve:
    intent: str
    amount: int


@dataclass(frozen=True)
class Buy:
    intent: str
    symbol: str
    share: int  # % of what is left of the reservation
    cents: int
    fee_rate: str
    fee_in_base: bool


@dataclass(frozen=True)
class Release:
    intent: str


@dataclass(frozen=True)
class Lock:
    symbol: str
    share: int  # % of the sellable qty (over 100: more than allowed)


@dataclass(frozen=True)
class Unlock:
    symbol: str
    share: int


@dataclass(frozen=True)
class Sell:
    symbol: str
    share: int  # % of the locked qty
    cents: int
    fee_rate: str


@dataclass(frozen=True)
class Close:
    symbol: str


Op = Reserve | Buy | Release | Lock | Unlock | Sell | Close
intents, symbols = st.sampled_from(INTENTS), st.sampled_from(SYMBOLS)
ops: st.SearchStrategy[Op] = st.one_of(
    st.builds(Reserve, intents, st.integers(1, 600)),
    st.builds(
        Buy,
        intents,
        symbols,
        st.integers(1, 100),
        st.integers(50, 20_000),
        st.sampled_from(["0", "0.001", "0.00075"]),
        st.booleans(),
    ),
    st.builds(Release, intents),
    st.builds(Lock, symbols, st.integers(0, 110)),
    st.builds(Unlock, symbols, st.integers(0, 100)),
    st.builds(
        Sell, symbols, st.integers(1, 100), st.integers(50, 20_000), st.sampled_from(["0", "0.001"])
    ),
    st.builds(Close, symbols),
)


def pct(x: Decimal, n: int) -> Decimal:
    return (x * n / 100).quantize(Q, rounding=ROUND_FLOOR)


@dataclass
class Model:
    """An independent model of the quote money and the held quantities."""

    cash: Decimal
    reserved: dict[str, Decimal] = field(default_factory=dict)
    qty: dict[str, Decimal] = field(default_factory=dict)
    ledgers: dict[str, Ledger] = field(default_factory=dict)


def run_op(p: Portfolio, m: Model, o: Op) -> None:
    if isinstance(o, Reserve):
        amount = D(o.amount)
        ok = p.reserve(o.intent, amount)
        assert ok is (o.intent in m.reserved or amount <= m.cash)
        if ok and o.intent not in m.reserved:
            m.cash -= amount
            m.reserved[o.intent] = amount
    elif isinstance(o, Buy):
        if o.intent not in m.reserved:
            return
        price, rate = D(o.cents) / 100, D(o.fee_rate)
        left = m.reserved[o.intent]
        amount = (left * o.share / 100 / (price * (1 + rate))).quantize(Q, rounding=ROUND_FLOOR)
        if amount <= 0:
            return
        base = o.symbol.split("/")[0]
        if o.fee_in_base:
            fee, spend, got = amount * rate, price * amount, amount - amount * rate
            t = fill("buy", price, amount, fee, base, symbol=o.symbol)
        else:
            fee = price * amount * rate
            spend, got = price * amount + fee, amount
            t = fill("buy", price, amount, fee, "USDT", symbol=o.symbol)
        assert spend <= left  # stays inside what the API allows
        p.apply_buy_fill(o.intent, "d", t, base=base)
        m.reserved[o.intent] = left - spend
        m.qty[o.symbol] = m.qty.get(o.symbol, D(0)) + got
        m.ledgers.setdefault(o.symbol, Ledger()).buys.append(t)
    elif isinstance(o, Release):
        assert p.release(o.intent) == m.reserved.get(o.intent, D(0))
        m.cash += m.reserved.pop(o.intent, D(0))
    elif isinstance(o, Lock):
        pos = p.positions.get(o.symbol)
        want = pct(pos.sellable, o.share) if pos is not None else D(1)
        if pos is not None and o.share > 100:
            want = pos.sellable + Q
        expect = pos is not None and 0 < want <= pos.sellable
        assert p.lock_for_sell(o.symbol, want) is expect
    elif isinstance(o, Unlock):
        pos = p.positions.get(o.symbol)
        if pos is not None:
            p.unlock_sell(o.symbol, pct(pos.sell_locked, o.share))
    elif isinstance(o, Sell):
        pos = p.positions.get(o.symbol)
        amount = pct(pos.sell_locked, o.share) if pos is not None else D(0)
        if amount <= 0:
            return
        price = D(o.cents) / 100
        t = fill("sell", price, amount, price * amount * D(o.fee_rate), symbol=o.symbol)
        p.apply_sell_fill(t, base=o.symbol.split("/")[0])
        m.cash += t.cost - t.fee
        m.qty[o.symbol] -= amount
        m.ledgers[o.symbol].sells.append(t)
    elif isinstance(o, Close):
        pos = p.positions.get(o.symbol)
        if pos is None or pos.sell_locked > 0:
            return
        trade = p.close_position(o.symbol, 1, "x")
        ledger = m.ledgers.pop(o.symbol)
        assert close_enough(trade.realized_pnl, ledger.pnl())
        assert trade.dust_qty == m.qty.pop(o.symbol)


@settings(max_examples=150, deadline=None)
@given(sequence=st.lists(ops, min_size=20, max_size=60))
def test_random_operations_keep_books_non_negative(sequence: list[Op]) -> None:
    p = Portfolio("USDT", D(1000))
    m = Model(cash=D(1000))
    for o in sequence:
        run_op(p, m, o)
        p.check()
        assert p.cash == m.cash and p.cash >= 0
        assert p.reserved == m.reserved
        assert all(v >= 0 for v in p.reserved.values())
        assert set(p.positions) == set(m.qty)
        for sym, pos in p.positions.items():
            assert pos.qty == m.qty[sym]
            assert pos.qty >= 0 and 0 <= pos.sell_locked <= pos.qty


@pytest.mark.parametrize("fee_currency", ["USDT", "BTC", "BNB"])
def test_buy_spend_is_what_a_buy_fill_takes_from_cash_and_reservation(fee_currency: str) -> None:
    """Reconcile asks ``buy_spend`` before it books a found fill; it must be exactly what
    ``apply_buy_fill`` then takes, whatever asset the fee was charged in."""
    pf = Portfolio(quote="USDT", cash=D("1000"))
    assert pf.reserve("i1", D("50"))
    t = fill(
        "buy", "30000", "0.002", "0.00000123" if fee_currency != "USDT" else "0.06", fee_currency
    )
    before = pf.cash + pf.reserved_total
    spend = pf.buy_spend(t, "BTC")
    pf.apply_buy_fill("i1", "d1", t, "BTC")
    assert before - (pf.cash + pf.reserved_total) == spend
    assert spend == D("60") + (D("0.06") if fee_currency == "USDT" else 0)
