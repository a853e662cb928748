"""The control plane's HTTP API against a real uvicorn on 127.0.0.1 serving a real paper
session (its SQLite store, its simulated exchange), wired by the bot's own ControlPlane:
every endpoint's JSON shape, the bearer token on every route (401s counted in /metrics),
the OpenAPI schema, the controls with their refusals, the lag report, and the server's
own rules (a port in use is one line; stopping is bounded)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fsmtrader.control import routes_control
from fsmtrader.control.server import ApiServer
from fsmtrader.errors import ConfigError
from fsmtrader_testing.api_session import LiveApi, serve_session

pytestmark = pytest.mark.timeout(120)

READS = [
    "health",
    "status",
    "orders",
    "trades",
    "balance",
    "profit",
    "daily",
    "ghosts",
    "reconcile",
    "alerts",
    "audit",
    "settings",
]
CONTROLS = ("stopentry", "resume", "forceexit", "recover", "reconcile")
ROW_KEYS = {
    "symbol", "phase", "time_in_phase_ms", "decision_id", "position", "entry_price",
    "last_price", "unrealized_pnl", "open_order", "error_count", "last_error",
}  # fmt: skip
SPEED = 3600.0  # an hour of market per wall second: trades within a second


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def wait_for(c: httpx.Client, path: str, ok: Any, limit_s: float = 20) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        body = c.get(path).json()
        if ok(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{path}: condition not met within {limit_s} s")


def check_reads(api: LiveApi, bodies: list[str]) -> None:
    with api.client() as c:
        wait_for(c, "/api/v1/profit", lambda b: b["trades"] >= 1)
        got = {}
        for name in READS:
            r = c.get(f"/api/v1/{name}")
            assert r.status_code == 200, (name, r.text)
            assert r.headers["content-type"].startswith("application/json"), name
            got[name] = r.json()
            bodies.append(r.text)
        assert got["health"]["ok"] is True and got["health"]["last_id"] > 0
        st = got["status"]
        assert {row["symbol"] for row in st["symbols"]} == set(api.session.s.market.symbols)
        assert all(set(row) >= ROW_KEYS for row in st["symbols"])
        assert st["marks_from"] == "live" and {"halted", "entries_stopped", "totals"} <= set(st)
        assert isinstance(got["orders"], list)
        trade = got["trades"][0]
        assert {"symbol", "exit_ms", "realized_pnl"} <= set(trade)
        assert isinstance(trade["realized_pnl"], str)  # money as a decimal string
        assert {"cash", "reserved", "reservations", "positions", "exposure"} <= set(got["balance"])
        assert got["profit"]["trades"] == len(c.get("/api/v1/trades?limit=10000").json())
        assert got["daily"] and {"day", "trades", "realized_pnl"} <= set(got["daily"][-1])
        assert {"count", "by_reason", "signals", "ghost_rate", "recent"} <= set(got["ghosts"])
        assert got["reconcile"]["report"] is not None  # the start reconciled
        assert {"halted", "entries_stopped", "records"} <= set(got["alerts"])
        assert [r["audit_id"] for r in got["audit"]][:3] == [1, 2, 3]
        assert got["settings"]["api"]["token"] == "***"
        assert got["settings"]["market"]["symbols"] == api.session.s.market.symbols
        # filters and limits
        sym = trade["symbol"]
        only = c.get("/api/v1/trades", params={"symbol": sym, "limit": 5}).json()
        assert only and len(only) <= 5 and {t["symbol"] for t in only} == {sym}
        late = c.get("/api/v1/trades", params={"since": trade["exit_ms"] + 1}).json()
        assert all(t["exit_ms"] > trade["exit_ms"] for t in late)
        tail = c.get("/api/v1/audit", params={"after": 2, "limit": 2}).json()
        assert [r["audit_id"] for r in tail] == [3, 4]
        bad = c.get("/api/v1/trades", params={"limit": 0})
        assert bad.status_code == 422 and "limit" in bad.json()["message"]
        assert c.get("/api/v1/nothing").status_code == 404
        metrics = c.get("/metrics")
        assert metrics.status_code == 200 and "fsmtrader_" in metrics.text
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-store"
        asset = c.get("/static/dashboard.html")
        assert asset.status_code == 200 and asset.text == page.text


def check_auth(api: LiveApi, bodies: list[str]) -> None:
    paths = [f"/api/v1/{n}" for n in READS] + ["/metrics", "/openapi.json", "/api/v1/stream"]
    with api.client(token="") as none, api.client(token="wrong-" + api.token) as wrong:
        for path in paths:
            for c in (none, wrong):
                r = c.get(path)
                assert r.status_code == 401, (path, r.status_code)
                assert r.headers["www-authenticate"].startswith("Bearer")
                assert r.json()["ok"] is False
                bodies.append(r.text)
        for action in CONTROLS:
            assert none.post(f"/api/v1/{action}", json={"symbol": "BTC/USDT"}).status_code == 401
        assert wrong.post("/api/v1/lag", json={"samples_ms": [1.0]}).status_code == 401
        assert none.get("/static/dashboard.html").status_code == 401
        # the page: a form without the token, the page with it once in the address
        form = none.get("/")
        assert form.status_code == 401 and 'name="token"' in form.text
        bodies.append(form.text)
        page = none.get("/", params={"token": api.token})
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert none.get("/", params={"token": "nope"}).status_code == 401
        # ?token= opens the page only, nothing else
        assert none.get("/api/v1/status", params={"token": api.token}).status_code == 401
    with api.client() as c:
        text = c.get("/metrics").text
    failures = {
        dict(labels)["path"]: v
        for (name, labels), v in samples(text).items()
        if name == "fsmtrader_api_auth_failures_total"
    }
    assert failures["/api/v1/status"] == 3  # none, wrong, ?token= on an API path
    assert failures["/api/v1/forceexit"] == 1 and failures["/"] == 2
    assert failures["other"] >= 2  # /openapi.json: not an API path label


def test_every_endpoint_answers_json_behind_the_token(tmp_path: Path) -> None:
    bodies: list[str] = []

    def script(api: LiveApi) -> None:
        check_reads(api, bodies)
        check_auth(api, bodies)

    with serve_session(tmp_path / "state", speed=SPEED) as api:
        api.run(script, limit_s=40)
        token = api.token
    assert bodies and not [b for b in bodies if token in b]  # never echoed


def test_openapi_documents_every_endpoint(tmp_path: Path) -> None:
    def script(api: LiveApi) -> None:
        with api.client() as c:
            schema = c.get("/openapi.json").json()
        paths = schema["paths"]
        for name in (*READS, "stream"):
            assert "get" in paths[f"/api/v1/{name}"], name
            assert paths[f"/api/v1/{name}"]["get"]["summary"], name
        for name in (*CONTROLS, "lag"):
            assert "post" in paths[f"/api/v1/{name}"], name
        assert "get" in paths["/"] and "get" in paths["/metrics"]
        body = paths["/api/v1/forceexit"]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["$ref"].endswith("/SymbolBody")
        assert {"200", "400", "409", "503"} <= set(paths["/api/v1/stopentry"]["post"]["responses"])
        assert "symbol" in schema["components"]["schemas"]["SymbolBody"]["properties"]

    with serve_session(tmp_path / "state", speed=60) as api:
        api.run(script, limit_s=20)


def force_exit_a_position(c: httpx.Client) -> dict[str, Any]:
    """Ask until some symbol is in POSITION (a forced exit of an idle symbol is refused)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st = c.get("/api/v1/status").json()
        held = [r["symbol"] for r in st["symbols"] if r["phase"] == "POSITION"]
        for sym in held:
            r = c.post("/api/v1/forceexit", json={"symbol": sym})
            if r.status_code == 200:
                return {"symbol": sym, **r.json()}
            assert r.status_code == 409, r.text  # it moved on meanwhile
        time.sleep(0.01)
    raise AssertionError("no symbol held a position to force-exit")


