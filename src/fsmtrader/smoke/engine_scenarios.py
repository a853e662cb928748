"""Scenarios A-C: the real engine on the real simulated exchange (the venue profile of the
user's ``sim.venue``), in this process on a simulated clock, with the user's entry, exit,
router and timeout settings on the scenario's own market, sizes and prices."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fsmtrader.config import Settings
from fsmtrader.smoke.bench import SECOND, Bench, Doc, engine_log, market
from fsmtrader.smoke.derive import scenario_settings
from fsmtrader.smoke.judge import blocked_reasons, judge_bump, judge_ladder, judge_partials
from fsmtrader.smoke.report import ScenarioResult, verdict

#: BLESS/USDT as the venue lists it: a tiny tick, whole units, 5 USDT minimum.
BLESS = market("BLESS/USDT", "0.000001", "1", "1", "5")
BTC = market("BTC/USDT", "0.01", "0.00001", "0.00001", "10")
BLESS_PRICE, BTC_PRICE = 0.0125, 50_000.0
ESCALATION = (0, 10, 25)  # bps above the ask: B's and C's entry walks the thin book
THIN_BOOK = "12"  # quote per level: a 40-60 USDT order takes several levels
AFTER_ENTRY = frozenset({"POSITION", "IDLE", "COOLDOWN", "ERROR"})
EXCERPT = 40  # audit records kept per scenario


def settle_ms(s: Settings) -> int:
    """Long enough for every buy step of the user's escalation to time out."""
    t = s.timeouts
    steps = len(s.entry.buy_escalation_bps) + 1
    return int((t.buy_fill_timeout_s + t.partial_fill_stuck_s) * steps * SECOND) + 60 * SECOND


def enter(b: Bench, price: float) -> None:
    """Warm the signal at ``price``, drop far enough for an entry, let the buy settle."""
    b.warm(price)
    b.bar(b.drop_price(price))
    b.settle(until=AFTER_ENTRY, limit_ms=settle_ms(b.s))


def excerpt(b: Bench, keep: Callable[[Doc], bool]) -> list[dict[str, Any]]:
    """The records that prove the verdict: the entry's (or exit's) decision, in order."""
    return [dict(r) for r in b.all() if keep(r)][:EXCERPT]


def of_decision(b: Bench, kinds: frozenset[str]) -> Callable[[Doc], bool]:
    dids = {r.get("decision_id") for r in b.records("order")}
    refused = {"GUARDS_BLOCKED", "BUY_ABORTED", "SELL_BLOCKED"}
    return lambda r: (
        (r["kind"] in kinds and r.get("decision_id") in dids)
        or (r["kind"] == "phase" and r.get("event") in refused)
    )


def logged(fn: Callable[[Settings], ScenarioResult]) -> Callable[[Settings], ScenarioResult]:
    """``fn`` with the engine's warnings counted in its figures (the first few kept)."""

    def run(user: Settings) -> ScenarioResult:
        lines: list[str] = []
        with engine_log(lines):
            result = fn(user)
        result.figures["engine_warnings"] = len(lines)
        if lines:
            result.figures["engine_log"] = lines[:10]
        return result

    return run


@logged
def run_a(user: Settings) -> ScenarioResult:
    """A: a 4 USDT entry on a 5 USDT-minimum market, within the user's budget."""
    own = {"market": {"symbols": [BLESS.symbol]}, "risk": {"position_size": "4"}}
    s = scenario_settings(user, own)
    b = Bench(s, BLESS, depth_quote="100000")
    enter(b, BLESS_PRICE)
    b.past_lag()
    buys = b.records("order", side="buy")
    new = next((r for r in buys if r["state"] == "NEW"), None)
    reserved = None
    if new is not None:
        iid = new["intent_id"]
        held = (r for r in buys if r["state"] == "RESERVED" and r["intent_id"] == iid)
        reserved = next(held, None)
    placed = [o for o in b.exchange.orders_by_client_id().values() if o.side == "buy"]
    pos = b.engine.portfolio.positions.get(BLESS.symbol)
    fig: dict[str, Any] = {"position_size": s.risk.position_size, "market": BLESS.symbol}
    budget = min(s.market.starting_balance, s.risk.max_total_exposure)  # before the entry
    refusals = blocked_reasons(b.all())
    failures = judge_bump(b.filters, new, reserved, placed, pos, refusals, budget, fig)
    kinds = frozenset({"order", "fill", "position"})
    return verdict("A", failures, fig, excerpt(b, of_decision(b, kinds)))


