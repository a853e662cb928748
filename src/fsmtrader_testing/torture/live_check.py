"""The books of a live state directory against the exchange: the two-way verify of
:mod:`fsmtrader.smoke.verify` through the real ccxt client, then what only the server's
oracle (``GET /__sim/state``) knows: every order it ever took, reused client ids too.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path

from fsmtrader.config import Settings
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader.exchange.types import OrderInfo, TradeInfo
from fsmtrader.smoke.verify import Verdict, verify_live_state
from fsmtrader.store.sqlite import SqliteStore, store_path
from fsmtrader_testing.torture.server import API_KEY, API_SECRET, SimServer


def verify_live(state: Path, s: Settings, server: SimServer) -> Verdict:
    """The verdict on ``state`` (the bot stopped) against ``server``."""
    options = CcxtOptions(
        s.exchange.name,
        api_key=API_KEY,
        api_secret=API_SECRET,
        base_url=server.base_url,
        timeout_ms=10_000,
        rate_limit=False,  # the check is not the bot: no need to pace it
    )
    with SinceServerStart(options, server.started_ms - 60_000) as ex:
        verdict = verify_live_state(state, ex, s)
    return oracle_check(verdict, state, s, server)


class SinceServerStart(CcxtExchange):
    """The venue as the check reads it: nothing exists before the server started, so a
    history read "since 0" starts there (the adapter walks the venue's time windows one
    by one, and from 1970 that is tens of thousands of requests)."""

    def __init__(self, options: CcxtOptions, start_ms: int) -> None:
        super().__init__(options, inline=True)
        self.start_ms = start_ms

    def fetch_orders(self, symbol: str, since: int) -> list[OrderInfo]:
        return super().fetch_orders(symbol, max(since, self.start_ms))

    def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        return super().fetch_my_trades(symbol, max(since or 0, self.start_ms))


def oracle_check(verdict: Verdict, state: Path, s: Settings, server: SimServer) -> Verdict:
    """Orders the server took that the books cannot name (orphans), and client ids the
    server took twice (duplicates), counted only where the verdict has fewer."""
    store = SqliteStore(store_path(state, s.database_url), create=False)
    try:
        ours = {r.client_order_id for r in store.load().orders}
    finally:
        store.close()
    taken = Counter(o["client_order_id"] for o in server.state()["all_orders"])
    unknown = sorted(c for c in taken if c not in ours)
    twice = sorted(c for c, n in taken.items() if n > 1)
    problems = list(verdict.problems)
    problems += [f"oracle: the server has order {c}, the books do not" for c in unknown]
    problems += [f"oracle: the server took client id {c} {taken[c]} times" for c in twice]
    return verdict._replace(
        orphans=max(verdict.orphans, len(unknown)),
        duplicates=max(verdict.duplicates, len(twice)),
        problems=problems,
    )


def book_counts(state: Path) -> tuple[int, int]:
    """(intents, closed trades) in the books, read-only while the bot may be writing."""
    path = state / "fsmtrader.db"
    if not path.exists():
        return 0, 0
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as conn:
            intents = int(conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0])
            return intents, int(conn.execute("SELECT COUNT(*) FROM trades").fetchone()[0])
    except sqlite3.Error:  # busy or not created yet: the next look will tell
        return 0, 0
