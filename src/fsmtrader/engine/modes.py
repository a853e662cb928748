"""Per-symbol modes: which symbols run, and how their orders are executed.

``off`` symbols are not in the engine at all; ``observe`` symbols run the state machine
and the strategy and publish what they would have bought (no order, no reservation);
``paper`` symbols trade on the simulated exchange; ``live`` symbols on the venue. Only a
live session (``trade --live``) has a venue to send to: anywhere else a "live" symbol
trades on the simulator, so it is shown as "paper" (what really happens to it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from fsmtrader.errors import ConfigError
from fsmtrader.state.delta import Snapshot
from fsmtrader.state.order import OrderRecord

OFF, OBSERVE, PAPER, LIVE = "off", "observe", "paper", "live"
MODES = (OFF, OBSERVE, PAPER, LIVE)
MODES_META = "modes"  # the engine meta key of the effective modes (JSON {symbol: mode})
SENDS = frozenset({PAPER, LIVE})  # the modes whose symbols send orders


class _Market(Protocol):
    @property
    def symbols(self) -> Sequence[str]: ...

    def mode_of(self, symbol: str) -> str: ...


class Configured(Protocol):
    """What the modes are read from: the settings (``fsmtrader.config.Settings``; the core
    does not import them, so this names only what it reads)."""

    @property
    def market(self) -> _Market: ...


def session_modes(s: Configured, *, live: bool) -> dict[str, str]:
    """Every symbol that runs, with its effective mode, in ``market.symbols`` order."""
    out = {}
    for sym in s.market.symbols:
        mode = s.market.mode_of(sym)
        if mode == OFF:
            continue
        out[sym] = PAPER if mode == LIVE and not live else mode
    return out


def encode_modes(modes: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(modes.items())), sort_keys=True)


def decode_modes(text: str | None) -> dict[str, str]:
    """The saved modes; anything unreadable is none saved (a check then has nothing to
    compare against, and says so by finding no change)."""
    try:
        raw = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if v in MODES}


def saved_modes(snap: Snapshot, default: str) -> dict[str, str]:
    """The modes the state directory last ran with: the meta's, else (a directory from
    before per-symbol modes) ``default`` for every symbol it holds: its kind's one mode."""
    if MODES_META in snap.meta:
        return decode_modes(snap.meta[MODES_META])
    held = set(snap.symbols) | {r.intent.symbol for r in snap.orders}
    if snap.portfolio is not None:
        held |= set(snap.portfolio.positions)
    return dict.fromkeys(sorted(held), default)


def _holding(snap: Snapshot, symbol: str) -> str:
    """What keeps ``symbol`` from being flat ("" when it is flat)."""
    pf = snap.portfolio
    pos = pf.positions.get(symbol) if pf is not None else None
    if pos is not None and pos.qty > 0:
        return f"it holds a position ({pos.qty})"
    open_ids = [r.client_order_id for r in snap.orders if r.intent.symbol == symbol and not r.done]
    if open_ids:
        return f"it has an order not over yet ({', '.join(open_ids)})"
    return ""


def check_mode_change(snap: Snapshot, before: Mapping[str, str], now: Mapping[str, str]) -> None:
    """A symbol's mode may change only while it is flat (no position, no order that is
    not over): its orders live on one exchange and its position in one account. Raises
    ConfigError naming the symbol, both modes and what to do."""
    for sym, old in sorted(before.items()):
        new = now.get(sym, OFF)
        if new == old:
            continue
        why = _holding(snap, sym)
        if why:
            raise ConfigError(
                f"market.modes: {sym} was {old} and is now {new}, but {why}; "
                f"exit the position first, or keep mode {old} for {sym}"
            )


def adopt_modes(
    records: Iterable[OrderRecord], before: Mapping[str, str], default: str
) -> list[str]:
    """Give a mode to the intents saved before per-symbol modes (``mode`` ""): the one
    their symbol last ran with. Returns their ids (to be saved again, with it)."""
    adopted = []
    for rec in records:
        it = rec.intent
        if not it.mode:
            rec.intent = replace(it, mode=before.get(it.symbol, default))
            adopted.append(it.intent_id)
    return adopted


def without_off(snap: Snapshot, running: Mapping[str, str]) -> None:
    """Leave the symbols that are off out of the snapshot (flat, see
    ``check_mode_change``): the engine does not hold them, their rows stay in the store."""
    for sym in [s for s in snap.symbols if s not in running]:
        del snap.symbols[sym]
    snap.orders = [r for r in snap.orders if r.intent.symbol in running]