def thin(user: Settings, position: str) -> Settings:
    """BTC/USDT on a thin book, the scenario's own size and account, and its own entry:
    IOC steps that escalate through the book (a GTC buy, or a single step, buys at one
    price, and C needs a position larger than the bids after the jump)."""
    return scenario_settings(
        user,
        {
            "market": {"symbols": [BTC.symbol], "starting_balance": "1000"},
            "router": {"time_in_force": "IOC"},
            "entry": {"buy_escalation_bps": list(ESCALATION), "max_entry_slippage_bps": 50},
            "risk": {
                "position_size": position,
                "max_open_positions": 1,
                "max_total_exposure": "200",
            },
        },
    )


@logged
def run_b(user: Settings) -> ScenarioResult:
    """B: a 40 USDT entry into a book of ~12 USDT levels fills in parts."""
    b = Bench(thin(user, "40"), BTC, depth_quote=THIN_BOOK)
    enter(b, BTC_PRICE)
    b.past_lag()
    fills = [t for t in b.exchange.fetch_my_trades(BTC.symbol) if t.side == "buy"]
    orders = [o for o in b.exchange.orders_by_client_id().values() if o.side == "buy"]
    pos = b.engine.portfolio.positions.get(BTC.symbol)
    fig: dict[str, Any] = {"position_size": b.s.risk.position_size, "depth_quote": THIN_BOOK}
    fig["buy_escalation_bps"] = list(b.s.entry.buy_escalation_bps)
    fig["buy_intents"] = len({r["intent_id"] for r in b.records("order", side="buy")})
    failures = judge_partials(b.filters, fills, orders, pos, blocked_reasons(b.all()), fig)
    kinds = frozenset({"order", "fill", "position"})
    return verdict("B", failures, fig, excerpt(b, of_decision(b, kinds)))


@logged
def run_c(user: Settings) -> ScenarioResult:
    """C: the price jumps well past the take-profit, where the bids hold a fraction of the
    position: every attempt walks the user's ladder to its end, then must wait."""
    b = Bench(thin(user, "60"), BTC, depth_quote=THIN_BOOK)
    enter(b, BTC_PRICE)
    fig: dict[str, Any] = {"position_size": b.s.risk.position_size, "depth_quote": THIN_BOOK}
    pos = b.engine.portfolio.positions.get(BTC.symbol)
    if pos is None:
        why = "; ".join(blocked_reasons(b.all())) or "the entry filled nothing"
        return verdict("C", [f"no position to exit: {why}"], fig, excerpt(b, lambda r: False))
    pump = float(pos.avg_entry) * max(3.0, 1 + 2 * b.s.exit.take_profit_pct / 100)
    for _ in range(120):
        b.bar(pump)
        if BTC.symbol not in b.engine.portfolio.positions:
            break
    b.past_lag()
    ex = b.exchange
    sells = [o for o in ex.orders_by_client_id().values() if o.side == "sell"]
    intents = {str(r["client_order_id"]): r for r in b.records("order", side="sell", state="NEW")}
    trades = ex.fetch_my_trades(BTC.symbol)
    blocked = [str(r.get("reason", "")) for r in b.records("phase", event="SELL_BLOCKED")]
    exhausted = [r for r in blocked if "ladder exhausted" in r]
    fig.update(pump_price=pump, ladder_exhausted=len(exhausted), sells_blocked=blocked)
    x = b.s.exit
    failures = judge_ladder(
        b.filters,
        [Decimal(str(bps)) for bps in x.exit_ladder_bps],
        x.never_market_sells,
        len(exhausted),
        sells,
        intents,
        b.engine.portfolio.trades[0] if b.engine.portfolio.trades else None,
        [t for t in trades if t.side == "buy"],
        [t for t in trades if t.side == "sell"],
        fig,
    )
    kinds = frozenset({"order", "fill", "trade"})
    keep = of_decision(b, kinds)
    return verdict("C", failures, fig, excerpt(b, lambda r: keep(r) and r.get("side") != "buy"))
