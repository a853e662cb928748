"""Each loss breaker crossing in a real durable paper session (its SQLite store, its
simulated exchange with its own file, the accelerated wall clock), on a price path the
test writes: every cycle dips (an entry), falls through the stop-loss (a losing exit) and
comes back. The crossing halts new entries with its reason, commits a ``breaker`` audit
record with the halt, survives a restart, is lifted by ``recover --clear-halt`` (a real
subprocess) or the API's resume, and does not trip again at once after a lift."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsmtrader.config import Settings, load_settings
from fsmtrader.control.desk import ControlDesk
from fsmtrader.fsm.phases import Phase
from fsmtrader.session import PaperSession
from fsmtrader_testing.paper import run_fsmtrader
from fsmtrader_testing.steer import run_steered
from fsmtrader_testing.steered_market import factors_cycle, open_steered

SYM = "BTC/USDT"
SPEED = 3600.0  # an hour of market per wall second
LEAD = 60  # flat minutes first: a second of wall time for the session to get going
OFF = {"max_daily_loss": 0, "max_drawdown_pct": 0, "max_consecutive_losses": 0}
TABLES: dict[str, dict[str, Any]] = {
    "market": {"symbols": [SYM]},
    "entry": {"drop_trigger_pct": 0.4, "anchor_window_min": 10},
    "exit": {
        "take_profit_pct": 0.5,
        "stop_loss_pct": 1.0,
        "trailing_activation_pct": 0,
        "max_hold_min": 60,
        "cooldown_s": 600,
    },
}


def write_config(tmp: Path, **tables: dict[str, Any]) -> tuple[Path, Settings]:
    """The session's TOML (the subprocess reads the same file) and its settings."""
    merged = {name: dict(keys) for name, keys in TABLES.items()}
    for name, keys in tables.items():
        merged.setdefault(name, {}).update(keys)
    lines = ["seed = 7"]
    for name, keys in merged.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    path = tmp / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, load_settings(path, env={})


def run_to_end(s: Settings, state: Path, path: list[float]) -> PaperSession:
    """Open the steered session, start it, run it to its end (or 30 s), close it."""
    session = open_steered(s, state, {SYM: path}, speed=SPEED, lead_in=LEAD)
    try:
        session.start()
        session.run(stop_after_s=30)
    finally:
        session.close()
    return session


