"""Whose a state directory is, as a pure decision: what the meta holds (recorded, or
implied by an older version's keys) against what a command asks for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsmtrader.errors import StoreError
from fsmtrader.store.owner import OWNER_KEY, SYNTHETIC, Owner, account_fingerprint, claim

HERE = Path("/srv/state")
PAPER = Owner("paper", SYNTHETIC)
PAPER_LIVE = Owner("paper-live", "binance")
LIVE_A = Owner("live", "binance", account_fingerprint("key-a"))
LIVE_B = Owner("live", "binance", account_fingerprint("key-b"))
LIVE_MEXC = Owner("live", "mexc", account_fingerprint("key-a"))
ALL = [PAPER, PAPER_LIVE, LIVE_A, LIVE_B, LIVE_MEXC]


def recorded(owner: Owner) -> dict[str, str]:
    return {OWNER_KEY: owner.to_json()}


@pytest.mark.parametrize("held", ALL)
@pytest.mark.parametrize("wanted", ALL)
def test_only_the_same_kind_venue_and_account_may_use_a_directory(
    held: Owner, wanted: Owner
) -> None:
    if held == wanted:
        assert claim(recorded(held), wanted, HERE) is None  # nothing to write
        return
    with pytest.raises(StoreError) as exc:
        claim(recorded(held), wanted, HERE)
    line = str(exc.value)
    assert "\n" not in line and line.startswith(f"{HERE}: holds {held.describe()}")
    assert f"asks for {wanted.describe()}" in line


def test_a_new_directory_is_claimed_by_the_first_session() -> None:
    assert claim({}, LIVE_A, HERE) == LIVE_A
    assert claim({"halted": "", "counters": "{}"}, PAPER, HERE) == PAPER  # meta, no owner


def test_older_directories_are_adopted_from_what_they_hold() -> None:
    paper = {"session": json.dumps({"seed": 1})}
    assert claim(paper, PAPER, HERE) == PAPER  # written back as a record
    with pytest.raises(StoreError, match="holds a paper session"):
        claim(paper, LIVE_A, HERE)
    old_live = {"venue": json.dumps({"paper": False, "exchange": "binance"})}
    assert claim(old_live, LIVE_A, HERE) == LIVE_A  # no account recorded: adopted
    with pytest.raises(StoreError, match="an unrecorded account"):
        claim(old_live, PAPER_LIVE, HERE)
    old_paper_live = {"venue": json.dumps({"paper": True, "exchange": "binance"})}
    assert claim(old_paper_live, PAPER_LIVE, HERE) == PAPER_LIVE
    with pytest.raises(StoreError):
        claim(old_paper_live, Owner("paper-live", "mexc"), HERE)


def test_the_fingerprint_is_stable_short_and_not_the_key() -> None:
    key = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
    fp = account_fingerprint(key)
    assert fp == account_fingerprint(key) and len(fp) == 16
    assert int(fp, 16) >= 0 and fp not in key and key[:8] not in fp
    assert fp != account_fingerprint(key[:-1] + "B")
