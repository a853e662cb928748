"""``GET /metrics`` of a real ``fsmtrader paper`` bot, its control plane on: scraped over
HTTP while the bot trades, parsed with prometheus_client's parser, the counters are
exactly those of the first records of the bot's own ``audit.jsonl`` (metrics counts each
commit after the audit mirror has written it, in order, so a scrape sees a prefix)."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from fsmtrader_testing.metrics_text import Samples, by, parse
from fsmtrader_testing.paper import clean_env, fsmtrader_argv, paper_args, session_toml

pytestmark = pytest.mark.timeout(90)


def wait_for_api(state: Path, bot: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert bot.poll() is None, bot.communicate()
        try:
            info = json.loads((state / "api.json").read_text())
            return f"http://{info['host']}:{info['port']}"
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError("the bot never wrote api.json")


def test_metrics_over_http_agree_with_the_bots_audit_trail(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    cfg = tmp_path / "c.toml"
    cfg.write_text(session_toml(seed=7, api={"enabled": True, "port": 0}))
    state = tmp_path / "state"
    argv = fsmtrader_argv(*paper_args(state, cfg, "--for", "7", hours=12, speed=3000))
    env = clean_env(FSMTRADER_API__TOKEN=token)
    with subprocess.Popen(
        argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as bot:
        try:
            url = wait_for_api(state, bot)
            with httpx.Client(base_url=url, timeout=10) as http:
                assert http.get("/metrics").status_code == 401  # the token is needed here too
                auth = {"Authorization": f"Bearer {token}"}
                samples: Samples = {}
                for _ in range(100):  # until the bot has traded a little
                    reply = http.get("/metrics", headers=auth)
                    assert reply.status_code == 200
                    assert reply.headers["content-type"].startswith("text/plain")
                    samples = parse(reply.text)
                    if by(samples, "fsmtrader_records_total", "kind").get(("fill",), 0) >= 4:
                        break
                    time.sleep(0.1)
        finally:
            _out, err = bot.communicate(timeout=60)
    assert bot.returncode == 0, err
    audit: list[dict[str, Any]] = [
        json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()
    ]
    counted = int(sum(by(samples, "fsmtrader_records_total", "kind").values()))
    assert 0 < counted <= len(audit)
    seen = audit[:counted]
    assert by(samples, "fsmtrader_records_total", "kind") == {
        (k,): float(n) for k, n in Counter(r["kind"] for r in seen).items()
    }
    phases = Counter((r["from"], r["to"], r["event"]) for r in seen if r["kind"] == "phase")
    assert by(samples, "fsmtrader_transitions_total", "from", "to", "event") == {
        k: float(n) for k, n in phases.items()
    }
    fills = Counter(r["side"] for r in seen if r["kind"] == "fill")
    assert by(samples, "fsmtrader_fills_total", "side") == {
        (k,): float(n) for k, n in fills.items()
    }
    settled = Counter(
        r["from"] for r in seen if r["kind"] == "order" and r["state"] == "RECONCILED"
    )
    assert by(samples, "fsmtrader_orders_final_total", "state") == {
        (k,): float(n) for k, n in settled.items()
    }
    assert samples["fsmtrader_api_auth_failures_total"] == {(("path", "/metrics"),): 1.0}
    calls = by(samples, "fsmtrader_exchange_call_seconds_count", "method", "outcome")
    # the session's exchange is timed: every intent that filled was created at least once
    filled_intents = {r["intent_id"] for r in seen if r["kind"] == "fill"}
    assert filled_intents and calls[("create_order", "ok")] >= len(filled_intents)
    assert len(samples["fsmtrader_symbols"]) == 12 and samples["fsmtrader_halted"][()] == 0
