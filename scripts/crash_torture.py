"""Crash torture: run a durable paper session in a subprocess, SIGKILL it at random moments
(and at the two narrow windows: after an intent's commit before the exchange call, and after
the exchange's answer before our commit), restart it, repeat; then check the bot's database
against the simulated exchange's own records.

    python scripts/crash_torture.py --kills 20 --seed 1

Last line: ``kills=N duplicates=D orphans=O drift=X``; exit status 0 only if D, O, X are 0.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from fsmtrader.clock import SimClock
from fsmtrader.config import load_settings
from fsmtrader.orders.states import TERMINAL
from fsmtrader.session import open_sim_exchange, session_filters
from fsmtrader.store.sqlite import SqliteStore

# An impatient strategy on a thin book: many entries, partial fills, multi-leg exits.
TORTURE_TOML = """
seed = {seed}
[market]
symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"]
[risk]
position_size = "25"
max_open_positions = 3
max_total_exposure = "75"
[entry]
drop_trigger_pct = 0.4
anchor_window_min = 10
entry_block_cooldown_s = 60
buy_escalation_bps = [0, 10, 20]
[exit]
take_profit_pct = 0.3
stop_loss_pct = 0.4
trailing_activation_pct = 0
max_hold_min = 15
cooldown_s = 60
[router]
time_in_force = "{tif}"
[sim]
depth_quote = "15"
"""
POINTS = ("after_intent_commit", "after_exchange_answer")
ZERO = Decimal(0)


def run_once(
    state: Path,
    config: Path,
    *,
    kill_after: float | None,
    crash_at: str | None,
    hours: float,
    speed: float,
    run_for: float | None = None,
) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMTRADER_")}
    if crash_at:
        env["FSMTRADER_CRASH_AT"] = crash_at
    cmd = [
        sys.executable,
        "-m",
        "fsmtrader",
        "paper",
        "--state-dir",
        str(state),
        "--config",
        str(config),
        "--hours",
        str(hours),
        "--speed",
        str(speed),
        "--quiet",
    ]
    if run_for is not None:
        cmd += ["--for", str(run_for)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=kill_after if kill_after is not None else 120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    return proc.returncode, err


def check(state: Path, settings_path: Path) -> tuple[int, int, Decimal, list[str]]:
    """Compare the bot's books with the exchange's own records."""
    s = load_settings(settings_path, env={})
    notes: list[str] = []
    store = SqliteStore(state / "fsmtrader.db", create=False)
    snap = store.load()
    fills = store.fills()
    store.close()
    filters = session_filters(s)
    ex = open_sim_exchange(s, state, filters, SimClock(0))
    orders = ex.orders_by_client_id()
    trades = [t for sym in filters for t in ex.fetch_my_trades(sym)]
    balances = ex.fetch_balance()
    ex.close()

    recs = {r.client_order_id: r for r in snap.orders}
    # duplicates: an intent with two exchange orders is impossible by clientOrderId; what a
    # lost state would do is send another leg for the same decision. Count decisions whose
    # buy orders exceed the escalation steps, or whose buys exceed the position budget.
    dup = 0
    legs: dict[str, set[int]] = defaultdict(set)
    spent: dict[str, Decimal] = defaultdict(Decimal)
    for coid, o in orders.items():
        rec = recs.get(coid)
        if rec is not None and o.side == "buy":
            legs[rec.intent.decision_id].add(rec.intent.leg)
            spent[rec.intent.decision_id] += o.cost
    for did, used in legs.items():
        if len(used) > len(s.entry.buy_escalation_bps):
            dup += 1
            notes.append(f"duplicate: {did} has {len(used)} buy legs")
    limit = s.risk.position_size * Decimal("1.01") + Decimal(10)
    for did, cost in spent.items():
        if cost > limit:
            dup += 1
            notes.append(f"duplicate: {did} bought {cost} > {limit}")
    # orphans: exchange orders the bot does not know, or open ones it thinks are over
    orphans = 0
    for coid, o in orders.items():
        rec = recs.get(coid)
        if rec is None:
            orphans += 1
            notes.append(f"orphan: exchange order {o.id} {coid} unknown to the bot")
        elif o.status == "open" and rec.state in TERMINAL:
            orphans += 1
            notes.append(f"orphan: {coid} open on the exchange, {rec.state} in the bot")
    # drift
    drift = ZERO
    pf = snap.portfolio
    assert pf is not None
    open_buys = {
        r.intent.intent_id: r
        for r in snap.orders
        if r.intent.side == "buy" and r.state not in TERMINAL
    }
    if set(pf.reserved) != set(open_buys):
        drift += 1
        notes.append(f"drift: reservations {sorted(pf.reserved)} != open buys {sorted(open_buys)}")
    for iid, amount in pf.reserved.items():
        r = open_buys.get(iid)
        if r is not None:
            expect = r.reserved - r.cost - r.fee_quote
            if amount != expect:
                drift += abs(amount - expect)
                notes.append(f"drift: reservation {iid} {amount} != {expect}")
    by_order = {o.id: o for o in orders.values()}
    base_delta: dict[str, Decimal] = defaultdict(Decimal)
    for t in trades:
        base_delta[t.symbol] += t.amount if t.side == "buy" else -t.amount
    for sym in filters:
        pos = pf.positions.get(sym)
        ours = (pos.qty if pos else ZERO) + pf.dust.get(sym, ZERO)
        if ours != base_delta[sym]:
            drift += abs(ours - base_delta[sym])
            notes.append(f"drift: {sym} position {ours} != exchange fills {base_delta[sym]}")
    booked = {(f["intent_id"], f["trade_id"]) for f in fills}
    coid_to_intent = {r.client_order_id: r.intent.intent_id for r in snap.orders}
    for t in trades:
        o = by_order[t.order_id]
        key = (coid_to_intent.get(o.client_order_id, "?"), t.id)
        if key not in booked:
            drift += 1
            notes.append(f"drift: exchange fill {t.id} of {o.client_order_id} not booked")
    quote = balances.get(s.market.quote)
    theirs = quote.total if quote else ZERO
    if theirs != pf.cash + pf.reserved_total:
        drift += abs(theirs - pf.cash - pf.reserved_total)
        notes.append(
            f"drift: quote balance {theirs} != cash+reserved {pf.cash + pf.reserved_total}"
        )
    # realised PnL recomputed from the exchange's fills of each closed trade
    decision_of = {r.client_order_id: r.intent.decision_id for r in snap.orders}
    per: dict[str, list[tuple[str, Decimal, Decimal, Decimal]]] = defaultdict(list)
    for t in trades:
        did = decision_of.get(by_order[t.order_id].client_order_id)
        if did is not None:
            per[did].append((t.side, t.price, t.amount, t.fee))
    pnl = ZERO
    for tr in pf.trades:
        legs_ = per[tr.decision_id]
        bought = sum((a for sd, _, a, _ in legs_ if sd == "buy"), ZERO)
        sold = sum((a for sd, _, a, _ in legs_ if sd == "sell"), ZERO)
        basis = sum((p * a + f for sd, p, a, f in legs_ if sd == "buy"), ZERO)
        proceeds = sum((p * a - f for sd, p, a, f in legs_ if sd == "sell"), ZERO)
        pnl += proceeds - (basis * sold / bought if bought else ZERO)
    if abs(pnl - pf.realized_pnl) > Decimal("1e-8"):
        drift += abs(pnl - pf.realized_pnl)
        notes.append(f"drift: realised PnL {pf.realized_pnl} != recomputed {pnl}")
    return dup, orphans, drift, notes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--speed", type=float, default=1800.0, help="simulated s per wall s")
    ap.add_argument("--hours", type=float, default=48.0, help="simulated session length")
    ap.add_argument("--state-dir", type=Path, default=None, help="keep the state here")
    ap.add_argument("--tif", choices=["IOC", "GTC"], default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = None
    if args.state_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fsm-torture-")
        base = Path(tmp.name)
    else:
        base = args.state_dir
        base.mkdir(parents=True, exist_ok=True)
    state, config = base / "state", base / "torture.toml"
    tif = args.tif or ("GTC" if args.seed % 2 else "IOC")
    config.write_text(TORTURE_TOML.format(seed=args.seed, tif=tif))
    kills, by_point = 0, 0
    started = time.monotonic()
    for i in range(args.kills):
        crash_at = None
        if rng.random() < 0.5:
            crash_at = f"{rng.choice(POINTS)}:{rng.randint(1, 4)}"
        delay = rng.uniform(0.4, 2.0)
        rc, err = run_once(
            state,
            config,
            kill_after=delay + (2.0 if crash_at else 0.0),
            crash_at=crash_at,
            hours=args.hours,
            speed=args.speed,
        )
        if rc == -signal.SIGKILL:
            kills += 1
            by_point += crash_at is not None and "after" in (crash_at or "")
        elif rc != 0:
            print(f"run {i}: exited {rc}: {err.strip()[-500:]}", file=sys.stderr)
            return 2
        print(
            f"run {i + 1}/{args.kills}: rc={rc} crash_at={crash_at or '-'} delay={delay:.2f}s",
            file=sys.stderr,
        )
    rc, err = run_once(
        state,
        config,
        kill_after=None,
        crash_at=None,
        hours=args.hours,
        speed=args.speed,
        run_for=1.0,
    )
    if rc != 0:
        print(f"final run exited {rc}: {err.strip()[-800:]}", file=sys.stderr)
        return 2
    dup, orphans, drift, notes = check(state, config)
    for n in notes[:50]:
        print(n, file=sys.stderr)
    print(f"elapsed {time.monotonic() - started:.1f}s, tif={tif}", file=sys.stderr)
    print(f"kills={kills} duplicates={dup} orphans={orphans} drift={drift}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if (dup == 0 and orphans == 0 and drift == 0) else 1


if __name__ == "__main__":
    sys.exit(main())
