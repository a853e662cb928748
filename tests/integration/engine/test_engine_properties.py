"""Engine-level property tests: random markets, settings, price paths, exchange faults and
clock jumps, played bar by bar through the real Engine on the real SimExchange, with the
invariants of ../shared/DESIGN.md checked after every bar and the books reconciled
against the exchange's own fills at the end.

Scenarios are drawn through a tiny ``Draw`` interface so the very same generator runs
under Hypothesis (shrinkable, ``test_engine_invariants_hold``) and from a plain seeded
``random.Random`` (``test_generated_scenarios_really_trade``: a deterministic check that
the generator produces scenarios that place orders, fill and close trades; a property
test that never trades proves nothing).

Fault model (what an injected fault may claim):
- ``after=True`` is a lost *response*: the call took effect, the caller got an error.
  On ``create_order`` that is only honest for a NetworkError that says
  ``maybe_sent=True``; an exchange never creates an order and answers InsufficientFunds /
  InvalidOrder / 429 / "certainly not sent", so those combinations are not generated
  (they would "prove" a divergence that no venue can produce).
- Every other method (cancel, look-ups) may fail before or after taking effect with any
  error class.

Exposure tolerance: none beyond Decimal rounding (``EXPOSURE_EPS``). Reading
``engine.entry.guards`` and ``engine.risk.budget``: an entry needs ``exposure + position_size
<= max_total_exposure``, and every buy intent carries ``budget = min(cash, max - exposure)``
which the router's preflight divides by ``1 + fee_rate`` *before* bumping to min-notional
(a bump that would not fit is a ghost). So a reservation ``price*amount*(1+fee)`` never
exceeds the room left, and a fill only moves money from the reservation into the position
(at most what was reserved). A min-notional bump therefore needs no allowance.

Every setting is drawn over its allowed range, ``exit.never_market_sells = false``
included (it once hit a market-sell loop, kept fixed by the regression tests below).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from hypothesis import HealthCheck, event, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from fsmtrader.errors import (
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    RateLimited,
)
from fsmtrader.fsm.phases import Phase
from fsmtrader.markets import MarketFilters
from fsmtrader_testing.harness import BTC, MIN, Harness, mf, settings

ZERO = Decimal(0)
PNL_EPS = Decimal("1e-8")
EXPOSURE_EPS = Decimal("1e-18")  # Decimal context rounding of budget/(1+fee)*(1+fee)
WARM_BARS = 61
PHASES = frozenset(Phase)

# symbol -> (filters, typical price)
POOL: dict[str, tuple[MarketFilters, float]] = {
    "A/USDT": (mf("A/USDT", "0.0001", "0.01", "0.01", "5"), 10.0),
    "B/USDT": (mf("B/USDT", "0.0001", "0.01", "0.01", "5"), 12.5),
    "C/USDT": (mf("C/USDT", "0.0001", "0.01", "0.01", "5"), 8.0),
    "BTC/USDT": (BTC, 50_000.0),
}

FAULT_METHODS = (
    "create_order",
    "cancel_order",
    "fetch_order",
    "fetch_order_by_client_id",
    "fetch_my_trades",
    "fetch_ticker",
)
FAULT_KINDS = ("net", "net", "rate", "unavailable", "funds", "invalid")


# --- drawing ------------------------------------------------------------------------------
class Draw(Protocol):
    def int(self, lo: int, hi: int) -> int: ...
    def choice(self, seq: tuple[Any, ...] | list[Any]) -> Any: ...
    def bool(self) -> bool: ...


class HypDraw:
    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def choice(self, seq: tuple[Any, ...] | list[Any]) -> Any:
        return self.data.draw(st.sampled_from(seq))

    def bool(self) -> bool:
        return self.data.draw(st.booleans())


class RandDraw:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.r.randint(lo, hi)

    def choice(self, seq: tuple[Any, ...] | list[Any]) -> Any:
        return self.r.choice(list(seq))

    def bool(self) -> bool:
        return self.r.random() < 0.5


@dataclass(frozen=True)
class Fault:
    method: str
    kind: str
    after: bool
    maybe_sent: bool
    times: int

    def error(self) -> Exception:
        if self.kind == "net":
            return NetworkError("injected: connection reset", maybe_sent=self.maybe_sent)
        if self.kind == "rate":
            return RateLimited("injected: 429", retry_after_s=1.0 if self.maybe_sent else None)
        if self.kind == "unavailable":
            return ExchangeUnavailable("injected: 503", maybe_sent=self.maybe_sent)
        if self.kind == "funds":
            return InsufficientFunds("injected: insufficient balance")
        return InvalidOrder("injected: refused", reason="injected")


@dataclass
class Scenario:
    symbols: list[str]
    overrides: dict[str, Any]
    depth_quote: str
    spread_bps: str
    path_seed: int
    vol_bps: int
    drop_permille: int
    jump_permille: int
    bars: int
    events: dict[int, list[tuple[Any, ...]]] = field(default_factory=dict)


def draw_scenario(d: Draw, max_bars: int = 300) -> Scenario:
    n = d.int(1, 4)
    pool = list(POOL)
    symbols: list[str] = []
    for _ in range(n):
        sym = d.choice(pool)
        if sym not in symbols:
            symbols.append(sym)
    steps = sorted(d.int(0, 40) for _ in range(d.int(1, 4)))
    ladder = sorted(d.int(0, 300) for _ in range(d.int(1, 6)))
    sl = d.choice((0.5, 1.0, 2.0, 3.0, 5.0))
    trail = d.choice((0.0, 1.0, 2.0, 4.0))
    buy_timeout = d.choice((5, 20, 60, 180))
    position_size = d.choice(("20", "3", "5", "10", "40", "60"))
    backoff_base = d.choice((1.0, 10.0, 60.0))
    overrides: dict[str, Any] = {
        "seed": d.int(0, 1000),
        "market": {
            "symbols": symbols,
            "starting_balance": d.choice(("1000", "150", "40", "12")),
        },
        "risk": {
            "position_size": position_size,
            "max_open_positions": d.int(1, 3),
            "max_total_exposure": str(
                Decimal(position_size) * Decimal(d.choice(("2", "1", "1.5", "3", "5")))
            ),
        },
        "entry": {
            "drop_trigger_pct": d.choice((1.0, 2.0, 3.0, 5.0)),
            "anchor_window_min": d.choice((5, 15, 30, 60)),
            "max_spread_bps": 30,
            "entry_block_cooldown_s": d.choice((60, 120, 600)),
            "buy_escalation_bps": steps,
            "max_entry_slippage_bps": steps[-1] + d.choice((0, 20, 100)),
        },
        "exit": {
            "take_profit_pct": d.choice((0.5, 1.0, 2.0, 3.0, 5.0)),
            "stop_loss_pct": sl,
            "trailing_activation_pct": trail,
            "trailing_distance_pct": d.choice((0.3, 0.5)) if trail else 0.5,
            "max_hold_min": d.choice((5, 30, 120)),
            "exit_ladder_bps": ladder,
            "max_exit_slippage_bps": ladder[-1] + d.choice((0, 50, 500)),
            "never_market_sells": d.choice((True, True, False)),
            "flash_crash_guard_pct": d.choice(tuple(x for x in (3, 6, 10, 20, 50) if x > sl)),
            "cooldown_s": d.choice((0, 60, 900)),
        },
        "timeouts": {
            "buy_fill_timeout_s": buy_timeout,
            "partial_fill_stuck_s": d.choice(tuple(x for x in (1, 4, 10, 30) if x < buy_timeout)),
            "sell_fill_timeout_s": d.choice((5, 30, 120)),
            "exit_ioc_ttl_ms": d.choice((50, 500, 5000)),
        },
        "router": {
            "max_retries": d.int(0, 4),
            "backoff_ms": d.choice((10, 400, 5000)),
            "time_in_force": d.choice(("IOC", "GTC")),
            "slippage_guard_bps": d.choice((0, 20, 100)),
        },
        "errors": {
            "backoff_base_s": backoff_base,
            "backoff_max_s": backoff_base * d.choice((1, 10)),
            "max_consecutive_errors": d.choice((2, 5, 1000)),
        },
        "halts": {"on_order_race": d.bool()},
        "sim": {
            "maker_fee_bps": d.choice(("0", "2", "10", "25")),
            "taker_fee_bps": d.choice(("0", "7.5", "10", "40")),
            "depth_levels": d.int(1, 5),
            "level_step_bps": d.choice(("0", "5", "30")),
        },
    }
    bars = d.int(max_bars // 2, max_bars)
    sc = Scenario(
        symbols=symbols,
        overrides=overrides,
        depth_quote=d.choice(("60", "3", "8", "20", "400", "100000")),
        spread_bps=d.choice(("0", "2", "10")),
        path_seed=d.int(0, 2**32 - 1),
        vol_bps=d.choice((10, 40, 100)),
        drop_permille=d.choice((50, 100, 20)),
        jump_permille=d.choice((50, 100, 20)),
        bars=bars,
    )
    for _ in range(d.int(3, 30)):
        at = d.int(0, bars - 1)
        kind = d.choice(("fault", "fault", "fault", "race", "advance"))
        ev: tuple[Any, ...]
        if kind == "fault":
            method = d.choice(FAULT_METHODS)
            fk = d.choice(FAULT_KINDS)
            after, maybe_sent, times = d.bool(), d.bool(), d.int(1, 6)
            honest_lost_answer = fk in ("net", "unavailable") and maybe_sent
            if method == "create_order" and after and not honest_lost_answer:
                after = False  # see the fault model in the module docstring
            ev = ("fault", Fault(method, fk, after, maybe_sent, times))
        elif kind == "race":
            ev = ("race", d.int(0, 10))
        else:
            ev = ("advance", d.choice((100, 700, 5_000, 31_000, 125_000, 900_000)))
        sc.events.setdefault(at, []).append(ev)
    return sc


def price_paths(sc: Scenario) -> tuple[dict[str, float], dict[str, list[float]]]:
    """A random walk per symbol with sharp drops (past the trigger) and sharp jumps, pulled
    back toward its start so it keeps crossing entry and exit levels."""
    r = random.Random(sc.path_seed)
    trigger = float(sc.overrides["entry"]["drop_trigger_pct"])
    starts: dict[str, float] = {}
    paths: dict[str, list[float]] = {}
    vol = sc.vol_bps / 10_000
    for sym in sc.symbols:
        base = POOL[sym][1] * r.uniform(0.8, 1.2)
        digits = 2 if sym.startswith("BTC") else 5
        p = base
        out = []
        for _ in range(sc.bars):
            x = r.gauss(0.0, vol)
            u = r.random() * 1000
            if u < sc.drop_permille:
                x -= r.uniform(trigger + 0.3, trigger + 8.0) / 100
            elif u < sc.drop_permille + sc.jump_permille:
                x += r.uniform(0.5, 8.0) / 100
            x += 0.1 * math.log(base / p)
            p = max(p * math.exp(x), base * 0.2)
            out.append(round(p, digits))
        starts[sym] = round(base, digits)
        paths[sym] = out
    return starts, paths


# --- the invariant checker ----------------------------------------------------------------
class Checker:
    def __init__(self, h: Harness) -> None:
        self.h = h
        self.booked: dict[str, Decimal] = defaultdict(Decimal)  # intent_id -> booked qty
        self.trade_ids: set[str] = set()
        self.idle_held: Counter[str] = Counter()
        self.max_exposure = ZERO
        self.max_slots = 0
        h.engine.bus.subscribe(self.on_record)

    def on_record(self, r: dict[str, Any]) -> None:
        if r["kind"] == "fill":
            assert r["trade_id"] not in self.trade_ids, f"trade booked twice: {r}"
            self.trade_ids.add(r["trade_id"])
            self.booked[r["intent_id"]] += Decimal(r["amount"])

    def check(self, symbol: str | None = None) -> None:
        h = self.h
        eng, pf, router = h.engine, h.engine.portfolio, h.engine.router
        s = h.s
        # portfolio
        pf.check()
        assert pf.cash >= 0
        assert all(v >= 0 for v in pf.reserved.values()), pf.reserved
        open_buys = {
            iid: rec
            for iid, rec in router.records.items()
            if rec.intent.side == "buy" and not rec.done
        }
        assert set(pf.reserved) == set(open_buys), (
            f"reservations {sorted(pf.reserved)} != open buys {sorted(open_buys)}"
        )
        for iid, rec in open_buys.items():
            assert pf.reserved[iid] == rec.reserved - rec.cost - rec.fee_quote, (
                iid,
                pf.reserved[iid],
                rec,
            )
        # limits
        exposure = pf.exposure()
        self.max_exposure = max(self.max_exposure, exposure)
        assert exposure <= s.risk.max_total_exposure + EXPOSURE_EPS, (
            f"exposure {exposure} > {s.risk.max_total_exposure}"
        )
        busy = [sym for sym in eng.symbols if eng.held(sym) > 0 or router.open_intents(sym, "buy")]
        self.max_slots = max(self.max_slots, len(busy))
        assert len(busy) <= s.risk.max_open_positions, (busy, s.risk.max_open_positions)
        # one order per client id, every order ours
        ex_orders = h.exchange.orders_by_client_id()
        assert len(ex_orders) == h.exchange.counters.created
        cids = [rec.client_order_id for rec in router.records.values()]
        assert len(set(cids)) == len(cids), "two intents share a clientOrderId"
        assert set(ex_orders) <= set(cids), set(ex_orders) - set(cids)
        # phases
        for sym, st_ in eng.states.items():
            assert st_.phase in PHASES, (sym, st_.phase)
        if symbol is not None:
            held_idle = eng.states[symbol].phase is Phase.IDLE and eng.held(symbol) > 0
            self.idle_held[symbol] = self.idle_held[symbol] + 1 if held_idle else 0
            assert self.idle_held[symbol] <= 1, f"{symbol} IDLE with a position for 2 bars"
        # records
        for iid, rec in router.records.items():
            assert rec.filled <= rec.amount, rec
            assert rec.filled == self.booked.get(iid, ZERO), (rec, self.booked.get(iid))
            ex = ex_orders.get(rec.client_order_id)
            assert rec.filled <= (ex.filled if ex is not None else ZERO), rec


# --- running a scenario -------------------------------------------------------------------
@dataclass
class Outcome:
    orders: int = 0
    fills: int = 0
    trades: int = 0
    faults: int = 0
    races: int = 0
    ghosts: int = 0
    halted: bool = False
    max_slots: int = 0
    kinds: Counter[str] = field(default_factory=Counter)


def play_round(h: Harness, c: Checker, symbols: list[str], prices: dict[str, float]) -> None:
    ts = h.ts + MIN
    for sym in symbols:
        h.bar(sym, prices[sym], ts=ts)
        c.check(sym)


def run_scenario(sc: Scenario) -> Outcome:
    s = settings(**sc.overrides)
    markets = {sym: POOL[sym][0] for sym in sc.symbols}
    h = Harness(s, markets, depth_quote=sc.depth_quote, spread_bps=sc.spread_bps)
    c = Checker(h)
    out = Outcome()
    starts, paths = price_paths(sc)
    for _ in range(WARM_BARS):
        play_round(h, c, sc.symbols, starts)
    for i in range(sc.bars):
        for ev in sc.events.get(i, ()):
            if ev[0] == "fault":
                f: Fault = ev[1]
                h.faults.inject_fault(f.method, f.error(), after=f.after, times=f.times)
                out.faults += 1
                out.kinds[f"{f.method}:{f.kind}:{'after' if f.after else 'before'}"] += 1
            elif ev[0] == "race":
                live = [o for o in h.exchange.orders_by_client_id().values() if o.status == "open"]
                if live:
                    h.exchange.race_fill_on_cancel(live[ev[1] % len(live)].id)
                    out.races += 1
            else:
                h.advance(ev[1])
                c.check()
        play_round(h, c, sc.symbols, {sym: paths[sym][i] for sym in sc.symbols})

    # settle: no more faults, flat prices, time passing, until every intent is over
    h.faults.clear()  # drop faults nobody consumed
    last = {sym: paths[sym][-1] for sym in sc.symbols}
    for _ in range(120):
        h.advance(10 * MIN)
        c.check()
        play_round(h, c, sc.symbols, last)
        if not h.engine.router.open_records() and all(
            h.engine.states[sym].phase in (Phase.IDLE, Phase.POSITION) for sym in sc.symbols
        ):
            break
    final_checks(h, sc)
    ex_orders = h.exchange.orders_by_client_id()
    out.orders = len(ex_orders)
    out.fills = len(c.trade_ids)
    out.trades = len(h.engine.portfolio.trades)
    out.ghosts = len(h.engine.portfolio.ghosts)
    out.halted = bool(h.engine.halted)
    out.max_slots = c.max_slots
    return out


def final_checks(h: Harness, sc: Scenario) -> None:
    eng, pf, router = h.engine, h.engine.portfolio, h.engine.router
    assert not router.open_records(), (
        [(r.client_order_id, r.state, r.due_ms) for r in router.open_records()],
        [(sym, eng.states[sym].phase.value) for sym in sc.symbols],
    )
    by_cid = {rec.client_order_id: rec for rec in router.records.values()}
    buys: dict[str, list[Any]] = defaultdict(list)
    sells: dict[str, list[Any]] = defaultdict(list)
    balances = h.exchange.fetch_balance()
    for sym in sc.symbols:
        f = eng.filters[sym]
        fills = h.exchange.fetch_my_trades(sym)
        bought = sum((t.amount for t in fills if t.side == "buy"), ZERO)
        sold = sum((t.amount for t in fills if t.side == "sell"), ZERO)
        pos = pf.positions.get(sym)
        held = (pos.qty if pos is not None else ZERO) + pf.dust.get(sym, ZERO)
        assert held == bought - sold, (sym, held, bought, sold)
        wallet = balances.get(f.base)
        on_exchange = (wallet.free + wallet.used) if wallet is not None else ZERO
        assert on_exchange == held, (sym, on_exchange, held)
        for t in fills:
            assert t.fee_currency == f.quote  # the simulator charges fees in quote
            rec = by_cid[t.client_order_id]
            (buys if t.side == "buy" else sells)[rec.intent.decision_id].append(t)
    q = balances[s_quote(h)]
    assert q.free + q.used == pf.cash + pf.reserved_total, (q, pf.cash, pf.reserved_total)
    # realised PnL recomputed from the exchange's fills, per closed trade
    per_decision = Counter(t.decision_id for t in pf.trades)
    open_decisions = {p.decision_id for p in pf.positions.values()}
    for trade in pf.trades:
        did = trade.decision_id
        assert per_decision[did] == 1, f"decision {did} closed {per_decision[did]} trades"
        assert did not in open_decisions, f"decision {did} closed and still open"
        b, sl = buys[did], sells[did]
        bought = sum((t.amount for t in b), ZERO)
        cost = sum((t.price * t.amount + t.fee for t in b), ZERO)
        sold = sum((t.amount for t in sl), ZERO)
        net = sum((t.price * t.amount - t.fee for t in sl), ZERO)
        assert bought == trade.bought_qty and sold == trade.sold_qty, (trade, bought, sold)
        expected = net - cost * sold / bought
        assert abs(expected - trade.realized_pnl) <= PNL_EPS, (trade, expected)
    total = sum((t.realized_pnl for t in pf.trades), ZERO)
    assert abs(total - pf.realized_pnl) <= PNL_EPS


def s_quote(h: Harness) -> str:
    return h.s.market.quote


# --- the tests ----------------------------------------------------------------------------
@hsettings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_engine_invariants_hold(data: st.DataObject) -> None:
    sc = draw_scenario(HypDraw(data))
    note(f"scenario: {sc}")
    out = run_scenario(sc)
    event(f"orders placed: {'yes' if out.orders else 'no'}")
    event(f"fills: {'yes' if out.fills else 'no'}")
    event(f"closed trades: {'yes' if out.trades else 'no'}")
    if out.races:
        event("a fill raced a cancel")
    if out.halted:
        event("engine halted")


def test_generated_scenarios_really_trade() -> None:
    """The generator, fed from fixed seeds, must give scenarios that trade: orders, fills,
    closed round trips, partial slot use, faults that actually hit."""
    outcomes = [run_scenario(draw_scenario(RandDraw(seed), max_bars=200)) for seed in range(16)]
    n = len(outcomes)
    with_orders = sum(o.orders > 0 for o in outcomes)
    with_fills = sum(o.fills > 0 for o in outcomes)
    with_trades = sum(o.trades > 0 for o in outcomes)
    with_faults = sum(o.faults > 0 for o in outcomes)
    print(
        f"{n} scenarios: {with_orders} placed orders, {with_fills} filled, "
        f"{with_trades} closed trades ({sum(o.trades for o in outcomes)} in all), "
        f"{with_faults} with faults, {sum(o.races for o in outcomes)} races, "
        f"{sum(o.halted for o in outcomes)} halted"
    )
    assert with_orders >= n * 3 // 4
    assert with_fills >= n * 3 // 4
    assert with_trades >= n // 2
    assert with_faults >= n // 2


# --- bugs found by the property test, minimised -------------------------------------------
A_FILTERS = POOL["A/USDT"][0]


def thin_book_position(never_market_sells: bool) -> Harness:
    """A/USDT with one thin book level (~8 USDT a side): a GTC buy of 40 USDT fills over
    several bars, so the position is several times what one bar's bid can absorb."""
    s = settings(
        market={"symbols": ["A/USDT"]},
        risk={"position_size": "40", "max_total_exposure": "40"},
        entry={"buy_escalation_bps": [0]},
        router={"time_in_force": "GTC"},
        timeouts={"buy_fill_timeout_s": 600, "partial_fill_stuck_s": 300},
        exit={"exit_ladder_bps": [0], "never_market_sells": never_market_sells},
        sim={"depth_levels": 1},
    )
    h = Harness(s, {"A/USDT": A_FILTERS}, depth_quote="8")
    h.warm("A/USDT", 10.0)
    for _ in range(6):
        h.bar("A/USDT", 9.6)  # -4 %: the entry, then the resting buy fills bar by bar
    assert h.phase("A/USDT") == "POSITION"
    assert h.engine.portfolio.positions["A/USDT"].qty * Decimal("9.3") > 3 * A_FILTERS.min_notional
    return h


