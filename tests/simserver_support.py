"""A running local exchange server for tests: the real fsmtrader sim-server on
127.0.0.1:<free port>, in a thread with its own event loop, plus its admin endpoints."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fsmtrader.config import Settings, load_settings
from fsmtrader_testing.simserver import create_app
from fsmtrader_testing.simserver.threaded import admin, serving_in_thread

KEY = "fsmTestApiKey7Q2w9E4r6T8y0U1i3O5p"
SECRET = "fsmTestSecretZ9x8C7v6B5n4M3a2S1d0F"
ENV = {"FSMTRADER_EXCHANGE__API_KEY": KEY, "FSMTRADER_EXCHANGE__API_SECRET": SECRET}


@dataclass
class Sim:
    """A running simulated exchange and its loopback-only admin endpoints."""

    flavour: str
    base_url: str

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        return admin(self.base_url, method, path, body)

    def fault(self, endpoint: str, kind: str, **extra: Any) -> None:
        self._request("POST", "/__sim/fault", {"endpoint": endpoint, "kind": kind, **extra})

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/__sim/state")
        return result

    def price(self, symbol: str, price: Decimal, **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "POST",
            "/__sim/price",
            {
                "symbol": symbol,
                "price": str(price),
                **{k: str(v) if isinstance(v, Decimal) else v for k, v in extra.items()},
            },
        )
        return result

    def order(self, coid: str) -> dict[str, Any] | None:
        orders: dict[str, Any] = self.state()["orders"]
        return orders.get(coid)

    def order_count(self) -> int:
        return len(self.state()["orders"])

    def faults_pending(self) -> int:
        return int(self.state()["faults_pending"])


@contextmanager
def running_server(flavour: str, **kwargs: Any) -> Iterator[Sim]:
    """The server on 127.0.0.1:<free port>, in a thread with its own loop."""
    kwargs.setdefault("speed", 0)  # prices move only when a test says so
    app = create_app(flavour=flavour, api_key=KEY, api_secret=SECRET, **kwargs)  # type: ignore[arg-type]
    with serving_in_thread(app, f"sim-{flavour}") as base_url:
        yield Sim(flavour, base_url)


def live_settings(sim: Sim, **tables: Mapping[str, Any]) -> Settings:
    """A live session on ``sim`` through ccxt with the test keys: BTC/USDT, a quick
    strategy (a 1 % drop on a 1-minute anchor, +0.5 % take-profit, no trailing) and a
    fast poll. Each keyword names a table whose keys replace or add to these
    (``exit={"take_profit_pct": 2.0}``, ``protect={"enabled": True}``)."""
    merged: dict[str, dict[str, Any]] = {
        "market": {"symbols": ["BTC/USDT"]},
        "entry": {"drop_trigger_pct": 1.0, "anchor_window_min": 1},
        "exit": {
            "take_profit_pct": 0.5,
            "stop_loss_pct": 5.0,
            "trailing_activation_pct": 0,
            "max_hold_min": 60,
            "cooldown_s": 1,
        },
        "exchange": {
            "name": sim.flavour,
            "base_url": sim.base_url,
            "poll_s": 0.1,
            "timeout_ms": 3000,
        },
    }
    for name, keys in tables.items():
        merged.setdefault(name, {}).update(keys)
    return load_settings(None, env=ENV, overrides=merged)
