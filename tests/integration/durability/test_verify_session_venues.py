"""The crash oracle on real paper sessions of each simulated venue rule that bends the
arithmetic or the look-ups: fees in the received asset, fees in BNB (a third asset the
books do not hold), and MEXC's visibility lag (the oracle must read the exchange past
it). Each session trades for a few seconds of wall time at 1800x, then the books and the
exchange's file must agree to the last 1e-8, both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fsmtrader.config import load_settings
from fsmtrader.session import PaperSession
from fsmtrader.smoke.verify import verify_session
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.paper import session_toml

VENUES: dict[str, dict[str, Any]] = {
    "received": {"fee_asset": "received"},
    "bnb": {"fee_asset": "bnb", "starting_bnb": "1"},
    "mexc-lag": {"venue": "mexc"},
}


@pytest.mark.parametrize("name", sorted(VENUES))
def test_a_paper_session_verifies_clean_on_each_venue_rule(name: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    sim = {"depth_quote": "15", **VENUES[name]}
    config.write_text(session_toml(7, sim=sim, router={"time_in_force": "IOC"}))
    s = load_settings(config, env={})
    state = tmp_path / "state"
    session = PaperSession(s, state, hours=48, speed=1800)
    try:
        assert session.start().ok
        session.run(stop_after_s=4)
    finally:
        session.close()
    fills = SqliteStore(state / "fsmtrader.db").fills()
    assert fills, "the session traded nothing: the check would prove nothing"
    verdict = verify_session(state, s)
    assert verdict.ok and verdict.problems == [], verdict
    assert verdict.last_line() == "duplicates=0 orphans=0 drift=0 lost_fills=0"
    currencies = {f.fee_currency for f in fills}
    if name == "bnb":
        assert currencies == {"BNB"}
    if name == "received":
        assert len(currencies) > 1  # the base on buys, the quote on sells
