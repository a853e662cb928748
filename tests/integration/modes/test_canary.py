"""A canary in one process and one state directory: ``trade --live`` semantics against
the local Binance server (real ccxt, real HTTP, real signing) with one live symbol, one
observed and one on paper. The venue sees orders of the live symbol only; the paper
symbol fills on the simulator in the state directory, fed by the venue's tickers; the
observed one sends nothing and is audited. Every order carries its mode, the summary
and the API split by mode, a restart reconciles the mixed books both ways, and a mode
change starts once the symbol is flat."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.config import Settings
from fsmtrader.control.feed import RecordFeed
from fsmtrader.control.metrics import Metrics
from fsmtrader.control.reads import BookReader
from fsmtrader.errors import ConfigError
from fsmtrader.exchange.by_mode import CANARY_SIM_FILE, PAPER_ID, ByModeExchange
from fsmtrader.exchange.types import Exchange
from fsmtrader.live import LiveSession
from fsmtrader_testing.metrics_text import by, parse

from simserver_support import Sim, live_settings, running_server

pytestmark = pytest.mark.timeout(180)
LIVE, OBSERVED, PAPER = "BTC/USDT", "ETH/USDT", "DOGE/USDT"
SYMBOLS = (LIVE, OBSERVED, PAPER)


def canary_settings(sim: Sim, modes: dict[str, str]) -> Settings:
    return live_settings(sim, market={"symbols": list(SYMBOLS), "modes": modes})


MODES = {LIVE: "live", OBSERVED: "observe", PAPER: "paper"}


def steer(sim: Sim, start: dict[str, Decimal], stop: threading.Event) -> None:
    """A 2 % drop of every symbol (each buys or is observed), then +2 % (take-profit)."""
    for factor, wait in (("1", 0.5), ("0.98", 4.0), ("1.0", 4.0), ("1.02", 6.0)):
        if stop.is_set():
            return
        for sym in SYMBOLS:
            sim.price(sym, start[sym] * Decimal(factor), hold=True)
        stop.wait(wait)


def start_prices(sim: Sim) -> dict[str, Decimal]:
    prices = sim.state()["prices"]
    out = {sym: Decimal(str(prices[sym])) for sym in SYMBOLS}
    for sym, p in out.items():
        sim.price(sym, p, hold=True)
    return out


@pytest.fixture
def bsim() -> Iterator[Sim]:
    with running_server("binance", symbols=SYMBOLS) as sim:
        yield sim


def audit(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]


def test_a_canary_sends_only_the_live_symbol_to_the_venue(bsim: Sim, tmp_path: Path) -> None:
    state = tmp_path / "st"
    before = bsim.state()
    session = LiveSession(canary_settings(bsim, MODES), state, paper=False)
    stop = threading.Event()
    driver = threading.Thread(target=steer, args=(bsim, start_prices(bsim), stop), daemon=True)
    feed = RecordFeed(start_after=session.store.last_audit_id())
    session.store.on_committed.append(feed.on_committed)
    reader = BookReader(session.store.path, session.state_dir)
    metrics = Metrics(
        status=lambda: reader.status(0), balance=reader.balance, calls=None, retries=None
    )
    feed.listen(metrics.observe)
    try:
        assert isinstance(session.exchange, ByModeExchange)
        report = session.start()
        assert report.ok, report.to_dict()
        driver.start()
        summary = session.run(stop_after_s=16)
        records = list(session.engine.router.records.values())
        assert session.sim is not None
        paper_orders = session.sim.fetch_orders(PAPER, since=0)
        samples = parse(metrics.render()[0])
    finally:
        stop.set()
        reader.close()
        session.close()
        driver.join(5)

    after = bsim.state()
    ours = {c: o for c, o in after["orders"].items() if c not in before["orders"]}
    assert ours and {o["symbol"] for o in ours.values()} == {LIVE}  # the venue: live only
    assert {r.intent.symbol: r.intent.mode for r in records} == {LIVE: "live", PAPER: "paper"}
    assert paper_orders and all(
        r.order_id.startswith(PAPER_ID) for r in records if r.intent.symbol == PAPER
    )
    assert {r.client_order_id for r in records if r.intent.symbol == LIVE} == set(ours)

    trail = audit(state)
    for r in (x for x in trail if x["kind"] == "order"):
        assert r["mode"] == MODES[r["symbol"]]  # each order record carries its mode
    observed = [r for r in trail if r["kind"] == "observed"]
    assert observed and {r["symbol"] for r in observed} == {OBSERVED}
    by_mode = summary["by_mode"]
    assert by_mode["live"]["orders"] >= 2 and by_mode["paper"]["orders"] >= 2
    assert by_mode["live"]["trades"] >= 1 and by_mode["paper"]["trades"] >= 1, by_mode
    assert by_mode["observe"] == {**by_mode["observe"], "orders": 0, "trades": 0}
    assert by_mode["observe"]["observed"] == len(observed)

    # metrics: the order, fill and trade counters and the gauges split by mode
    sent = by(samples, "fsmtrader_order_moves_total", "to", "mode")
    assert sent[("SENT", "live")] >= 2 and sent[("SENT", "paper")] >= 2
    assert ("SENT", "observe") not in sent
    fills = by(samples, "fsmtrader_fills_total", "mode")
    assert set(fills) == {("live",), ("paper",)}
    trades = by(samples, "fsmtrader_trades_total", "mode")
    assert trades == {(m,): float(by_mode[m]["trades"]) for m in ("live", "paper")}
    pnl = by(samples, "fsmtrader_trade_pnl_quote_total", "sign", "mode")
    for m in ("live", "paper"):
        net = pnl.get(("gain", m), 0.0) - pnl.get(("loss", m), 0.0)
        assert net == pytest.approx(float(by_mode[m]["realized_pnl"]))
    assert samples["fsmtrader_observed_total"][()] == len(observed)
    assert by(samples, "fsmtrader_mode_symbols", "mode") == {
        ("live",): 1.0,
        ("observe",): 1.0,
        ("paper",): 1.0,
    }

    with BookReader(state / "fsmtrader.db", state) as reader:  # the API's view
        status = reader.status(0)
        profit = reader.profit()
        open_orders = reader.orders()
    assert {row["symbol"]: row["mode"] for row in status["symbols"]} == MODES
    assert all(o["mode"] == MODES[o["symbol"]] for o in open_orders)
    assert profit["by_mode"]["live"]["trades"] == by_mode["live"]["trades"]
    assert profit["by_mode"]["paper"]["realized_pnl"] == by_mode["paper"]["realized_pnl"]
    assert Decimal(profit["realized_pnl"]) == sum(
        Decimal(m["realized_pnl"]) for m in profit["by_mode"].values()
    )

    # a restart reconciles the mixed books both ways, and a flat symbol may change mode
    again = LiveSession(canary_settings(bsim, {**MODES, OBSERVED: "paper"}), state, paper=False)
    try:
        report = again.start()
        assert report.ok, report.to_dict()
        assert again.restored and again.engine.mode(OBSERVED) == "paper"
        assert len(again.engine.portfolio.trades) == summary["trades"]
    finally:
        again.close()

    # both ways on each route: an order of ours the books lack, on the simulator and on
    # the venue, is an orphan on restart, and what it bought a balance surplus
    third = LiveSession(canary_settings(bsim, MODES), state, paper=False)
    try:
        assert third.sim is not None and third.venue is not None
        paper_id = ioc_buy(third.sim, PAPER, "fsmorphanpaper01")
        live_id = ioc_buy(third.venue, LIVE, "fsmorphanlive001")
        report = third.start()
    finally:
        third.close()
    orphans = {o["symbol"]: o["order_id"] for o in report.orphaned_orders}
    assert orphans == {PAPER: PAPER_ID + paper_id, LIVE: live_id}, report.to_dict()
    surplus = {d["asset"] for d in report.balance_differences if Decimal(d["diff"]) > 0}
    assert {"DOGE", "BTC"} <= surplus, report.to_dict()


def ioc_buy(ex: Exchange, sym: str, coid: str) -> str:
    """A buy of about 20 USDT that fills at once, placed behind the bot's back."""
    ask = ex.fetch_ticker(sym).ask
    tick, step = (
        (Decimal("0.01"), Decimal("0.00001")) if sym == LIVE else (Decimal("0.00001"), Decimal(1))
    )
    price = (ask * Decimal("1.01")).quantize(tick)
    amount = (Decimal(20) / ask).quantize(step)
    order = ex.create_order(sym, "buy", "limit", amount, price, "IOC", coid)
    assert order.filled > 0, order
    return order.id


def test_a_live_symbol_holding_a_position_keeps_its_mode(bsim: Sim, tmp_path: Path) -> None:
    """Live to paper while the venue holds the position: refused, and nothing created."""
    state = tmp_path / "st"
    only_live = {LIVE: "live", OBSERVED: "observe", PAPER: "observe"}
    start = start_prices(bsim)
    session = LiveSession(canary_settings(bsim, only_live), state, paper=False)
    try:
        assert session.start().ok
        session.run(stop_after_s=1)  # the anchor sees the start price
        bsim.price(LIVE, start[LIVE] * Decimal("0.98"), hold=True)  # a drop: it buys
        session.run(should_stop=lambda: LIVE in session.engine.portfolio.positions, stop_after_s=20)
        pos = session.engine.portfolio.positions.get(LIVE)
    finally:
        session.close()
    assert pos is not None and pos.qty > 0
    with pytest.raises(ConfigError) as err:
        LiveSession(canary_settings(bsim, {**only_live, LIVE: "paper"}), state, paper=False)
    assert f"{LIVE} was live and is now paper, but it holds a position" in str(err.value)
    assert f"keep mode live for {LIVE}" in str(err.value)
    assert not (state / CANARY_SIM_FILE).exists()  # the refusal created nothing
