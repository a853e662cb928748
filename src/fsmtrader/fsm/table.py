"""The transition table: the single source of truth for how a symbol's phase changes.

``(phase, event) -> (next phase, action)``. Nothing else assigns a phase; an event with no
row is rejected. Beside it, as data too: how long each phase may last (``TIMEOUTS``), which
phases are only passed through (``TRANSIENT``), what a bar means in each phase
(``ON_BAR``) and which phases hold a position slot (``HOLDING``). The table is data, so
it can be printed, drawn and checked.
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum
from typing import NamedTuple

from fsmtrader.fsm.phases import Action, Event, Phase

P, E, A = Phase, Event, Action


class Row(NamedTuple):
    next: Phase
    action: Action


TABLE: dict[tuple[Phase, Event], Row] = {
    (P.WARMUP, E.WARMUP_DONE): Row(P.IDLE, A.NONE),
    (P.WARMUP, E.TIMEOUT): Row(P.IDLE, A.NONE),
    (P.IDLE, E.SIGNAL): Row(P.ENTRY_EVAL, A.EVALUATE_ENTRY),
    (P.IDLE, E.HAS_POSITION): Row(P.POSITION, A.RESUME_POSITION),
    (P.ENTRY_EVAL, E.GUARDS_PASSED): Row(P.PLACE_BUY, A.SUBMIT_BUY),
    (P.ENTRY_EVAL, E.GUARDS_BLOCKED): Row(P.IDLE, A.BLOCK_ENTRY),
    (P.ENTRY_EVAL, E.OBSERVED): Row(P.IDLE, A.BLOCK_ENTRY),
    (P.PLACE_BUY, E.BUY_PLACED): Row(P.WAIT_FILL, A.CHECK_BUY),
    (P.PLACE_BUY, E.BUY_ABORTED): Row(P.IDLE, A.ABANDON_BUY),
    (P.PLACE_BUY, E.BUY_FILLED): Row(P.POSITION, A.OPEN_POSITION),
    (P.PLACE_BUY, E.TIMEOUT): Row(P.IDLE, A.ABANDON_BUY),
    (P.WAIT_FILL, E.BUY_PARTIAL): Row(P.WAIT_FILL, A.CHECK_BUY),
    (P.WAIT_FILL, E.BUY_FILLED): Row(P.POSITION, A.OPEN_POSITION),
    (P.WAIT_FILL, E.BUY_ESCALATE): Row(P.PLACE_BUY, A.SUBMIT_BUY),
    (P.WAIT_FILL, E.BUY_CANCELED): Row(P.IDLE, A.ABANDON_BUY),
    (P.WAIT_FILL, E.TIMEOUT): Row(P.WAIT_FILL, A.CANCEL_BUY),
    (P.POSITION, E.EXIT_SIGNAL): Row(P.EXIT_EVAL, A.EVALUATE_EXIT),
    (P.POSITION, E.TIMEOUT): Row(P.EXIT_EVAL, A.EVALUATE_EXIT),
    # The protective stop (engine/protect.py) sold the position: found while holding (a
    # poll, a restart), by the cancel that comes before an exit's first sell, or on the
    # way back to IDLE.
    (P.POSITION, E.STOP_FILLED): Row(P.POST_TRADE, A.RECORD_TRADE),
    (P.PLACE_SELL, E.STOP_FILLED): Row(P.POST_TRADE, A.RECORD_TRADE),
    (P.IDLE, E.STOP_FILLED): Row(P.POST_TRADE, A.RECORD_TRADE),  # it sold during ERROR
    (P.EXIT_EVAL, E.EXIT_CONFIRMED): Row(P.PLACE_SELL, A.SUBMIT_SELL),
    (P.EXIT_EVAL, E.EXIT_HOLD): Row(P.POSITION, A.RESUME_POSITION),
    (P.PLACE_SELL, E.SELL_PLACED): Row(P.WAIT_SELL_FILL, A.CHECK_SELL),
    (P.PLACE_SELL, E.SELL_BLOCKED): Row(P.POSITION, A.RESUME_POSITION),
    (P.PLACE_SELL, E.SELL_FILLED): Row(P.POST_TRADE, A.RECORD_TRADE),
    (P.PLACE_SELL, E.TIMEOUT): Row(P.POSITION, A.RESUME_POSITION),
    (P.WAIT_SELL_FILL, E.SELL_FILLED): Row(P.POST_TRADE, A.RECORD_TRADE),
    (P.WAIT_SELL_FILL, E.SELL_PARTIAL): Row(P.PLACE_SELL, A.SUBMIT_SELL),
    (P.WAIT_SELL_FILL, E.SELL_UNFILLED): Row(P.PLACE_SELL, A.SUBMIT_SELL),
    (P.WAIT_SELL_FILL, E.TIMEOUT): Row(P.WAIT_SELL_FILL, A.CANCEL_SELL),
    (P.POST_TRADE, E.TRADE_RECORDED): Row(P.COOLDOWN, A.START_COOLDOWN),
    (P.COOLDOWN, E.TIMEOUT): Row(P.IDLE, A.NONE),
    (P.ERROR, E.TIMEOUT): Row(P.IDLE, A.LEAVE_ERROR),
    (P.ERROR, E.RECOVER): Row(P.IDLE, A.LEAVE_ERROR),
}
# Any phase can fault; the fault row of ERROR keeps it there with a longer backoff.
for _phase in Phase:
    TABLE[(_phase, E.FAULT)] = Row(P.ERROR, A.ENTER_ERROR)

# Decision phases: the action of the row that enters one always fires the event that
# leaves it, within the same stimulus, so a symbol is never at rest (or saved) in one.
# They need no timeout (a guard that blocks is an event, not a wait).
TRANSIENT: frozenset[Phase] = frozenset({P.ENTRY_EVAL, P.EXIT_EVAL, P.POST_TRADE})


class Delay(StrEnum):
    """A duration of the timeout policy (the engine's TimeoutPolicy gives each a value)."""

    WARMUP = "warmup"  # timeouts.warmup_timeout_s
    BUY_FILL = "buy_fill"  # timeouts.buy_fill_timeout_s
    PARTIAL_FILL = "partial_fill"  # timeouts.partial_fill_stuck_s
    SELL_FILL = "sell_fill"  # timeouts.sell_fill_timeout_s
    IOC_TTL = "ioc_ttl"  # timeouts.exit_ioc_ttl_ms
    MAX_HOLD = "max_hold"  # exit.max_hold_min
    COOLDOWN = "cooldown"  # exit.cooldown_s
    BLOCK = "block"  # entry.entry_block_cooldown_s
    ERROR_BACKOFF = "error_backoff"  # errors.backoff_base_s doubling up to backoff_max_s


class Since(StrEnum):
    """What a phase's deadline counts from."""

    ENTERED = "entered"  # the phase was entered
    POSITION_OPENED = "position_opened"  # the position's first fill (else now)


class Adjust(StrEnum):
    """Corrections of a deadline, applied in the rule's order."""

    # a partly filled buy must not sit for long: at most PARTIAL_FILL from now
    PARTIAL_FILL = "partial_fill"
    # an IOC the venue reports open (MEXC, ccxt issue 25003): cancel it after IOC_TTL
    IOC_LEFT_OPEN = "ioc_left_open"
    # back in the phase past its deadline (exit blocked, no quote): wait BLOCK from now
    # before the timed exit tries again, instead of firing at once, forever
    LATE_RETURN = "late_return"
    # never before the exit block ends
    EXIT_BLOCK = "exit_block"


class TimeoutRule(NamedTuple):
    delay: Delay
    since: Since = Since.ENTERED
    adjust: tuple[Adjust, ...] = ()
    # after a TIMEOUT row that keeps the phase (a cancel to try again): the next try is
    # this long from now (a deadline counted from entering would be due at once)
    retry: Delay | None = None


# One rule per phase that waits on something (an order, a timer, the exchange).
# IDLE waits for nothing (it only reacts to prices); TRANSIENT phases are never at rest.
TIMEOUTS: dict[Phase, TimeoutRule] = {
    P.WARMUP: TimeoutRule(Delay.WARMUP),
    P.PLACE_BUY: TimeoutRule(Delay.BUY_FILL),
    P.WAIT_FILL: TimeoutRule(
        Delay.BUY_FILL, adjust=(Adjust.PARTIAL_FILL, Adjust.IOC_LEFT_OPEN), retry=Delay.BUY_FILL
    ),
    P.POSITION: TimeoutRule(
        Delay.MAX_HOLD, Since.POSITION_OPENED, (Adjust.LATE_RETURN, Adjust.EXIT_BLOCK)
    ),
    P.PLACE_SELL: TimeoutRule(Delay.SELL_FILL),
    P.WAIT_SELL_FILL: TimeoutRule(Delay.IOC_TTL, retry=Delay.BUY_FILL),
    P.COOLDOWN: TimeoutRule(Delay.COOLDOWN),
    P.ERROR: TimeoutRule(Delay.ERROR_BACKOFF),
}
# Phases that wait on something and so must time out.
WAITING_PHASES: frozenset[Phase] = frozenset(p for p in Phase if p is not P.IDLE) - TRANSIENT


class BarCheck(StrEnum):
    """What a new bar of a symbol's price means in its phase."""

    WARM = "warm"  # the anchor window filled: WARMUP_DONE
    ENTRY = "entry"  # a drop below the anchor: SIGNAL (unless entries are blocked or halted)
    EXIT = "exit"  # take-profit, stop-loss or trailing stop: EXIT_SIGNAL
    POLL = "poll"  # ask the venue about the order in flight


ON_BAR: dict[Phase, BarCheck] = {
    P.WARMUP: BarCheck.WARM,
    P.IDLE: BarCheck.ENTRY,
    P.POSITION: BarCheck.EXIT,
    P.WAIT_FILL: BarCheck.POLL,
    P.WAIT_SELL_FILL: BarCheck.POLL,
}

# Phases in which a symbol holds, or is acquiring, a position: they use a slot (so does a
# held position or an order in flight in any phase).
HOLDING: frozenset[Phase] = frozenset(
    {P.PLACE_BUY, P.WAIT_FILL, P.POSITION, P.EXIT_EVAL, P.PLACE_SELL, P.WAIT_SELL_FILL}
)
# Phases that may last long by design (their own timers end them, or nothing waits): the
# rest hold a slot or are transient, so a symbol long in one of those is stuck.
LONG_BY_DESIGN: frozenset[Phase] = frozenset(Phase) - HOLDING - TRANSIENT


def lookup(phase: Phase, event: Event) -> Row | None:
    return TABLE.get((phase, event))


def reachable(start: Phase = P.WARMUP) -> set[Phase]:
    seen = {start}
    todo = deque([start])
    while todo:
        here = todo.popleft()
        for (src, _), row in TABLE.items():
            if src is here and row.next not in seen:
                seen.add(row.next)
                todo.append(row.next)
    return seen


def check_table() -> list[str]:
    """Structural problems of the table; empty means sound. Run by the tests and `fsm`."""
    problems: list[str] = []
    for phase in sorted(set(Phase) - reachable(), key=list(Phase).index):
        problems.append(f"{phase} is unreachable from WARMUP")
    for phase in Phase:
        exits = {row.next for (src, _), row in TABLE.items() if src is phase} - {phase}
        if not exits:
            problems.append(f"{phase} is a dead end (no row leaves it)")
        if P.IDLE not in reachable(phase):
            problems.append(f"{phase} can never return to IDLE")
    problems += _timeout_problems()
    for (src, event), row in TABLE.items():
        if src is P.ERROR and row.next not in (P.IDLE, P.ERROR):
            problems.append(f"ERROR --{event}--> {row.next}: ERROR must return to IDLE")
    return problems


def _timeout_problems() -> list[str]:
    """The timeout policy against the table: a rule for every waiting phase, a TIMEOUT row
    for every rule, none for IDLE or a transient phase, a retry for every self-loop."""
    problems: list[str] = []
    for phase in Phase:
        rule = TIMEOUTS.get(phase)
        row = TABLE.get((phase, E.TIMEOUT))
        waits = phase is not P.IDLE and phase not in TRANSIENT
        if waits and rule is None:
            problems.append(f"waiting phase {phase} has no timeout rule")
        if rule is not None and row is None:
            problems.append(f"waiting phase {phase} has no TIMEOUT row")
        if not waits and (rule is not None or row is not None):
            what = "IDLE" if phase is P.IDLE else f"transient phase {phase}"
            problems.append(f"{what} must not time out (it never waits)")
        if rule is not None and row is not None:
            loops = row.next is phase
            if loops and rule.retry is None:
                problems.append(f"{phase} --TIMEOUT--> {phase} needs a retry delay")
            if rule.retry is not None and not loops:
                problems.append(f"{phase} has a retry delay but its TIMEOUT row leaves it")
    for phase in ON_BAR:
        if phase in TRANSIENT:
            problems.append(f"transient phase {phase} cannot see a bar")
    return problems


def render_table() -> str:
    width = max(len(p) for p in Phase) + 1
    ev_width = max(len(e) for e in Event) + 1
    lines = [f"{'phase':<{width}} {'event':<{ev_width}} {'next':<{width}} action"]
    for (src, event), row in TABLE.items():
        if event is E.FAULT and src is not P.ERROR:
            continue
        lines.append(f"{src:<{width}} {event:<{ev_width}} {row.next:<{width}} {row.action}")
    lines.append(f"{'*':<{width}} {E.FAULT:<{ev_width}} {P.ERROR:<{width}} {A.ENTER_ERROR}")
    return "\n".join(lines) + "\n\n" + render_timeouts()


def render_timeouts() -> str:
    """The timeout policy, one line per phase (what `fsmtrader fsm` prints under the table)."""
    width = max(len(p) for p in Phase) + 1
    lines = ["timeouts:"]
    for phase in Phase:
        rule = TIMEOUTS.get(phase)
        if rule is None:
            why = "transient (never at rest)" if phase in TRANSIENT else "waits for nothing"
            lines.append(f"  {phase:<{width}} none: {why}")
            continue
        text = f"{rule.delay} after {rule.since}"
        if rule.adjust:
            text += ", then " + ", ".join(rule.adjust)
        if rule.retry is not None:
            text += f"; retry after {rule.retry}"
        lines.append(f"  {phase:<{width}} {text}")
    return "\n".join(lines)


def render_mermaid() -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {P.WARMUP}"]
    for (src, event), row in TABLE.items():
        if event is E.FAULT and src is not P.ERROR:
            continue
        lines.append(f"    {src} --> {row.next}: {event}")
    lines.append(f"    note right of {P.ERROR}: every phase --FAULT--> ERROR")
    return "\n".join(lines)
