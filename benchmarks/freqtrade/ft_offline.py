"""freqtrade with no network: ccxt's Binance markets come from the shared fixture
(../shared/data/ccxt_binance_spot_markets.json, precision turned into tick sizes as its
SOURCES.md says; SOL/USDT, which it lacks, copies LTC/USDT's filters). Runs in
freqtrade's own venv: ``python ft_offline.py backtesting ...``."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import ccxt
import ccxt.async_support
import ccxt.pro
from freqtrade.main import main

FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "data" / "ccxt_binance_spot_markets.json"


def fixture_markets() -> dict[str, Any]:
    raw = json.loads(FIXTURE.read_text())["markets"]
    markets = raw if isinstance(raw, dict) else {m["symbol"]: m for m in raw}
    if "SOL/USDT" not in markets:
        sol = copy.deepcopy(markets["LTC/USDT"])
        sol.update(symbol="SOL/USDT", id="SOLUSDT", base="SOL", baseId="SOL")
        markets["SOL/USDT"] = sol
    for m in markets.values():
        for key, value in (("linear", None), ("inverse", None), ("contract", False)):
            m.setdefault(key, value)
        m.update(spot=True, active=True, type="spot")
        m["precision"] = {
            k: 10.0**-v if float(v).is_integer() else v
            for k, v in m.get("precision", {}).items()
            if v is not None
        }
    return markets


MARKETS = fixture_markets()


def load_markets(self: Any, reload: bool = False, params: Any = None) -> Any:
    self.set_markets(copy.deepcopy(MARKETS))
    return self.markets


async def aload_markets(self: Any, reload: bool = False, params: Any = None) -> Any:
    return load_markets(self)


if __name__ == "__main__":
    ccxt.binance.load_markets = load_markets
    ccxt.async_support.binance.load_markets = aload_markets
    ccxt.pro.binance.load_markets = aload_markets
    sys.exit(main(sys.argv[1:]))
