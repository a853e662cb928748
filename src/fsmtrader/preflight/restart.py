"""Restart idempotency, on the copy: start the session again (recover and reconcile, look-
ups only) at the moment it stopped, and compare every row of its books before and after:
a restart with open orders and positions must change nothing and hold nothing back."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from fsmtrader.errors import FsmTraderError
from fsmtrader.preflight.report import Criterion
from fsmtrader.preflight.statedir import DB_FILE, StateCopy
from fsmtrader.store.schema import readonly_uri

__all__ = ["BOOK_TABLES", "restart_idempotency"]

# The books: everything a restart restores. (The meta and the audit change by design:
# marks, counters, the reconcile's own records.)
BOOK_TABLES = (
    "symbol_state",
    "orders",
    "fills",
    "positions",
    "reservations",
    "dust",
    "portfolio",
    "trades",
    "ghosts",
)
BAR = "books identical, nothing held back"
COPIES = 3  # restarts on fresh copies of a running bot's directory, at most


def book_rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(readonly_uri(db), uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in BOOK_TABLES}
    finally:
        conn.close()


def _pin_clock(copy: StateCopy, stopped_ms: int) -> None:
    """Move the copy's session clock to ``stopped_ms`` (it runs on while a bot is down;
    the restart under test is one at once, not after a pause)."""
    conn = sqlite3.connect(copy.work / DB_FILE)
    try:
        info = json.loads(copy.meta["session"])
        info["speed"] = 1.0  # wall speed: the restart takes a few simulated seconds, no more
        info["start_wall_s"] = time.time() - (stopped_ms - int(info["start_sim_ms"])) / 1000
        with conn:
            conn.execute(
                "UPDATE engine_meta SET value = ? WHERE key = 'session'", (json.dumps(info),)
            )
    finally:
        conn.close()


def restart_idempotency(
    copy: StateCopy, recopy: Callable[[], StateCopy] | None = None
) -> Criterion:
    """The restart on ``copy``; when it changed something while the bot went on writing
    its directory, again on fresh copies (``recopy``), up to ``COPIES`` in all. A running
    bot's copy can land between the exchange's answer and the bot's own commit of it,
    where a restart rightly books what the exchange says; a stopped bot's is measured
    once, so a real difference is never retried away."""
    copied = _last_audit_id(copy.work / DB_FILE)
    verdict = _restart_once(copy)
    tries = 1
    while (
        not verdict.passed
        and recopy is not None
        and tries < COPIES
        and _last_audit_id(copy.source_db) > copied
    ):
        fresh = recopy()
        try:
            copied = _last_audit_id(fresh.work / DB_FILE)
            verdict = _restart_once(fresh)
        finally:
            fresh.close()
        tries += 1
    if tries > 1:
        verdict.figure += f" (copy {tries} of a running bot's directory)"
    return verdict


def _last_audit_id(db: Path) -> int:
    """The last audit id of a state database (0 where it cannot be read: no retry)."""
    try:
        conn = sqlite3.connect(readonly_uri(db), uri=True)
        try:
            row = conn.execute("SELECT max(id) FROM audit").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def _restart_once(copy: StateCopy) -> Criterion:
    """Restart at the session's last bar: every timer due by then has fired (a bar runs
    the timers due before it), so what the restart changes, the restart did."""
    if copy.kind != "paper":
        return Criterion(
            "restart idempotency",
            False,
            "not measured",
            BAR,
            [
                f"a {copy.kind} session restarts against its venue's prices; measure a "
                "`fsmtrader paper` session's directory instead"
            ],
        )
    from fsmtrader.session import PaperSession

    db = copy.work / DB_FILE
    _pin_clock(copy, int(copy.meta.get("last_bar_ts", "0") or 0))
    before = book_rows(db)
    s = copy.settings
    try:
        session = PaperSession(s, copy.work, hours=s.demo.hours, speed=60.0, send=False)
    except FsmTraderError as exc:
        return Criterion("restart idempotency", False, "failed", BAR, [f"cannot restart: {exc}"])
    try:
        report = session.start()
        held = list(session.held_back)
        open_orders = sum(1 for r in session.engine.router.records.values() if not r.done)
        held_pos = len(session.engine.portfolio.positions)
    finally:
        session.close()
    after = book_rows(db)
    reasons = [f"held back: {h}" for h in held]
    if not report.ok:
        reasons.append(f"reconcile at the restart: {report.summary()}")
    for table in BOOK_TABLES:
        was, now = Counter(before[table]), Counter(after[table])
        gone, new = list((was - now).elements()), list((now - was).elements())
        if gone or new:
            reasons.append(
                f"{table}: {len(gone)} row(s) changed or gone, {len(new)} new "
                f"(e.g. {(new or gone)[0]!r:.160})"
            )
    figure = (
        f"{'identical' if not reasons else 'changed'} after a restart with "
        f"{open_orders} open order(s), {held_pos} position(s)"
    )
    return Criterion("restart idempotency", not reasons, figure, BAR, reasons)
