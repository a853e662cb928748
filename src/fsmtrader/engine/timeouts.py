"""A phase's deadline, read from the timeout rules of ``fsm.table.TIMEOUTS``, and the
engine's heap of armed timeouts."""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from fsmtrader.engine.policy import TimeoutPolicy
from fsmtrader.fsm.machine import Transition
from fsmtrader.fsm.phases import Event
from fsmtrader.fsm.table import TIMEOUTS, Adjust, Since
from fsmtrader.portfolio import Position
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.symbol import SymbolState


def deadline(
    st: SymbolState,
    t: Transition | None,
    now: int,
    active: OrderRecord | None,
    position: Position | None,
    p: TimeoutPolicy,
) -> int | None:
    """When the phase ``st`` is now in times out (None: it never does). ``t`` is the
    transition that just happened (None after a restore)."""
    rule = TIMEOUTS.get(st.phase)
    if rule is None:
        return None
    if t is not None and rule.retry is not None and t.event is Event.TIMEOUT and t.src is t.dst:
        return now + p.ms(rule.retry)  # try the cancel again
    if rule.since is Since.POSITION_OPENED:
        start = position.entry_ms if position is not None else now
    else:
        start = st.entered_ms
    at = start + p.ms(rule.delay, st.error_count)
    for adjust in rule.adjust:
        if adjust is Adjust.PARTIAL_FILL:
            if active is not None and active.filled > 0:
                at = min(at, now + p.partial_fill_ms)
        elif adjust is Adjust.IOC_LEFT_OPEN:
            if active is not None and active.live and active.intent.time_in_force == "IOC":
                at = min(at, now + p.ioc_ttl_ms)
        elif adjust is Adjust.LATE_RETURN:
            if t is not None and t.src is not st.phase and at <= now:
                at = now + p.block_ms
        else:  # Adjust.EXIT_BLOCK
            at = max(at, st.exit_block_until)
    return at


def live_top(timers: list[tuple[int, int, str]], states: Mapping[str, SymbolState]) -> int | None:
    """The due of the first live timeout in the engine's heap of (due, seq, symbol),
    dropping the stale ones above it: armed in a phase the symbol has left (its seq
    moved on, and a seq never comes back). A driver then does not stop for one:
    ``Engine.run_timers`` would pop it and do nothing but move the clock to it, which
    the next live timer, or the ``now`` it runs to, moves anyway."""
    while timers and states[timers[0][2]].seq != timers[0][1]:
        heapq.heappop(timers)
    return timers[0][0] if timers else None
