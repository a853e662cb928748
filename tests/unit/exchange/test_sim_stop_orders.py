"""Stop-limit sells on the simulated exchange (Binance STOP_LOSS_LIMIT): they rest with
their base locked, trigger when a bar's low reaches the stop, then sell as a limit; a
MEXC profile refuses them, and a reopened file keeps them."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from fsmtrader.clock import SimClock
from fsmtrader.errors import InvalidOrder
from fsmtrader.exchange.simulated import SimExchange, SimParams
from fsmtrader.exchange.simulated.rows import SCHEMA
from fsmtrader.exchange.simulated.venue import MEXC
from fsmtrader_testing.harness import mf

D = Decimal
BTC = "BTC/USDT"
BTC_M = mf(BTC, "0.01", "0.00001", "0.00001", "5")
START = {"USDT": D("100000"), "BTC": D("1")}


def make(params: SimParams | None = None) -> tuple[SimExchange, SimClock]:
    clock = SimClock(1_000)
    ex = SimExchange({BTC: BTC_M}, dict(START), clock=clock, params=params or SimParams())
    ex.update_market(BTC, 1_000, 50_000.0, 50_100.0, 49_900.0, 12.5)
    return ex, clock


def bar(ex: SimExchange, clock: SimClock, price: float, hi: float, lo: float) -> None:
    clock.advance(60_000)
    ex.update_market(BTC, clock.now_ms(), price, hi, lo, 1.0)


def test_a_stop_rests_untriggered_with_its_base_locked() -> None:
    ex, clock = make()
    o = ex.create_order(BTC, "sell", "limit", D("0.1"), D("47500.00"), "GTC", "s1", D("48000.00"))
    assert (o.status, o.filled, o.stop_price) == ("open", 0, D("48000.00"))
    btc = ex.fetch_balance()["BTC"]
    assert (btc.free, btc.used) == (D("0.9"), D("0.1"))
    bar(ex, clock, 49_000.0, 50_500.0, 48_100.0)  # above the stop, and above its limit
    assert ex.fetch_order(o.id, BTC).filled == 0  # untriggered: the limit does not work
    assert [x.id for x in ex.fetch_open_orders(BTC)] == [o.id]


def test_the_low_reaching_the_stop_triggers_it_and_it_sells_at_or_above_its_limit() -> None:
    ex, clock = make()
    o = ex.create_order(BTC, "sell", "limit", D("0.1"), D("47500.00"), "GTC", "s1", D("48000.00"))
    bar(ex, clock, 48_000.0, 49_000.0, 47_900.0)
    got = ex.fetch_order(o.id, BTC)
    assert got.status == "closed" and got.filled == D("0.1")
    assert all(t.price >= D("47500.00") for t in got.trades)
    btc = ex.fetch_balance()["BTC"]
    assert (btc.free, btc.used) == (D("0.9"), 0)


def test_a_triggered_stop_below_the_market_rests_as_a_limit_until_the_price_returns() -> None:
    ex, clock = make()
    o = ex.create_order(BTC, "sell", "limit", D("0.1"), D("47500.00"), "GTC", "s1", D("48000.00"))
    bar(ex, clock, 46_000.0, 46_500.0, 45_000.0)  # gapped through stop and limit
    assert ex.fetch_order(o.id, BTC).status == "open"
    assert ex.fetch_order(o.id, BTC).filled == 0
    bar(ex, clock, 47_600.0, 47_700.0, 46_900.0)  # back up through the limit
    got = ex.fetch_order(o.id, BTC)
    assert got.status == "closed" and got.average == D("47500.00")


def test_a_stop_can_be_cancelled_and_its_base_comes_back() -> None:
    ex, clock = make()
    o = ex.create_order(BTC, "sell", "limit", D("0.1"), D("47500.00"), "GTC", "s1", D("48000.00"))
    assert ex.cancel_order(o.id, BTC).status == "canceled"
    btc = ex.fetch_balance()["BTC"]
    assert (btc.free, btc.used) == (D("1"), 0)
    bar(ex, clock, 40_000.0, 40_000.0, 40_000.0)
    assert ex.fetch_order(o.id, BTC).filled == 0


@pytest.mark.parametrize(
    ("side", "tif", "stop", "reason"),
    [
        ("sell", "GTC", "50000.00", "would_trigger"),  # at the last price
        ("sell", "GTC", "48000.005", "tick"),
        ("sell", "IOC", "48000.00", "order_type"),
        ("buy", "GTC", "48000.00", "order_type"),
    ],
)
def test_a_stop_binance_would_refuse_is_refused(
    side: str, tif: str, stop: str, reason: str
) -> None:
    ex, _ = make()
    with pytest.raises(InvalidOrder) as info:
        ex.create_order(BTC, side, "limit", D("0.1"), D("47500.00"), tif, "s1", D(stop))  # type: ignore[arg-type]
    assert info.value.reason == reason
    assert ex.fetch_balance()["BTC"].used == 0


def test_mexc_has_no_spot_stop_orders() -> None:
    ex, _ = make(SimParams(venue=MEXC))
    with pytest.raises(InvalidOrder, match="stop orders are not supported") as info:
        ex.create_order(BTC, "sell", "limit", D("0.1"), D("47500.00"), "GTC", "s1", D("48000.00"))
    assert info.value.reason == "order_type"
    assert ex.counters.created == 0


def test_a_reopened_file_keeps_an_untriggered_stop_and_triggers_it_later(tmp_path: Path) -> None:
    path = tmp_path / "ex.sqlite"
    clock = SimClock(1_000)
    with SimExchange.open(path, {BTC: BTC_M}, START, clock=clock) as ex:
        ex.update_market(BTC, 1_000, 50_000.0, 50_100.0, 49_900.0, 1.0)
        o = ex.create_order(
            BTC, "sell", "limit", D("0.1"), D("47500.00"), "GTC", "s1", D("48000.00")
        )
    with SimExchange.open(path, {BTC: BTC_M}, START, clock=clock) as again:
        back = again.fetch_order(o.id, BTC)
        assert (back.status, back.stop_price) == ("open", D("48000.00"))
        bar(again, clock, 50_000.0, 50_100.0, 49_000.0)
        assert again.fetch_order(o.id, BTC).filled == 0  # still untriggered
        bar(again, clock, 48_000.0, 48_100.0, 47_950.0)
        assert again.fetch_order(o.id, BTC).status == "closed"
    with SimExchange.open(path, {BTC: BTC_M}, START, clock=clock) as third:
        assert third.fetch_order(o.id, BTC).filled == D("0.1")
        assert third.fetch_balance()["BTC"].total == D("0.9")


def _as_version_2(path: Path) -> None:
    """Turn a current file back into what version 2 wrote: no stop columns."""
    create = next(part for part in SCHEMA.split(";") if "CREATE TABLE orders" in part)
    lines = create.strip().splitlines()
    kept = [ln for ln in lines if not ln.strip().startswith(("stop_price", "triggered"))]
    kept[-2] = kept[-2].rstrip(",")  # fee_currency is version 2's last column
    cols = [ln.split()[0] for ln in kept[1:-1]]
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE orders RENAME TO orders_v3")
        conn.execute("\n".join(kept))
        conn.execute(f"INSERT INTO orders SELECT {', '.join(cols)} FROM orders_v3")
        conn.execute("DROP TABLE orders_v3")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()


def test_a_version_2_file_is_adopted_with_its_orders_and_takes_stops_after(
    tmp_path: Path,
) -> None:
    """A paper session's exchange file from before stop orders is migrated on open (its
    orders and balances kept), not refused: the session it belongs to carries on."""
    path = tmp_path / "ex.sqlite"
    clock = SimClock(1_000)
    with SimExchange.open(path, {BTC: BTC_M}, START, clock=clock) as ex:
        ex.update_market(BTC, 1_000, 50_000.0, 50_100.0, 49_900.0, 1.0)
        resting = ex.create_order(BTC, "buy", "limit", D("0.1"), D("40000.00"), "GTC", "b1")
        balances = ex.fetch_balance()
    _as_version_2(path)
    with SimExchange.open(path, {BTC: BTC_M}, START, clock=clock) as again:
        back = again.fetch_order(resting.id, BTC)
        assert (back.status, back.price, back.stop_price) == ("open", D("40000.00"), None)
        assert again.fetch_balance() == balances
        assert balances["USDT"].used >= D("4000")  # the resting buy's lock came through
        stop = again.create_order(
            BTC, "sell", "limit", D("0.1"), D("47500.00"), "GTC", "s1", D("48000.00")
        )
    conn = sqlite3.connect(path)
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert version == ("3",)
    with SimExchange.open(path, {BTC: BTC_M}, START, clock=clock) as third:
        assert third.fetch_order(stop.id, BTC).stop_price == D("48000.00")


def test_a_file_of_an_unknown_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ex.sqlite"
    clock = SimClock(1_000)
    with SimExchange.open(path, {BTC: BTC_M}, START, clock=clock) as ex:
        ex.update_market(BTC, 1_000, 50_000.0, 50_100.0, 49_900.0, 1.0)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ValueError, match="schema version '1', this code reads 3"):
        SimExchange.open(path, {BTC: BTC_M}, START, clock=clock)
    assert path.read_bytes() == before
