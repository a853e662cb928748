"""Whose a state directory is: one session kind, one venue, one account.

Books of a paper session must never be continued against a real account, nor one
account's books against another's: each would reconcile against the wrong exchange and
either halt for ever or, worse, trade on balances that are not the bot's. The first
session that writes a directory records its owner in the store's meta; every later
command on it must ask for the same owner or is refused before anything is touched.

The account is a fingerprint of the API key, never the key: an HMAC-SHA256 of the key
under a fixed, public label, cut to 16 hex digits. It is not a secret because it is
derived from the API *key* only (the half a venue receives in clear in every request
header; the signing secret never enters it), it is one-way and truncated to 64 bits, and
it authenticates nothing: it can only tell whether a given key is the one that traded
here. Rotating the key on the same account therefore needs a new state directory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from fsmtrader.errors import StoreError

OWNER_KEY = "owner"  # the engine meta key holding the record
KINDS = ("paper", "paper-live", "live")
SYNTHETIC = "synthetic"  # the venue of a paper session: its own synthetic market
_LABEL = b"fsmtrader account fingerprint v1"


@dataclass(frozen=True)
class Owner:
    """``kind``: paper | paper-live | live; ``venue``: the exchange's name (``synthetic``
    for a paper session); ``account``: the key's fingerprint (live only, else empty)."""

    kind: str
    venue: str
    account: str = ""

    def describe(self) -> str:
        if self.kind == "paper":
            return "a paper session on the synthetic market"
        if self.kind == "paper-live":
            return f"a paper session on {self.venue} live prices"
        account = f"account {self.account}" if self.account else "an unrecorded account"
        return f"a LIVE session on {self.venue} ({account})"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def account_fingerprint(api_key: str) -> str:
    """16 hex digits that identify the API key without revealing it (see the module)."""
    return hmac.new(_LABEL, api_key.encode(), hashlib.sha256).hexdigest()[:16]


def held_owner(meta: Mapping[str, str]) -> Owner | None:
    """The recorded owner; for a directory written before owners were recorded, the one
    its meta implies (a paper session's clock, or the venue a live session saved);
    None for a directory no session has written yet."""
    if OWNER_KEY in meta:
        raw = json.loads(meta[OWNER_KEY])
        return Owner(str(raw["kind"]), str(raw["venue"]), str(raw.get("account", "")))
    if "session" in meta:
        return Owner("paper", SYNTHETIC)
    if "venue" in meta:
        venue = json.loads(meta["venue"])
        kind = "paper-live" if venue.get("paper") else "live"
        return Owner(kind, str(venue.get("exchange", "")))
    return None


def claim(meta: Mapping[str, str], wanted: Owner, where: Path) -> Owner | None:
    """The owner record to write (None: it is there already), or StoreError in one line
    when the directory belongs to another kind, venue or account. A directory of an older
    version is adopted from what it holds; a live one, which recorded no account, by the
    account that opens it."""
    held = held_owner(meta)
    if held is None:
        return wanted
    other_account = held.kind == "live" and held.account not in ("", wanted.account)
    if held.kind != wanted.kind or held.venue != wanted.venue or other_account:
        raise StoreError(
            f"{where}: holds {held.describe()}; this command asks for {wanted.describe()} "
            "— refusing to mix them: use another --state-dir"
        )
    record = wanted if held.kind == "live" else held
    return None if meta.get(OWNER_KEY) == record.to_json() else record
