"""The transition table: the single source of truth for how a symbol's phase changes.

``(phase, event) -> (next phase, action)``. Nothing else assigns a phase; an event with no
row is rejected. The table is data, so it can be printed, drawn and checked.
"""

from __future__ import annotations

from collections import deque
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
    (P.ENTRY_EVAL, E.TIMEOUT): Row(P.IDLE, A.BLOCK_ENTRY),
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
    (P.EXIT_EVAL, E.EXIT_CONFIRMED): Row(P.PLACE_SELL, A.SUBMIT_SELL),
    (P.EXIT_EVAL, E.EXIT_HOLD): Row(P.POSITION, A.RESUME_POSITION),
    (P.EXIT_EVAL, E.TIMEOUT): Row(P.POSITION, A.RESUME_POSITION),
    (P.PLACE_SELL, E.SELL_PLACED): Row(P.WAIT_SELL_FILL, A.CHECK_SELL),
    (P.PLACE_SELL, E.SELL_BLOCKED): Row(P.POSITION, A.RESUME_POSITION),
    (P.PLACE_SELL, E.SELL_FILLED): Row(P.POST_TRADE, A.RECORD_TRADE),
    (P.PLACE_SELL, E.TIMEOUT): Row(P.POSITION, A.RESUME_POSITION),
    (P.WAIT_SELL_FILL, E.SELL_FILLED): Row(P.POST_TRADE, A.RECORD_TRADE),
    (P.WAIT_SELL_FILL, E.SELL_PARTIAL): Row(P.PLACE_SELL, A.SUBMIT_SELL),
    (P.WAIT_SELL_FILL, E.SELL_UNFILLED): Row(P.PLACE_SELL, A.SUBMIT_SELL),
    (P.WAIT_SELL_FILL, E.TIMEOUT): Row(P.WAIT_SELL_FILL, A.CANCEL_SELL),
    (P.POST_TRADE, E.TRADE_RECORDED): Row(P.COOLDOWN, A.START_COOLDOWN),
    (P.POST_TRADE, E.TIMEOUT): Row(P.COOLDOWN, A.START_COOLDOWN),
    (P.COOLDOWN, E.TIMEOUT): Row(P.IDLE, A.NONE),
    (P.ERROR, E.TIMEOUT): Row(P.IDLE, A.LEAVE_ERROR),
    (P.ERROR, E.RECOVER): Row(P.IDLE, A.LEAVE_ERROR),
}
# Any phase can fault; the fault row of ERROR keeps it there with a longer backoff.
for _phase in Phase:
    TABLE[(_phase, E.FAULT)] = Row(P.ERROR, A.ENTER_ERROR)

# Phases that wait on something (an order, a timer, the exchange) and so must time out.
# IDLE waits for nothing: it only reacts to prices.
WAITING_PHASES: frozenset[Phase] = frozenset(p for p in Phase if p is not P.IDLE)


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
    for phase in WAITING_PHASES:
        if (phase, E.TIMEOUT) not in TABLE:
            problems.append(f"waiting phase {phase} has no TIMEOUT row")
    for (src, event), row in TABLE.items():
        if src is P.ERROR and row.next not in (P.IDLE, P.ERROR):
            problems.append(f"ERROR --{event}--> {row.next}: ERROR must return to IDLE")
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
    return "\n".join(lines)


def render_mermaid() -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {P.WARMUP}"]
    for (src, event), row in TABLE.items():
        if event is E.FAULT and src is not P.ERROR:
            continue
        lines.append(f"    {src} --> {row.next}: {event}")
    lines.append(f"    note right of {P.ERROR}: every phase --FAULT--> ERROR")
    return "\n".join(lines)