def test_controls_answer_with_the_bots_status_and_words(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(api: LiveApi) -> None:
        with api.client() as c:
            stop = c.post("/api/v1/stopentry", json={})
            again = c.post("/api/v1/stopentry")
            assert stop.status_code == 200 and stop.json()["ok"] is True, stop.text
            assert "stopped by api" in stop.json()["message"]
            assert again.status_code == 409 and "already stopped" in again.json()["message"]
            assert c.get("/api/v1/status").json()["entries_stopped"]
            # entries are stopped: an idle symbol stays without a position meanwhile
            resting = ("IDLE", "COOLDOWN")
            st = wait_for(
                c, "/api/v1/status", lambda b: [r for r in b["symbols"] if r["phase"] in resting]
            )
            idle = next(r["symbol"] for r in st["symbols"] if r["phase"] in resting)
            refused = c.post("/api/v1/forceexit", json={"symbol": idle})
            assert refused.status_code == 409 and idle in refused.json()["message"]
            unknown = c.post("/api/v1/forceexit", json={"symbol": "XRP/USDT"})
            assert unknown.status_code == 400 and "XRP/USDT" in unknown.json()["message"]
            missing = c.post("/api/v1/forceexit", json={})
            assert missing.status_code == 422 and missing.json()["message"].startswith(
                "body.symbol"
            )
            extra = c.post("/api/v1/recover", json={"symbol": "BTC/USDT", "x": 1})
            assert extra.status_code == 422 and "x" in extra.json()["message"]
            recover = c.post("/api/v1/recover", json={"symbol": "BTC/USDT"})
            assert recover.status_code == 409 and "not in ERROR" in recover.json()["message"]
            resume = c.post("/api/v1/resume")
            assert resume.status_code == 200 and "new entries allowed" in resume.json()["message"]
            assert c.post("/api/v1/resume").status_code == 409
            seen["forced"] = force_exit_a_position(c)
            rec = c.post("/api/v1/reconcile")
            assert rec.status_code == 200 and rec.json()["ok"] is True
            seen["report"] = rec.json()["data"]["reconcile"]
            time.sleep(1.0)  # the forced exit goes down the ladder
            named = {"X-Fsmtrader-Client": "cli"}
            assert (
                c.post("/api/v1/recover", json={"symbol": "BTC/USDT"}, headers=named).status_code
                == 409
            )
            made_up = {"X-Fsmtrader-Client": "<script>"}
            assert (
                c.post("/api/v1/recover", json={"symbol": "BTC/USDT"}, headers=made_up).status_code
                == 409
            )
            seen["alerts"] = c.get("/api/v1/alerts").json()

    with serve_session(tmp_path / "state", speed=SPEED) as api:
        api.run(script, limit_s=45)
        state = api.session.state_dir
    forced = seen["forced"]
    assert forced["ok"] and forced["symbol"] in forced["data"]["symbols"]
    assert isinstance(seen["report"], dict) and seen["report"]
    controls = [r for r in seen["alerts"]["records"] if r["kind"] == "control"]
    # a client may name itself from a short list; anything else is plain "api"
    assert [r["who"] for r in controls if r["who"] != "api"] == ["api/cli"]
    assert {r["action"] for r in controls} == set(CONTROLS)
    audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    asked = [r["who"] for r in audit if r["kind"] == "control"]
    assert asked[-2:] == ["api/cli", "api"]
    exits = [
        r
        for r in audit
        if r["kind"] == "phase" and r["symbol"] == forced["symbol"] and r["reason"] == "force_exit"
    ]
    assert exits and exits[0]["event"] == "EXIT_SIGNAL"


def test_lag_reports_are_validated_and_observed(tmp_path: Path) -> None:
    def script(api: LiveApi) -> None:
        with api.client() as c:
            ok = c.post("/api/v1/lag", json={"samples_ms": [3.5, 12.0, 0.0, -0.2]})
            assert ok.status_code == 200 and ok.json() == {"ok": True, "observed": 4}
            for bad in ([float("nan")], [-5000.0], ["x"], [1.0] * 10_001):
                r = c.post(
                    "/api/v1/lag",
                    content=json.dumps({"samples_ms": bad}),
                    headers={"content-type": "application/json"},
                )
                assert r.status_code == 422, (bad[:1], r.text)
                assert r.json()["message"].startswith("body.samples_ms")
            text = c.get("/metrics").text
        got = samples(text)
        assert got[("fsmtrader_push_lag_seconds_count", ())] == 4

    with serve_session(tmp_path / "state", speed=60) as api:
        api.run(script, limit_s=20)


def test_a_port_in_use_is_one_line_and_stop_is_bounded(tmp_path: Path) -> None:
    with serve_session(tmp_path / "state", speed=60) as api:
        port = api.plane.server.port
        other = ApiServer(api.plane.server.app, "127.0.0.1", port)
        with pytest.raises(ConfigError) as info:
            other.start()
        assert str(info.value) == f"api.port: 127.0.0.1:{port} is in use"
        # A push client that never reads must not hold the stop up.
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(
            f"GET /api/v1/stream?after=0 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {api.token}\r\n\r\n".encode()
        )
        deadline = time.monotonic() + 5
        while not api.hub.clients and time.monotonic() < deadline:
            time.sleep(0.01)
        assert api.hub.clients
        started = time.monotonic()
        api.plane.server.stop(timeout_s=2.0)
        assert time.monotonic() - started < 3.0  # stop(timeout_s=2) returns by then, hung or not
        assert not api.plane.server.running and not api.hub.clients
        stalled.settimeout(3)
        try:
            while stalled.recv(65536):
                pass  # what was sent before the stop, then the end of the stream
        except ConnectionResetError:
            pass
        stalled.close()


def test_a_control_the_bot_does_not_take_in_time_is_503_and_never_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_control, "CONTROL_TIMEOUT_S", 0.3)
    with serve_session(tmp_path / "state", speed=60) as api:
        with api.client() as c:  # the session's loop is not running: nobody takes it
            late = c.post("/api/v1/stopentry")
            assert late.status_code == 503, late.text
            assert late.json() == {
                "ok": False,
                "message": "stopentry: the bot did not answer within 0.3 s",
                "data": {},
            }

        def script(api: LiveApi) -> None:
            time.sleep(0.3)  # the loop serves its desk: the given-up control is not run
            with api.client() as c:
                assert c.get("/api/v1/status").json()["entries_stopped"] == ""
                assert c.post("/api/v1/stopentry").status_code == 200

        api.run(script, limit_s=10)
        api.session.desk.close()  # the bot on its way out: controls are refused
        with api.client() as c:
            closing = c.post("/api/v1/resume")
        assert closing.status_code == 503 and "stopping" in closing.json()["message"]
