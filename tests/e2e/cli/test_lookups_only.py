"""``reconcile`` and ``recover`` on a live directory look and send nothing: an order
create or cancel that recovery would make is held back and named, unless ``--send``
allows it. ``recover`` first resolves and reconciles as a start does.

The venue is the local Binance server; what reaches it is read from its own counters.
The live directory holds a resting buy whose cancel was asked for but never reached the
venue (the server failed the cancel), which is what a restart's recovery sends again."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.config import load_settings
from fsmtrader.live import LiveSession
from fsmtrader.orders.intent import Intent
from fsmtrader.orders.states import OrderState
from fsmtrader_testing.paper import run_fsmtrader as cli

from simserver_support import KEY, SECRET, Sim, running_server

pytestmark = pytest.mark.timeout(180)
ENV = {"FSMTRADER_EXCHANGE__API_KEY": KEY, "FSMTRADER_EXCHANGE__API_SECRET": SECRET}


def sent(sim: Sim) -> dict[str, Any]:
    """What reached the venue that changes it: creates (accepted or not) and cancels."""
    c = sim.state()["counters"]
    return {"created": c["created"], "rejected": c["rejected"], "canceled": c["canceled"]}


def live_dir_with_a_cancel_to_resend(sim: Sim, tmp: Path) -> tuple[Path, Path, str]:
    """A live state directory whose books hold a resting GTC buy with a cancel requested
    that the venue never received; returns (config, state, the order's clientOrderId)."""
    cfg = tmp / "c.toml"
    cfg.write_text(
        '[market]\nsymbols = ["BTC/USDT"]\n[router]\ntime_in_force = "GTC"\n'
        f'[exchange]\nbase_url = "{sim.base_url}"\npoll_s = 0.1\n'
    )
    state = tmp / "live"
    price = Decimal("90000")
    sim.price("BTC/USDT", price, hold=True)
    session = LiveSession(load_settings(cfg, env=ENV), state, paper=False)
    try:
        assert session.start().ok
        now = session.clock.now_ms()
        intent = Intent.create(
            decision_id=f"BTCUSDT-{now}-entry",
            symbol="BTC/USDT",
            side="buy",
            amount=Decimal("0.0002"),
            limit_price=price * Decimal("0.9"),  # rests: far below the market
            ref_price=price * Decimal("0.9"),
            max_slippage_bps=Decimal(50),
            time_in_force="GTC",
            leg=0,
            created_ms=now,
        )
        router = session.engine.router
        rec = router.submit(intent)
        assert rec.state is OrderState.SENT, rec
        sim.fault("DELETE /api/v3/order", "unavailable", times=20)
        rec = router.cancel(intent.intent_id)
        assert rec.state is OrderState.SENT and rec.cancel_requested
    finally:
        session.close()
    sim._request("DELETE", "/__sim/fault")
    assert sim.order(rec.client_order_id)["status"] in ("open", "new", "NEW")
    return cfg, state, rec.client_order_id


def run(cfg: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--config", str(cfg), "--state-dir", str(state), cwd=state.parent, env=ENV)


def test_reconcile_and_recover_send_nothing_to_a_live_venue_unless_asked(tmp_path: Path) -> None:
    with running_server("binance") as sim:
        cfg, state, coid = live_dir_with_a_cancel_to_resend(sim, tmp_path)
        before = sent(sim)

        rec = run(cfg, state, "reconcile", "--json")
        assert rec.returncode == 0, rec.stdout + rec.stderr
        assert sent(sim) == before  # not a create, not a cancel
        assert json.loads(rec.stdout)["ok"]
        assert "held back" in rec.stderr and "cancel BTC/USDT" in rec.stderr

        recover = run(cfg, state, "recover", "--clear-halt")
        assert recover.returncode == 0, recover.stdout + recover.stderr
        # it resolved and reconciled like a start, before it looked at the halt
        assert "reconcile ok" in recover.stdout and "not halted" in recover.stdout
        assert "held back" in recover.stderr and "cancel BTC/USDT" in recover.stderr
        assert sent(sim) == before
        assert sim.order(coid)["status"] in ("open", "new", "NEW")

        allowed = run(cfg, state, "reconcile", "--send")
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        assert "held back" not in allowed.stderr
        after = sent(sim)
        assert after == {**before, "canceled": before["canceled"] + 1}
        assert sim.order(coid)["status"].lower() in ("canceled", "cancelled")
