"""``fsmtrader preflight`` end to end, in subprocesses: GO on a good config, a real short
paper session (its API on; the test plays the dashboard and posts its push lags) and a
fresh ``fsmtrader smoke`` report; a NO-GO for each failing criterion, each made the way it
happens (a rule broken in the file, an order placed on the session's exchange behind the
bot's back, books edited, a failed or foreign or stale smoke report, no lag measured, the
price path edited); bad input in one line with exit 2; the state directory untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from fsmtrader.clock import SimClock
from fsmtrader.config import load_settings
from fsmtrader.orders.intent import client_order_id
from fsmtrader.session import open_sim_exchange, session_filters
from fsmtrader.store.price_path import PRICE_PATH_FILE
from fsmtrader_testing.api_session import api_config, start_bot
from fsmtrader_testing.paper import clean_env, fsmtrader_argv, run_fsmtrader

SEED = 5
SPEED, HOURS, RUN_S = 3600, 48, 5


@dataclass
class Made:
    config: Path
    state: Path
    smoke: Path  # a fresh smoke report for the config


def fsm(*args: str, cwd: Path) -> Any:
    return run_fsmtrader(*args, cwd=cwd, timeout=300)


def preflight(made: Made, *extra: str, state: Path | None = None, smoke: Path | None = None,
              config: Path | None = None) -> tuple[int, dict[str, Any], str]:  # fmt: skip
    args = ["preflight", "--config", str(config or made.config), "--json"]
    args += ["--state-dir", str(state or made.state)]
    args += ["--smoke-report", str(smoke or made.smoke), *extra]
    run = fsm(*args, cwd=made.state.parent)
    report = json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}
    return run.returncode, report, run.stderr


def criterion(report: dict[str, Any], name: str) -> dict[str, Any]:
    [c] = [c for c in report["criteria"] if c["name"] == name]
    return c


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    """One real paper session (API on, lags posted as the dashboard does), one smoke run."""
    root = tmp_path_factory.mktemp("preflight")
    config = api_config(root / "live.toml", SEED)
    state = root / "state"
    bot = start_bot(state, config, run_for_s=RUN_S, speed=SPEED, hours=HOURS)
    try:
        with bot.client() as c:
            for batch in ([4.0, 12.5, 30.0, 8.0] * 5, [15.0, 250.0, 9.0, 11.0]):
                assert c.post("/api/v1/lag", json={"samples_ms": batch}).status_code == 200
    except httpx.HTTPError as exc:
        pytest.fail(f"the bot's API did not answer: {exc}")
    _out, err = bot.proc.communicate(timeout=RUN_S + 60)  # it ends by itself (--for)
    assert bot.proc.returncode == 0, err
    smoke = root / "smoke.json"
    run = fsm("smoke", "--config", str(config), "--report", str(smoke), cwd=root)
    assert run.returncode == 0, run.stderr[-3000:]
    yield Made(config, state, smoke)


def copy_of(made: Made, tmp: Path) -> Path:
    state = tmp / "state"
    shutil.copytree(made.state, state)
    return state


# --- GO ------------------------------------------------------------------------------------
def test_go_on_a_good_config_a_real_paper_session_and_a_fresh_smoke_report(made: Made) -> None:
    before = tree_digest(made.state)
    rc, report, err = preflight(made)
    assert rc == 0, (report.get("reasons"), err)
    assert report["decision"] == "GO" and report["reasons"] == []
    names = [c["name"] for c in report["criteria"]]
    assert names == [
        "live rules", "smoke scenarios", "entry parity", "orphaned orders",
        "partial-fill PnL drift", "critical errors", "restart idempotency", "dashboard lag",
    ]  # fmt: skip
    parity = criterion(report, "entry parity")["figure"]
    n = int(parity.split("/")[0])
    assert n >= 1 and parity.startswith(f"{n}/{n} identical"), parity
    assert criterion(report, "dashboard lag")["figure"].startswith("95.83 % of 24 pushes")
    assert tree_digest(made.state) == before  # read only: not a byte changed


def test_the_table_lists_every_criterion_with_figure_and_bar(made: Made) -> None:
    run = fsm(
        "preflight", "--config", str(made.config), "--state-dir", str(made.state),
        "--smoke-report", str(made.smoke), cwd=made.state.parent,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    for text in ("live rules", "15/15 pass", "entry parity", "restart idempotency", "GO"):
        assert text in run.stdout, run.stdout


# --- NO-GO, one per criterion ----------------------------------------------------------------
def test_a_config_breaking_a_live_rule_is_no_go_naming_it(made: Made, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(made.config.read_text().replace("[risk]", "[risk]\nmax_open_positions = 4")
                   if "[risk]" in made.config.read_text()
                   else made.config.read_text() + "[risk]\nmax_open_positions = 4\n")  # fmt: skip
    rc, report, _ = preflight(made, config=bad)
    assert rc == 1 and report["decision"] == "NO-GO"
    assert (
        "live rules: risk.max_open_positions = 4: must be <= 3 for live trading"
        in (report["reasons"])
    )


def test_an_order_placed_behind_the_bots_back_is_an_orphan(made: Made, tmp_path: Path) -> None:
    state = copy_of(made, tmp_path)
    s = load_settings(made.config)
    filters = session_filters(s)
    with sqlite3.connect(state / "fsmtrader.db") as db:
        (last_bar,) = db.execute(
            "SELECT value FROM engine_meta WHERE key = 'last_bar_ts'"
        ).fetchone()
    ex = open_sim_exchange(s, state, filters, SimClock(int(last_bar)))
    try:
        price = (ex.fetch_ticker("BTC/USDT").bid * Decimal("0.5")).quantize(Decimal("0.01"))
        for coid in (client_order_id("0" * 24), "intruder-1"):  # like ours, and foreign
            ex.create_order("BTC/USDT", "buy", "limit", Decimal("0.001"), price, "GTC", coid)
    finally:
        ex.close()
    rc, report, _ = preflight(made, state=state)
    assert rc == 1
    c = criterion(report, "orphaned orders")
    assert not c["passed"], c
    assert c["figure"] == "1 orphaned, 1 other reconcile difference(s)", c
    assert any(client_order_id("0" * 24) in r for r in c["reasons"]), c["reasons"]
    assert "1 open order(s) the bot did not place" in c["reasons"], c["reasons"]


def test_books_edited_behind_the_bots_back_are_a_pnl_drift(made: Made, tmp_path: Path) -> None:
    state = copy_of(made, tmp_path)
    with sqlite3.connect(state / "fsmtrader.db") as db:
        (tid, pnl) = db.execute("SELECT id, realized_pnl FROM trades ORDER BY id").fetchone()
        db.execute("UPDATE trades SET realized_pnl = ? WHERE id = ?", (str(Decimal(pnl) + 1), tid))
    rc, report, _ = preflight(made, state=state)
    assert rc == 1
    c = criterion(report, "partial-fill PnL drift")
    assert not c["passed"] and "booked PnL" in c["reasons"][0], c


def test_a_failed_smoke_report_is_no_go(made: Made, tmp_path: Path) -> None:
    data = json.loads(made.smoke.read_text())
    for sc in data["scenarios"]:
        if sc["name"] == "C":
            sc["passed"], sc["reason"] = False, "a market sell was sent"
    data["passed"] = False
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps(data))
    rc, report, _ = preflight(made, smoke=failed)
    assert rc == 1
    [line] = [r for r in report["reasons"] if r.startswith("smoke scenarios:")]
    assert "scenario C" in line and "a market sell was sent" in line


def test_a_smoke_report_of_another_config_or_too_old_is_no_go(made: Made, tmp_path: Path) -> None:
    data = json.loads(made.smoke.read_text())
    data["config_sha256"] = "0" * 64
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps(data))
    rc, report, _ = preflight(made, smoke=foreign)
    assert rc == 1
    assert any("another configuration (config_sha256 000000000000" in r for r in report["reasons"])
    del data["config_sha256"]  # a report without one: the settings it lists must agree
    data["settings"]["exit.never_market_sells"] = False
    foreign.write_text(json.dumps(data))
    rc, report, _ = preflight(made, smoke=foreign)
    assert rc == 1
    assert (
        "smoke scenarios: the report is for another configuration: exit.never_market_sells "
        "is false in the report, true here" in report["reasons"]
    ), report["reasons"]
    data = json.loads(made.smoke.read_text())
    data["generated_ms"] = 1_577_836_800_000  # 2020
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(data))
    rc, report, _ = preflight(made, smoke=stale)
    assert rc == 1
    assert any("h old (at most 24 h)" in r for r in report["reasons"]), report["reasons"]


def test_no_lag_measured_is_no_go_and_smoke_e_is_the_fallback(made: Made, tmp_path: Path) -> None:
    state = copy_of(made, tmp_path)
    (state / "push_lag.json").unlink()
    rc, report, _ = preflight(made, state=state)
    lag = criterion(report, "dashboard lag")
    assert rc == 0 and lag["passed"] and "(smoke scenario E" in lag["figure"], lag
    data = json.loads(made.smoke.read_text())
    for sc in data["scenarios"]:
        if sc["name"] == "E":
            sc["figures"] = {}
    no_e = tmp_path / "no-e.json"
    no_e.write_text(json.dumps(data))
    rc, report, _ = preflight(made, state=state, smoke=no_e)
    assert rc == 1
    lag = criterion(report, "dashboard lag")
    assert lag["figure"] == "not measured" and "no dashboard measured" in lag["reasons"][0]


def test_an_edited_price_path_breaks_entry_parity(made: Made, tmp_path: Path) -> None:
    state = copy_of(made, tmp_path)
    path = state / PRICE_PATH_FILE
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    entries = [r for r in json.loads(_audit(state)) if r.get("event") == "SIGNAL"]
    did = entries[0]["decision_id"]
    sym, ts = entries[0]["symbol"], int(did.rsplit("-", 2)[1])
    for r in rows:  # the bar that fired the entry no longer drops
        if r[0] == "b" and r[1] == ts and r[2] == sym:
            r[5] = r[3] = r[4] = r[5] * 1.05
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, report, _ = preflight(made, state=state)
    assert rc == 1
    c = criterion(report, "entry parity")
    assert not c["passed"] and any(r.startswith(f"{did}:") for r in c["reasons"]), c


def _audit(state: Path) -> str:
    with sqlite3.connect(state / "fsmtrader.db") as db:
        rows = [json.loads(r[0]) for r in db.execute("SELECT record FROM audit ORDER BY id")]
    return json.dumps(rows)


def test_a_halt_in_the_audit_is_a_critical_error(made: Made, tmp_path: Path) -> None:
    state = copy_of(made, tmp_path)
    record = {"kind": "halt", "ts": 1, "reason": "order race: x filled while being cancelled"}
    with sqlite3.connect(state / "fsmtrader.db") as db:
        db.execute(
            "INSERT INTO audit(ts, kind, symbol, record) VALUES (1, 'halt', NULL, ?)",
            (json.dumps(record),),
        )
    rc, report, _ = preflight(made, state=state)
    assert rc == 1
    c = criterion(report, "critical errors")
    assert c["reasons"] == ["halt at 1: order race: x filled while being cancelled"], c


# --- bad input -------------------------------------------------------------------------------
def one_error_line(rc: int, err: str) -> str:
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, lines
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(made: Made, tmp_path: Path) -> None:
    rc, _, err = preflight(made, state=tmp_path / "nowhere")
    assert "no such directory" in one_error_line(rc, err)
    (tmp_path / "empty").mkdir()
    rc, _, err = preflight(made, state=tmp_path / "empty")
    assert "no session here (no fsmtrader.db)" in one_error_line(rc, err)
    live = copy_of(made, tmp_path)
    with sqlite3.connect(live / "fsmtrader.db") as db:
        owner = json.dumps({"account": "ab", "kind": "live", "venue": "binance"})
        db.execute("UPDATE engine_meta SET value = ? WHERE key = 'owner'", (owner,))
    rc, _, err = preflight(made, state=live)
    assert "preflight measures a paper or observe session" in one_error_line(rc, err)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "fsmtrader.db") as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    rc, _, err = preflight(made, state=foreign)
    assert "cannot read the state database" in one_error_line(rc, err)
    junk = tmp_path / "junk.json"
    junk.write_text("not json")
    rc, _, err = preflight(made, smoke=junk)
    assert "not a JSON smoke report" in one_error_line(rc, err)
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk]\nmax_open_positions = 0\n")
    rc, _, err = preflight(made, config=bad)
    assert rc == 2 and "risk.max_open_positions" in err
    other = tmp_path / "other.toml"
    text = made.config.read_text()
    other.write_text(text.replace(', "SOL/USDT", "DOGE/USDT"]', "]"))
    assert other.read_text() != text
    rc, _, err = preflight(made, config=other)
    assert "its session traded BTC/USDT, DOGE/USDT, ETH/USDT, SOL/USDT" in one_error_line(rc, err)
    run = fsm("preflight", "--state-dir", str(made.state), cwd=tmp_path)
    assert "--config" in one_error_line(run.returncode, run.stderr)


def test_config_check_live_exit_codes(made: Made, tmp_path: Path) -> None:
    ok = fsm("config", "--check-live", "--config", str(made.config), cwd=tmp_path)
    assert ok.returncode == 0 and "live rules: all 15 pass" in ok.stdout, ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[exit]\nnever_market_sells = false\n[halts]\non_order_race = false\n")
    run = fsm("config", "--check-live", "--config", str(bad), cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout.split("\n")[:2] == [
        "  exit.never_market_sells = false: must be true for live trading",
        "  halts.on_order_race = false: must be true for live trading",
    ]
    assert "2 rule(s) broken" in run.stderr
    bad.write_text("[exit]\nnever_market_sells = 3\n")
    run = fsm("config", "--check-live", "--config", str(bad), cwd=tmp_path)
    assert run.returncode == 2


def test_a_restart_that_changes_the_books_is_no_go(made: Made, tmp_path: Path) -> None:
    state = copy_of(made, tmp_path)
    with sqlite3.connect(state / "fsmtrader.db") as db:  # the books forgot an order's answer
        db.execute("UPDATE orders SET state = 'SENT' WHERE rowid = (SELECT MAX(rowid) FROM orders)")
    rc, report, _ = preflight(made, state=state)
    assert rc == 1
    c = criterion(report, "restart idempotency")
    assert not c["passed"] and c["figure"].startswith("changed after a restart"), c
    assert any(r.startswith("orders: 1 row(s) changed") for r in c["reasons"]), c["reasons"]


def test_a_running_bot_is_measured_read_only(made: Made, tmp_path: Path) -> None:
    """The bot holds its lock and writes on: the copy is consistent, its price path runs
    ahead of the copy (compared up to the last bar both have), nothing is refused."""
    state = tmp_path / "running"
    argv = fsmtrader_argv(
        "paper", "--config", str(made.config), "--state-dir", str(state),
        "--hours", "48", "--speed", "1200", "--for", "60", "--quiet",
    )  # fmt: skip
    env = clean_env(FSMTRADER_API__ENABLED="false")
    bot = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = state / PRICE_PATH_FILE
    try:
        deadline = time.monotonic() + 10  # trading: an hour of prices and an entry or two
        while time.monotonic() < deadline and (not path.exists() or path.stat().st_size < 150_000):
            time.sleep(0.1)
        rc, report, err = preflight(made, state=state)
        assert bot.poll() is None, "the bot should still be running"
    finally:
        bot.terminate()  # SIGTERM: it commits and stops
        bot.wait(timeout=30)
    assert rc == 0, (report.get("reasons"), err)


def test_without_a_report_the_smoke_scenarios_run_now(made: Made) -> None:
    run = fsm(
        "preflight", "--config", str(made.config), "--state-dir", str(made.state), "--json",
        cwd=made.state.parent,
    )  # fmt: skip
    report = json.loads(run.stdout)
    assert run.returncode == 0, report["reasons"]
    assert criterion(report, "smoke scenarios")["figure"] == "5/5 passed (run now)"


def test_a_loss_breaker_halt_is_replayed_and_is_no_critical_error(
    made: Made, tmp_path: Path
) -> None:
    """The breaker halts the session's entries; the replay halts at the same moment, so
    the decisions after it compare too, and a breaker doing its job is no error."""
    config = tmp_path / "tight.toml"
    text = made.config.read_text().replace("[api]\nenabled = true", "[api]\nenabled = false")
    config.write_text(text + '[breakers]\nmax_daily_loss = "0.02"\n')
    state = tmp_path / "state"
    run = fsm(
        "paper", "--config", str(config), "--state-dir", str(state), "--hours", "48",
        "--speed", str(SPEED), "--for", str(RUN_S), "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    halts = [r for r in json.loads(_audit(state)) if r["kind"] == "halt"]
    assert halts and halts[0]["reason"].startswith("breaker: "), halts
    _rc, report, _ = preflight(made, state=state, config=config)
    parity = criterion(report, "entry parity")
    assert parity["passed"], parity
    assert criterion(report, "critical errors")["passed"], criterion(report, "critical errors")
