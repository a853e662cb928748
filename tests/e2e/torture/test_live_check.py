"""The torture's check of a live state directory finds what it must: books that match
the venue pass, an order on the account the books never sent is an orphan, and a fill
the books hold that the venue never made is drift. Real bot, real server process."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from fsmtrader.config import load_settings
from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange
from fsmtrader_testing.paper import fsmtrader_argv
from fsmtrader_testing.torture.bot import run_bot
from fsmtrader_testing.torture.config import live_env, live_toml
from fsmtrader_testing.torture.live_check import verify_live
from fsmtrader_testing.torture.server import API_KEY, API_SECRET, SimServer

pytestmark = pytest.mark.timeout(180)


def test_check_passes_sound_books_and_flags_a_foreign_order_and_a_phantom_fill(
    tmp_path: Path,
) -> None:
    server = SimServer("binance", 240, seed=7).start()
    try:
        config, state = tmp_path / "t.toml", tmp_path / "state"
        config.write_text(live_toml(7, "binance", server.base_url, "IOC"))
        argv = ["trade", "--live", "--confirm-live", "--config", str(config)]
        argv += ["--state-dir", str(state), "--quiet", "--for", "20"]
        res = run_bot(fsmtrader_argv(*argv), live_env(), ready="trade: LIVE", kill=None)
        assert res.returncode == 0, res.stderr[-2000:]
        s = load_settings(config, env={})
        sound = verify_live(state, s, server)
        assert sound.ok, sound.problems
        assert server.state()["orders"], "the bot traded nothing: the check proved nothing"

        options = CcxtOptions(
            "binance",
            api_key=API_KEY,
            api_secret=API_SECRET,
            base_url=server.base_url,
            rate_limit=False,
        )
        with CcxtExchange(options, inline=True) as ex:
            ex.load_markets()
            ex.create_order(
                "ETH/USDT", "buy", "limit", Decimal("0.01"), Decimal("1000"), "GTC", "intruder1"
            )
        foreign = verify_live(state, s, server)
        assert foreign.orphans >= 1
        assert any("intruder1" in p for p in foreign.problems), foreign.problems

        with closing(sqlite3.connect(state / "fsmtrader.db")) as db, db:
            db.execute(
                "INSERT INTO fills SELECT intent_id, 'phantom-1', symbol, side, price, amount, "
                "fee, fee_currency, ts, decision_id FROM fills LIMIT 1"
            )
        phantom = verify_live(state, s, server)
        assert phantom.drift > 0
        assert any("phantom-1" in p for p in phantom.problems), phantom.problems
    finally:
        server.stop()
