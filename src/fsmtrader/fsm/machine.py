"""Running the table: the pure step function, and event idempotency.

``step`` is a pure function of (state, event, time) that returns the transition to apply;
``SymbolMachine.fire`` applies it and publishes it. A replay of the same events therefore
yields the same phases; the rest of a ``SymbolState`` is set by the shell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fsmtrader.errors import Rejected
from fsmtrader.fsm.phases import Action, Event, Phase
from fsmtrader.fsm.table import lookup
from fsmtrader.state.records import PhaseRecord
from fsmtrader.state.symbol import SymbolState


@dataclass(frozen=True, slots=True)
class Transition:
    symbol: str
    seq: int
    ts: int
    src: Phase
    event: Event
    dst: Phase
    action: Action
    decision_id: str
    reason: str

    def to_record(self) -> PhaseRecord:
        # (``_value_``: the member's plain str, as ``.value`` gives it without the enum
        # descriptor's call: four per phase change of every symbol)
        return {
            "kind": "phase",
            "ts": self.ts,
            "symbol": self.symbol,
            "seq": self.seq,
            "from": self.src._value_,
            "event": self.event._value_,
            "to": self.dst._value_,
            "action": self.action._value_,
            "decision_id": self.decision_id,
            "reason": self.reason,
        }


def step(state: SymbolState, event: Event, now_ms: int, reason: str = "") -> Transition:
    """The pure core: which transition ``event`` causes, without changing ``state``."""
    row = lookup(state.phase, event)
    if row is None:
        raise Rejected(f"{state.symbol}: no transition for {event} in {state.phase}")
    return Transition(
        symbol=state.symbol,
        seq=state.seq + 1,
        ts=now_ms,
        src=state.phase,
        event=event,
        dst=row.next,
        action=row.action,
        decision_id=state.decision_id,
        reason=reason,
    )


def apply(state: SymbolState, t: Transition) -> None:
    state.seq = t.seq
    if t.dst is not t.src:
        state.entered_ms = t.ts
        state.stuck_alerted = False
    state.phase = t.dst
    state.history.append((t.ts, t.src._value_, t.event._value_, t.dst._value_))


class IdempotencyGuard:
    """Drops an event whose fingerprint was seen within ``expiry_ms`` (a duplicate fill
    report, a signal delivered twice). Memory is bounded by pruning expired entries."""

    __slots__ = ("_expiry", "_next_prune", "_seen")

    def __init__(self, expiry_ms: int) -> None:
        self._expiry = expiry_ms
        self._seen: dict[tuple[str, str, str], int] = {}
        self._next_prune = 0

    def seen(self, symbol: str, event: Event, key: str, now_ms: int) -> bool:
        """Whether this fingerprint was accepted within the expiry (does not record it)."""
        if now_ms >= self._next_prune:
            self._seen = {k: t for k, t in self._seen.items() if t > now_ms}
            self._next_prune = now_ms + self._expiry
        expires = self._seen.get((symbol, event.value, key))
        return expires is not None and expires > now_ms

    def remember(self, symbol: str, event: Event, key: str, now_ms: int) -> None:
        self._seen[(symbol, event.value, key)] = now_ms + self._expiry

    def __len__(self) -> int:
        return len(self._seen)


Listener = Callable[[Transition], None]
RejectListener = Callable[[str, Phase, Event, str], None]


class SymbolMachine:
    """Applies table transitions to symbol states and tells the listener about each one."""

    def __init__(
        self,
        on_transition: Listener,
        on_rejected: RejectListener,
        idempotency_expiry_ms: int,
    ) -> None:
        self._on_transition = on_transition
        self._on_rejected = on_rejected
        self.guard = IdempotencyGuard(idempotency_expiry_ms)
        self.rejected = 0
        self.duplicates = 0

    def fire(
        self,
        state: SymbolState,
        event: Event,
        now_ms: int,
        reason: str = "",
        dedupe_key: str | None = None,
    ) -> Transition | None:
        """Apply ``event``; returns the transition, or None if it was rejected or a duplicate."""
        if dedupe_key is not None and self.guard.seen(state.symbol, event, dedupe_key, now_ms):
            self.duplicates += 1
            return None
        try:
            t = step(state, event, now_ms, reason)
        except Rejected as exc:
            self.rejected += 1
            self._on_rejected(state.symbol, state.phase, event, str(exc))
            return None
        apply(state, t)
        if dedupe_key is not None:  # only an accepted event claims its fingerprint
            self.guard.remember(state.symbol, event, dedupe_key, now_ms)
        self._on_transition(t)
        return t


def error_backoff_ms(error_count: int, base_s: float, max_s: float) -> int:
    """ERROR waits base, 2*base, 4*base, ... up to max (10 s -> 300 s by default)."""
    n = max(error_count - 1, 0)
    return int(min(base_s * (2 ** min(n, 30)), max_s) * 1000)
