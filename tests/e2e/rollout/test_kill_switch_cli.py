"""The kill switch on a real ``fsmtrader paper`` subprocess, with no API: a ``STOP`` file in
the state directory stops new entries at once (one ``kill_switch`` audit record, the reason
in ``fsmtrader status``) and leaves held positions alone; ``flatten`` in it exits every
held position down the exit ladder (limit IOC sells, never a market order); removing it
lets entries resume. SIGUSR1 and SIGUSR2 write the same file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fsmtrader.rollout.kill_switch import REASON, STOP_FILE
from fsmtrader_testing.paper import (
    clean_env,
    fsmtrader_argv,
    paper_args,
    run_fsmtrader,
    session_toml,
)

pytestmark = pytest.mark.timeout(150)
Record = dict[str, Any]
# Positions that stay held (wide take-profit and stop-loss, a long hold), breakers off.
HOLD = {
    "take_profit_pct": 20.0,
    "stop_loss_pct": 20.0,
    "flash_crash_guard_pct": 30.0,
    "trailing_activation_pct": 0,
    "max_hold_min": 100_000,
    "cooldown_s": 60,
}
OFF = {"max_daily_loss": 0, "max_drawdown_pct": 0, "max_consecutive_losses": 0}


class Bot:
    """``fsmtrader paper`` in a subprocess, and its audit.jsonl read as it grows."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.state = tmp, tmp / "state"
        cfg = tmp / "c.toml"
        cfg.write_text(session_toml(7, exit=HOLD, breakers=OFF, sim={"depth_quote": "500"}))
        self.cfg = cfg
        self.proc = subprocess.Popen(
            fsmtrader_argv(*paper_args(self.state, cfg, hours=200, speed=1800)),
            cwd=tmp,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def records(self) -> list[Record]:
        path = self.state / "audit.jsonl"
        if not path.exists():
            return []
        text = path.read_text()
        lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
        return [json.loads(line) for line in lines]

    def wait(self, what: str, pred: Callable[[Record], bool], after: int = 0) -> Record:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            for r in self.records():
                if r["audit_id"] > after and pred(r):
                    return r
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {what} (bot exit code {self.proc.poll()})")

    def held(self) -> set[str]:
        """Symbols whose latest phase is POSITION."""
        last: dict[str, str] = {}
        for r in self.records():
            if r["kind"] == "phase":
                last[r["symbol"]] = r["to"]
        return {sym for sym, phase in last.items() if phase == "POSITION"}

    def wait_held(self) -> set[str]:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and self.proc.poll() is None:
            held = self.held()
            if held:
                return held
            time.sleep(0.05)
        raise AssertionError("no position was ever held")

    def status(self) -> dict[str, Any]:
        proc = run_fsmtrader("status", "--state-dir", str(self.state), "--json", cwd=self.tmp)
        assert proc.returncode == 0, proc.stderr
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def finish(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, errs = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, errs
        return errs


def kill(r: Record, action: str) -> bool:
    return r["kind"] == "kill_switch" and r["action"] == action


def new_buy(r: Record) -> bool:
    return r["kind"] == "order" and r["side"] == "buy" and r["state"] == "NEW"


def check_flattened(bot: Bot, held: set[str], after: int) -> None:
    """Every symbol held at ``after`` got a flatten record and a force_exit trade, and
    every sell since went down the ladder as a limit IOC order."""
    for sym in held:
        bot.wait(
            f"flatten of {sym}", lambda r, s=sym: kill(r, "flatten") and r["symbol"] == s, after
        )
        bot.wait(
            f"forced exit of {sym}",
            lambda r, s=sym: (
                r["kind"] == "trade" and r["symbol"] == s and r["exit_reason"] == "force_exit"
            ),
            after,
        )
    sells = [
        r
        for r in bot.records()
        if r["audit_id"] > after
        and r["kind"] == "order"
        and r["side"] == "sell"
        and r["state"] == "NEW"
    ]
    assert sells and all(r["limit_price"] is not None for r in sells)
    assert all(r["time_in_force"] == "IOC" for r in sells)


def test_the_stop_file_stops_flattens_and_its_removal_resumes(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    stop = bot.state / STOP_FILE
    try:
        held = bot.wait_held()
        stop.write_text("stop please\n")
        stopped = bot.wait("kill-switch stop", lambda r: kill(r, "stop"))
        assert stopped["command"] == "stop" and stopped["file"] == str(stop)
        assert bot.status()["entries_stopped"] == REASON
        time.sleep(1.5)  # 45 minutes of market: entries would have come
        later = [r for r in bot.records() if r["audit_id"] > stopped["audit_id"]]
        assert not [r for r in later if new_buy(r)], "a buy after the STOP file"
        assert not [r for r in later if kill(r, "flatten")], "a plain stop flattened"

        held = bot.held()
        assert held, "the held position went away by itself; lengthen the hold"
        mark = bot.records()[-1]["audit_id"]
        stop.write_text("flatten\n")
        check_flattened(bot, held, mark)
        assert bot.status()["entries_stopped"] == REASON

        stop.unlink()
        lifted = bot.wait("kill-switch lift", lambda r: kill(r, "lift"))
        bot.wait("a new entry after the lift", new_buy, lifted["audit_id"])
        assert bot.status()["entries_stopped"] == ""
    finally:
        bot.finish()
    ours = [r for r in bot.records() if r["kind"] == "kill_switch"]
    # stop, then the file's change to flatten (said once), the exits, the lift
    assert [(r["action"], r["command"]) for r in ours if r["action"] != "flatten"] == [
        ("stop", "stop"),
        ("stop", "flatten"),
        ("lift", "flatten"),
    ]


def test_sigusr1_and_sigusr2_write_the_stop_file(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    stop = bot.state / STOP_FILE
    try:
        bot.wait_held()
        bot.proc.send_signal(signal.SIGUSR1)
        stopped = bot.wait("kill-switch stop", lambda r: kill(r, "stop"))
        assert stop.read_text() == "stop\n"
        assert stopped["command"] == "stop"
        held = bot.held()
        assert held
        mark = bot.records()[-1]["audit_id"]
        bot.proc.send_signal(signal.SIGUSR2)
        check_flattened(bot, held, mark)
        assert stop.read_text() == "flatten\n"
        assert not [r for r in bot.records() if r["audit_id"] > stopped["audit_id"] and new_buy(r)]
        os.unlink(stop)
        bot.wait("kill-switch lift", lambda r: kill(r, "lift"))
    finally:
        errs = bot.finish()
    assert "Traceback" not in errs
