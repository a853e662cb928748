"""The API token is a secret like the venue's keys: a paper session with the control plane
on, asked with the right and a wrong token, controlled, and stopped, leaves the token in
no output, no file of its state directory (database, audit, reconcile report, api.json)
and no answer of the API."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from fsmtrader_testing.paper import clean_env, fsmtrader_argv, paper_args, session_toml

TOKEN = "sEcReT-api-token-9f8e7d6c5b4a"


def call(port: int, path: str, token: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_token_is_in_no_output_file_or_answer(tmp_path: Path) -> None:
    config, state = tmp_path / "c.toml", tmp_path / "state"
    config.write_text(session_toml(5, api={"enabled": True, "port": 0}))
    proc = subprocess.Popen(
        fsmtrader_argv(*paper_args(state, config, "--for", "30")),
        env=clean_env(FSMTRADER_API__TOKEN=TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while not (state / "api.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no api.json"
            time.sleep(0.05)
        port = json.loads((state / "api.json").read_text())["port"]
        for path in ("/api/v1/settings", "/api/v1/status", "/api/v1/audit?after=0", "/metrics"):
            status, body = call(port, path, TOKEN)
            assert status == 200, (path, body[:200])
            answers.append(body)
        status, body = call(port, "/api/v1/status", TOKEN + "x")
        assert status == 401
        answers.append(body)
        status, body = call(port, "/api/v1/stopentry", TOKEN, b"{}")
        assert status == 200, body
        answers.append(body)
        settings = json.loads(answers[0])
        assert settings["api"]["token"] == "***"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "entries stopped by api" in (state / "audit.jsonl").read_text()
    assert not (state / "api.json").exists()  # removed on a clean stop
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "fsmtrader.db" for p in files)
    for p in files:
        assert TOKEN.encode() not in p.read_bytes(), p
    for text in (out, err):
        assert TOKEN not in text
    for body in answers:
        assert TOKEN.encode() not in body