def audit(state: Path, *kinds: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    return [r for r in records if not kinds or r["kind"] in kinds]


def meta(state: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{state / 'fsmtrader.db'}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT key, value FROM engine_meta").fetchall())
    finally:
        conn.close()


def buys(state: Path) -> list[dict[str, Any]]:
    return [r for r in audit(state, "order") if r["side"] == "buy" and r["state"] == "NEW"]


def test_a_losing_streak_halts_survives_a_restart_and_clear_halt_re_arms(tmp_path: Path) -> None:
    config, s = write_config(tmp_path, breakers={**OFF, "max_consecutive_losses": 3})
    state = tmp_path / "state"
    path = factors_cycle() * 5
    run_to_end(s, state, path)

    trades = audit(state, "trade")
    reason = "breaker: 3 losing trades in a row >= max_consecutive_losses 3"
    assert [t["exit_reason"] for t in trades] == ["stop_loss"] * 3  # the 4th and 5th dips: none
    assert all(Decimal(t["realized_pnl"]) < 0 for t in trades)
    assert len(buys(state)) == 3
    (crossing,) = audit(state, "breaker")
    assert crossing["action"] == "halt" and crossing["breaker"] == "max_consecutive_losses"
    assert crossing["reason"] == reason and crossing["figures"] == {"streak": "3", "limit": "3"}
    halt = next(r for r in audit(state, "halt") if r["reason"] == reason)
    assert halt["audit_id"] < crossing["audit_id"] and crossing["audit_id"] > trades[-1]["audit_id"]
    m = meta(state)
    assert m["halted"] == reason
    assert (
        json.loads(m["breakers"])["streak"] == 3 and json.loads(m["breakers"])["tripped"] == reason
    )

    shown = run_fsmtrader("status", "--state-dir", str(state), "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["halted"] == reason
    assert json.loads(shown.stdout)["entries_allowed"] is False

    # a restart keeps the halt and does not count the crossing twice
    again = run_to_end(s, state, path)
    assert again.engine.halted == reason and len(audit(state, "breaker")) == 1

    # a person lifts it while the bot is down
    done = run_fsmtrader(
        "recover", "--clear-halt", "--state-dir", str(state), "--config", str(config), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert f"halt lifted (it was: {reason})" in done.stdout
    assert meta(state)["halted"] == ""

    # the next start re-arms from the current figures: the streak of 3 does not trip again
    after = run_to_end(s, state, path)
    assert after.engine.halted == ""
    records = audit(state, "breaker")
    assert [r["action"] for r in records] == ["halt", "rearm"]
    assert reason in records[1]["reason"]
    saved = json.loads(meta(state)["breakers"])
    assert saved["streak"] == 0 and saved["tripped"] == "" and saved["trades_seen"] == 3


def _resume_when_halted(session: PaperSession, desk: ControlDesk, seen: list[str]) -> None:
    """Wait for the first halt, resume through the desk as the API does, then wait for
    the second halt."""
    deadline = time.monotonic() + 20
    while not session.engine.halted and time.monotonic() < deadline:
        time.sleep(0.005)
    seen.append(session.engine.halted)
    result = desk.submit("resume", {}, who="test").result(timeout=10)
    assert result.ok, result.message
    while session.engine.halted == "" and time.monotonic() < deadline:
        time.sleep(0.005)
    seen.append(session.engine.halted)


def test_the_daily_loss_halts_and_after_the_api_resume_counts_from_the_lift(
    tmp_path: Path,
) -> None:
    _, s = write_config(tmp_path, breakers={**OFF, "max_daily_loss": "1.1"})
    state = tmp_path / "state"
    path = factors_cycle() * 6
    session = open_steered(s, state, {SYM: path}, speed=SPEED, lead_in=LEAD)
    seen: list[str] = []
    try:
        session.start()
        run_steered(session, lambda: _resume_when_halted(session, session.desk, seen), 30)
        session.run(stop_after_s=30)  # to the session's end
    finally:
        session.close()

    pnl = [Decimal(t["realized_pnl"]) for t in audit(state, "trade")]
    assert len(pnl) == 4 and all(p < 0 for p in pnl)  # 2, the lift, 2 more, then nothing
    first = f"{-(pnl[0] + pnl[1])}".rstrip("0")
    second = f"{-(pnl[2] + pnl[3])}".rstrip("0")
    tail = ">= max_daily_loss 1.1 (since 2026-01-01 00:00 UTC)"
    assert seen == [
        f"breaker: daily realised loss {first} USDT {tail}",
        f"breaker: daily realised loss {second} USDT {tail}",  # counted from the lift
    ]
    records = audit(state, "breaker", "control")
    assert [(r["kind"], r["action"]) for r in records] == [
        ("breaker", "halt"),
        ("control", "resume"),
        ("breaker", "rearm"),
        ("breaker", "halt"),
    ]
    assert records[0]["figures"]["loss"] == str(-(pnl[0] + pnl[1]))
    assert len(buys(state)) == 4
    assert meta(state)["halted"] == seen[1]


def test_a_drawdown_halts_while_the_position_is_still_managed(tmp_path: Path) -> None:
    _, s = write_config(
        tmp_path,
        breakers={**OFF, "max_drawdown_pct": 0.12},
        risk={"position_size": 100, "max_total_exposure": 300},
        exit={"stop_loss_pct": 5.0},
    )
    state = tmp_path / "state"
    # a dip to enter, a fall of 1.5 % held (no stop-loss at 5 %), back up: take-profit;
    # then a dip that would enter again
    path = [1.0] * 12 + [0.99] * 3 + [0.975] * 10 + [1.0] * 20 + [1.0] * 12 + [0.99] * 5
    path += [1.0] * 10
    session = open_steered(s, state, {SYM: path}, speed=SPEED, lead_in=LEAD)
    phase_at_halt: list[Phase] = []
    halted = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 20
        while not session.engine.halted and time.monotonic() < deadline:
            time.sleep(0.002)
        phase_at_halt.append(session.engine.states[SYM].phase)
        halted.set()

    try:
        session.start()
        threading.Thread(target=watch, daemon=True).start()
        session.run(stop_after_s=30)
    finally:
        session.close()
    assert halted.wait(5)

    (crossing,) = audit(state, "breaker")
    assert crossing["breaker"] == "max_drawdown_pct"
    f = crossing["figures"]
    peak, eq = Decimal(f["peak_equity"]), Decimal(f["equity"])
    assert Decimal(f["drawdown_pct"]) == (peak - eq) / peak * 100 >= Decimal("0.12")
    assert crossing["reason"].startswith("breaker: drawdown ")
    assert "max_drawdown_pct 0.12" in crossing["reason"]
    assert phase_at_halt[0] in (Phase.POSITION, Phase.EXIT_EVAL)  # halted while holding
    # the position was still managed after the halt: it took its profit; no new entry
    (trade,) = audit(state, "trade")
    assert trade["exit_reason"] == "take_profit" and trade["audit_id"] > crossing["audit_id"]
    assert len(buys(state)) == 1
