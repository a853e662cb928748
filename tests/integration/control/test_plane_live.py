"""The control plane on the live path: a `trade --live` session trading real orders
through ccxt against the local Binance server, watched and steered over HTTP like a
person would: the status shows the position the venue filled, a force-exit goes down the
exit ladder as a limit sell on the venue, and the metrics time the ccxt calls."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fsmtrader.config import load_settings
from fsmtrader.control.plane import ControlPlane
from fsmtrader.live import LiveSession

from simserver_support import KEY, SECRET, running_server

pytestmark = pytest.mark.timeout(180)
TOKEN = "live-plane-token-0123456789"
SYM = "BTC/USDT"


class Client:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        text = raw.decode()
        return status, (json.loads(text) if text.startswith(("{", "[")) else text)

    def row(self) -> dict[str, Any]:
        _, status = self.call("/api/v1/status")
        rows: list[dict[str, Any]] = status["symbols"]
        return next(r for r in rows if r["symbol"] == SYM)

    def wait(self, what: str, cond: Any, limit_s: float = 30) -> Any:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            got = cond()
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")


def test_a_live_position_is_seen_and_force_exited_over_http(tmp_path: Path) -> None:
    with running_server("binance") as sim:
        start = Decimal("90000")
        sim.price(SYM, start, hold=True)
        env = {
            "FSMTRADER_EXCHANGE__API_KEY": KEY,
            "FSMTRADER_EXCHANGE__API_SECRET": SECRET,
            "FSMTRADER_API__TOKEN": TOKEN,
        }
        s = load_settings(
            None,
            env=env,
            overrides={
                "market": {"symbols": [SYM]},
                "entry": {"drop_trigger_pct": 1.0, "anchor_window_min": 1},
                "exit": {"take_profit_pct": 8, "stop_loss_pct": 8, "max_hold_min": 600},
                "exchange": {"name": "binance", "base_url": sim.base_url, "poll_s": 0.1},
                "api": {"enabled": True, "port": 0},
            },
        )
        session = LiveSession(s, tmp_path / "state", paper=False)
        plane = ControlPlane(session)
        seen: dict[str, Any] = {}
        failure: list[BaseException] = []
        done = threading.Event()

        def steer() -> None:
            try:
                c = Client(plane.url)
                c.wait(
                    "the start price seen",
                    lambda: c.row()["phase"] == "IDLE" and c.row()["last_price"] is not None,
                )
                time.sleep(0.5)
                sim.price(SYM, start * Decimal("0.98"), hold=True)  # a 2 % drop: a buy
                seen["held"] = c.wait(
                    "a position", lambda: c.row()["phase"] == "POSITION" and c.row()
                )
                seen["idle_refusal"] = c.call("/api/v1/recover", {"symbol": SYM})
                seen["forced"] = c.call("/api/v1/forceexit", {"symbol": SYM})
                seen["trade"] = c.wait(
                    "the forced trade",
                    lambda: [
                        t
                        for t in c.call(f"/api/v1/trades?symbol={SYM}")[1]
                        if t["exit_reason"] == "force_exit"
                    ],
                )
                seen["metrics"] = c.call("/metrics")[1]
            except BaseException as exc:
                failure.append(exc)
            finally:
                done.set()

        try:
            plane.start()
            session.start()
            t = threading.Thread(target=steer, daemon=True)
            t.start()
            session.run(stop_after_s=60, should_stop=done.is_set)
            t.join(5)
        finally:
            plane.close()
            session.close()
        if failure:
            raise failure[0]

        held = seen["held"]
        assert Decimal(held["position"]) > 0 and Decimal(held["entry_price"]) > 0
        assert held["last_price"] is not None and held["unrealized_pnl"] is not None
        assert (
            seen["idle_refusal"][0] == 409 and "not in ERROR" in seen["idle_refusal"][1]["message"]
        )
        assert seen["forced"][0] == 200, seen["forced"]
        assert seen["trade"][0]["symbol"] == SYM
        sells = [o for o in sim.state()["orders"].values() if o["side"].lower() == "sell"]
        assert sells and all(o["type"].lower() == "limit" for o in sells)

        families = {f.name: f for f in text_string_to_metric_families(seen["metrics"])}
        calls = {
            (x.labels["method"], x.labels["outcome"])
            for x in families["fsmtrader_exchange_call_seconds"].samples
            if x.name.endswith("_count") and x.value > 0
        }
        assert {("fetch_ticker", "ok"), ("create_order", "ok")} <= calls
        controls = {
            (x.labels["action"], x.labels["result"]): x.value
            for x in families["fsmtrader_controls"].samples
        }
        assert controls == {("recover", "409"): 1.0, ("forceexit", "200"): 1.0}
