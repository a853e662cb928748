"""A phase's deadline, read from the timeout rules of ``fsm.table.TIMEOUTS``."""

from __future__ import annotations

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