def test_thin_book_exit_with_never_market_sells_is_bounded() -> None:
    """The control for the bug below: the same exit with limit rungs only places one order
    per rung and goes back to POSITION (ladder exhausted) with the rest."""
    h = thin_book_position(never_market_sells=True)
    before = h.exchange.counters.created
    h.bar("A/USDT", 9.3)  # stop-loss
    assert h.exchange.counters.created - before == 1
    assert h.phase("A/USDT") == "POSITION"
    h.engine.portfolio.check()
    assert not h.engine.router.open_records() and not h.engine.portfolio.reserved


def test_market_sell_does_not_loop_when_the_book_is_empty() -> None:
    h = thin_book_position(never_market_sells=False)
    before = h.exchange.counters.created
    h.bar("A/USDT", 9.3)  # stop-loss: rung 0 takes the one bid level, the rest goes market
    placed = h.exchange.counters.created - before
    assert placed <= 2, f"{placed} sell orders in one bar (one rung + one market sell)"
    assert h.phase("A/USDT") != "ERROR"


def test_unexpected_error_does_not_strand_an_intent_in_reserved() -> None:
    s = settings(
        market={"symbols": ["A/USDT"]}, risk={"position_size": "20", "max_total_exposure": "40"}
    )
    h = Harness(s, {"A/USDT": A_FILTERS})
    h.warm("A/USDT", 10.0)
    h.faults.inject_fault("create_order", RuntimeError("adapter bug"))
    h.bar("A/USDT", 9.6)
    assert h.phase("A/USDT") == "ERROR"
    for _ in range(100):  # 1,000+ simulated minutes: every backoff and timeout has passed
        h.advance(10 * MIN)
        h.bar("A/USDT", 9.6)
    stranded = [(r.client_order_id, r.state.value) for r in h.engine.router.open_records()]
    assert not stranded or h.engine.stuck_symbols(), stranded
    assert not h.engine.portfolio.reserved
