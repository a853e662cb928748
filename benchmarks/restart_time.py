"""Restart to trading: a paper session with 1,000 symbols and 100 open intents (resting
GTC buys) is closed, then started again; we time everything from opening the state to the
engine being ready for the next bar (restore, resolve every open intent on the exchange,
reconcile, write the report, fire due timers).

    .venv/bin/python benchmarks/restart_time.py [--symbols 1000] [--open 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fsmtrader.config import load_settings
from fsmtrader.fsm.phases import Event, Phase
from fsmtrader.orders.intent import make_decision_id
from fsmtrader.session import PaperSession


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--open", type=int, default=100)
    args = ap.parse_args()
    symbols = [f"X{i:04d}/USDT" for i in range(args.symbols)]
    s = load_settings(
        None,
        env={},
        overrides={
            "market": {"symbols": symbols, "starting_balance": "1000000"},
            "risk": {
                "position_size": "25",
                "max_open_positions": min(args.open, 100),
                "max_total_exposure": "1000000",
            },
            "router": {"time_in_force": "GTC"},
            "entry": {"buy_escalation_bps": [0]},
            "timeouts": {"buy_fill_timeout_s": 3600},
            "sim": {"depth_quote": "0.000001"},  # an empty book: the buys rest
        },
    )
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        t0 = time.perf_counter()
        first = PaperSession(s, state, hours=1, speed=1.0)
        first.start()
        setup = time.perf_counter() - t0
        engine = first.engine
        for hist in first.history[: args.open]:
            sym = hist.symbol
            first.exchange.update_market(
                sym, hist.ts[-1], hist.close[-1], hist.high[-1], hist.low[-1], hist.volume[-1]
            )
            st = engine.states[sym]
            engine.fire(st, Event.WARMUP_DONE)
            st.decision_id = make_decision_id(sym, hist.ts[-1], "entry")
            engine.fire(st, Event.SIGNAL, "benchmark")
        waiting = sum(1 for st in engine.states.values() if st.phase is Phase.WAIT_FILL)
        live = len(engine.router.open_records())
        first.close()

        t0 = time.perf_counter()
        again = PaperSession(s, state, hours=1, speed=1.0)
        t_open = time.perf_counter() - t0
        report = again.start()
        ready = time.perf_counter() - t0
        restored_live = len(again.engine.router.open_records())
        again.close()
    print(f"symbols              {args.symbols:,}")
    print(
        f"open intents         {live} (symbols in WAIT_FILL: {waiting}); after restart "
        f"{restored_live}, {report.recovered_intents} resolved on the exchange"
    )
    print(f"first start          {setup:.2f} s (new state, includes generating the market)")
    print(f"restart: open+restore {t_open:.2f} s")
    print(
        f"restart to trading   {ready:.2f} s (restore + resolve + reconcile + timers); "
        f"reconcile {'ok' if report.ok else 'MISMATCH'}"
    )


if __name__ == "__main__":
    main()
