"""``fsmtrader control ...`` end to end: a real ``fsmtrader paper`` bot in a subprocess
with its API on (any free port, token in its environment), steered by real ``fsmtrader
control`` subprocesses that find it through STATE_DIR/api.json: the bot's words and exit
codes (0 done, 1 refused, 2 nothing to talk to / token / bad input), ``--json``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from fsmtrader_testing.api_session import TOKEN_ENV, api_config, new_token, start_bot
from fsmtrader_testing.paper import run_fsmtrader

pytestmark = pytest.mark.timeout(150)


def control(
    cwd: Path, state: Path, config: Path, *args: str, token: str | None
) -> subprocess.CompletedProcess[str]:
    env = {TOKEN_ENV: token} if token is not None else {}
    argv = ["control", *args, "--state-dir", str(state), "--config", str(config)]
    return run_fsmtrader(*argv, cwd=cwd, env=env, timeout=60)


def one_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The single line a command printed (stdout when it worked, stderr otherwise)."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    text = proc.stdout if code == 0 else proc.stderr
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_control_commands_steer_a_running_bot(tmp_path: Path) -> None:
    state, token = tmp_path / "state", new_token()
    config = api_config(tmp_path / "bot.toml", seed=11)
    bot = start_bot(state, config, run_for_s=60, speed=3600, token=token)
    try:

        def ctl(*args: str, tok: str | None = token) -> subprocess.CompletedProcess[str]:
            return control(tmp_path, state, config, *args, token=tok)

        assert "entries stopped by api" in one_line(ctl("stopentry"), 0)
        assert "already stopped" in one_line(ctl("stopentry"), 1)
        assert "new entries allowed" in one_line(ctl("resume"), 0)
        assert "not traded by this bot" in one_line(ctl("forceexit", "XRP/USDT"), 2)
        assert "not in ERROR" in one_line(ctl("recover", "BTC/USDT"), 1)
        rec = ctl("reconcile", "--json")
        assert rec.returncode == 0, rec.stderr
        body = json.loads(rec.stdout)
        assert body["ok"] is True and isinstance(body["data"]["reconcile"], dict)
        forced = ""
        for _ in range(15):  # until some symbol holds a position
            r = ctl("forceexit", "all")
            if r.returncode == 0:
                forced = one_line(r, 0)
                break
            assert "nothing to force-exit" in one_line(r, 1)
            time.sleep(0.2)
        assert forced.startswith("force-exit started for ")
        assert "token refused" in one_line(ctl("stopentry", tok="not-the-" + token), 2)
        assert "no API token" in one_line(ctl("stopentry", tok=None), 2)
        assert bot.proc.poll() is None  # the bot ran through all of it
    finally:
        out, err = bot.stop()
    assert token not in out + err
    assert not (state / "api.json").exists()  # the bot took it away on its way out
    gone = one_line(control(tmp_path, state, config, "resume", token=token), 2)
    assert "no api.json" in gone and "[api] enabled = true" in gone
    audit = [json.loads(ln) for ln in (state / "audit.jsonl").read_text().splitlines()]
    asked = [r for r in audit if r["kind"] == "control"]
    assert {r["who"] for r in asked} == {"api/cli"} and len(asked) >= 6


def test_a_stale_api_file_or_a_silent_port_is_no_bot(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = api_config(tmp_path / "bot.toml", seed=11)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (state / "api.json").write_text(json.dumps({"host": "127.0.0.1", "port": 9, "pid": dead.pid}))
    line = one_line(control(tmp_path, state, config, "stopentry", token=new_token()), 2)
    assert f"(pid {dead.pid}) is not running" in line
    (state / "api.json").write_text(
        json.dumps({"host": "127.0.0.1", "port": 9, "pid": os.getpid()})
    )
    line = one_line(control(tmp_path, state, config, "stopentry", token=new_token()), 2)
    assert "no bot answers at http://127.0.0.1:9" in line
