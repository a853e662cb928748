"""The transition table (structure, checks, rendering) and the machine that runs it."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fsmtrader.fsm.table as table_mod
from fsmtrader.config import ErrorSettings
from fsmtrader.errors import Rejected
from fsmtrader.fsm.machine import (
    IdempotencyGuard,
    SymbolMachine,
    Transition,
    error_backoff_ms,
    step,
)
from fsmtrader.fsm.phases import Action, Event, Phase
from fsmtrader.fsm.table import (
    LONG_BY_DESIGN,
    ON_BAR,
    TABLE,
    TIMEOUTS,
    TRANSIENT,
    WAITING_PHASES,
    BarCheck,
    Delay,
    Row,
    TimeoutRule,
    check_table,
    lookup,
    reachable,
    render_mermaid,
    render_table,
)
from fsmtrader.orders.intent import make_decision_id
from fsmtrader.state.symbol import HISTORY_LEN, SymbolState

P, E = Phase, Event

REQUIRED_PHASES = [
    "WARMUP",
    "IDLE",
    "ENTRY_EVAL",
    "PLACE_BUY",
    "WAIT_FILL",
    "POSITION",
    "EXIT_EVAL",
    "PLACE_SELL",
    "WAIT_SELL_FILL",
    "POST_TRADE",
    "COOLDOWN",
    "ERROR",
]


def accept(g: IdempotencyGuard, symbol: str, event: Event, key: str, now: int) -> bool:
    """How the machine uses the guard: a duplicate is reported; a new event is remembered."""
    dup = g.seen(symbol, event, key, now)
    if not dup:
        g.remember(symbol, event, key, now)
    return dup


def successors(table: dict[tuple[Phase, Event], Row], phase: Phase) -> set[Phase]:
    return {row.next for (src, _), row in table.items() if src is phase}


def closure(table: dict[tuple[Phase, Event], Row], start: Phase) -> set[Phase]:
    """Independent reachability (DFS over the given table)."""
    seen = {start}
    stack = [start]
    while stack:
        for nxt in successors(table, stack.pop()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


# --- the table ----------------------------------------------------------------------------


def test_exactly_the_twelve_required_phases() -> None:
    assert [p.value for p in Phase] == REQUIRED_PHASES
    assert len(set(Phase)) == 12


def test_table_is_sound() -> None:
    assert check_table() == []


def test_all_phases_reachable_from_warmup() -> None:
    assert reachable() == set(Phase)
    assert reachable(P.WARMUP) == closure(TABLE, P.WARMUP) == set(Phase)


def test_table_rows_are_well_typed() -> None:
    for (src, event), row in TABLE.items():
        assert isinstance(src, Phase) and isinstance(event, Event)
        assert isinstance(row.next, Phase) and isinstance(row.action, Action)
        assert lookup(src, event) == row


@pytest.mark.parametrize("phase", list(Phase))
def test_no_dead_end(phase: Phase) -> None:
    assert successors(TABLE, phase) - {phase}, f"{phase} has no way out"


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_can_reach_idle(phase: Phase) -> None:
    assert P.IDLE in closure(TABLE, phase)


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_faults_to_error(phase: Phase) -> None:
    assert TABLE[(phase, E.FAULT)] == Row(P.ERROR, Action.ENTER_ERROR)


def test_waiting_phases_have_timeouts() -> None:
    assert P.IDLE not in WAITING_PHASES
    assert {P.WAIT_FILL, P.WAIT_SELL_FILL, P.COOLDOWN, P.ERROR} <= WAITING_PHASES
    for phase in WAITING_PHASES:
        assert (phase, E.TIMEOUT) in TABLE, phase


def test_error_only_returns_to_idle() -> None:
    out = {(ev, row.next) for (src, ev), row in TABLE.items() if src is P.ERROR}
    assert {nxt for _, nxt in out} <= {P.IDLE, P.ERROR}
    assert (E.RECOVER, P.IDLE) in out and (E.TIMEOUT, P.IDLE) in out


def test_lookup_of_missing_row_is_none() -> None:
    assert lookup(P.IDLE, E.SELL_FILLED) is None
    assert lookup(P.WARMUP, E.SIGNAL) is None


# --- check_table detects problems ---------------------------------------------------------


Table = dict[tuple[Phase, Event], Row]


def problems_with(monkeypatch: pytest.MonkeyPatch, table: Table) -> list[str]:
    """check_table() run against a modified copy; the real table is restored afterwards."""
    with monkeypatch.context() as mp:
        mp.setattr(table_mod, "TABLE", table)
        problems = check_table()
    assert table_mod.TABLE is TABLE
    assert check_table() == []
    return problems


def test_check_table_reports_missing_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    t = dict(TABLE)
    del t[(P.COOLDOWN, E.TIMEOUT)]
    problems = problems_with(monkeypatch, t)
    assert any("COOLDOWN" in p and "TIMEOUT" in p for p in problems), problems


def test_check_table_reports_unreachable_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    t = dict(TABLE)
    t[(P.POST_TRADE, E.TRADE_RECORDED)] = Row(P.IDLE, Action.NONE)
    t[(P.POST_TRADE, E.TIMEOUT)] = Row(P.IDLE, Action.NONE)
    assert P.COOLDOWN not in closure(t, P.WARMUP)
    problems = problems_with(monkeypatch, t)
    assert any("COOLDOWN" in p and "unreachable" in p for p in problems), problems


def test_check_table_reports_dead_end_and_no_way_home(monkeypatch: pytest.MonkeyPatch) -> None:
    t = {k: v for k, v in TABLE.items() if k[0] is not P.COOLDOWN}
    problems = problems_with(monkeypatch, t)
    assert any("COOLDOWN" in p and "dead end" in p for p in problems), problems
    assert any("COOLDOWN" in p and "IDLE" in p for p in problems), problems


def test_check_table_reports_error_escaping(monkeypatch: pytest.MonkeyPatch) -> None:
    t = dict(TABLE)
    t[(P.ERROR, E.HAS_POSITION)] = Row(P.POSITION, Action.RESUME_POSITION)
    problems = problems_with(monkeypatch, t)
    assert any("ERROR" in p and "POSITION" in p for p in problems), problems


# --- rendering ----------------------------------------------------------------------------


def test_render_table_lists_every_row() -> None:
    rows = {tuple(line.split()) for line in render_table().splitlines()[1:]}
    for (src, event), row in TABLE.items():
        if event is E.FAULT and src is not P.ERROR:
            continue  # folded into the wildcard line
        assert (src.value, event.value, row.next.value, row.action.value) in rows
    assert ("*", "FAULT", "ERROR", "ENTER_ERROR") in rows
    assert ("ERROR", "FAULT", "ERROR", "ENTER_ERROR") in rows


def test_render_mermaid_has_every_edge() -> None:
    text = render_mermaid()
    assert text.startswith("stateDiagram-v2")
    lines = {line.strip() for line in text.splitlines()}
    assert "[*] --> WARMUP" in lines
    for (src, event), row in TABLE.items():
        if event is E.FAULT:
            continue
        assert f"{src.value} --> {row.next.value}: {event.value}" in lines


# --- the machine --------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.transitions: list[Transition] = []
        self.rejects: list[tuple[str, Phase, Event, str]] = []

    def on_transition(self, t: Transition) -> None:
        self.transitions.append(t)

    def on_rejected(self, symbol: str, phase: Phase, event: Event, msg: str) -> None:
        self.rejects.append((symbol, phase, event, msg))


def make_machine(expiry_ms: int = 1_000) -> tuple[SymbolMachine, Recorder]:
    rec = Recorder()
    return SymbolMachine(rec.on_transition, rec.on_rejected, expiry_ms), rec


def snapshot(s: SymbolState) -> tuple[Any, ...]:
    return (
        s.symbol,
        s.phase,
        s.entered_ms,
        s.seq,
        s.decision_id,
        s.step,
        s.exit_reason,
        s.error_count,
        s.last_error,
        s.entry_block_until,
        s.stuck_alerted,
        list(s.history),
    )


def test_step_is_pure() -> None:
    s = SymbolState("BTC/USDT", phase=P.IDLE, entered_ms=5, seq=7, decision_id="d1")
    s.history.append((5, "WARMUP", "WARMUP_DONE", "IDLE"))
    before = snapshot(s)
    t = step(s, E.SIGNAL, 1_000, "why")
    assert snapshot(s) == before
    assert (t.src, t.event, t.dst, t.action) == (
        P.IDLE,
        E.SIGNAL,
        P.ENTRY_EVAL,
        Action.EVALUATE_ENTRY,
    )
    assert (t.seq, t.ts, t.decision_id, t.reason, t.symbol) == (8, 1_000, "d1", "why", "BTC/USDT")
    assert step(s, E.SIGNAL, 1_000, "why") == t  # deterministic
    with pytest.raises(Rejected):
        step(s, E.SELL_FILLED, 1_000)
    assert snapshot(s) == before


def test_fire_applies_the_row() -> None:
    m, rec = make_machine()
    s = SymbolState("ETH/USDT")
    t = m.fire(s, E.WARMUP_DONE, 100, "warm")
    assert t is not None and rec.transitions == [t]
    assert s.phase is P.IDLE and s.seq == 1 and s.entered_ms == 100
    assert list(s.history) == [(100, "WARMUP", "WARMUP_DONE", "IDLE")]
    assert t.to_record()["to"] == "IDLE" and t.to_record()["from"] == "WARMUP"


def test_fire_rejects_event_without_row() -> None:
    m, rec = make_machine()
    s = SymbolState("ETH/USDT", phase=P.IDLE, entered_ms=50, seq=3)
    before = snapshot(s)
    assert m.fire(s, E.BUY_FILLED, 100) is None
    assert snapshot(s) == before
    assert m.rejected == 1 and m.duplicates == 0
    assert rec.transitions == []
    assert len(rec.rejects) == 1
    sym, phase, event, msg = rec.rejects[0]
    assert (sym, phase, event) == ("ETH/USDT", P.IDLE, E.BUY_FILLED)
    assert "BUY_FILLED" in msg
    assert m.fire(s, E.SELL_PLACED, 101) is None
    assert m.rejected == 2 and s.phase is P.IDLE


def test_dedupe_drops_duplicates_within_expiry() -> None:
    m, rec = make_machine(expiry_ms=1_000)
    s = SymbolState("ETH/USDT", phase=P.WAIT_FILL, entered_ms=0)
    assert m.fire(s, E.BUY_PARTIAL, 10, dedupe_key="trade-1") is not None
    assert m.fire(s, E.BUY_PARTIAL, 500, dedupe_key="trade-1") is None
    assert m.fire(s, E.BUY_PARTIAL, 1_009, dedupe_key="trade-1") is None
    assert m.duplicates == 2 and s.seq == 1
    # another key, or the same key for another event, is not a duplicate
    assert m.fire(s, E.BUY_PARTIAL, 600, dedupe_key="trade-2") is not None
    assert s.seq == 2
    # after the expiry the key is accepted again
    assert m.fire(s, E.BUY_PARTIAL, 1_010, dedupe_key="trade-1") is not None
    assert s.seq == 3 and m.duplicates == 2
    assert len(rec.transitions) == 3


def test_dedupe_is_per_symbol_and_event() -> None:
    g = IdempotencyGuard(1_000)
    assert not accept(g, "A/USDT", E.BUY_FILLED, "k", 0)
    assert accept(g, "A/USDT", E.BUY_FILLED, "k", 1)
    assert not accept(g, "B/USDT", E.BUY_FILLED, "k", 2)
    assert not accept(g, "A/USDT", E.SELL_FILLED, "k", 3)


def test_guard_expiry_boundary_without_a_prune_in_between() -> None:
    g = IdempotencyGuard(1_000)
    assert not accept(g, "A/USDT", E.BUY_FILLED, "other", 0)  # prunes; next prune at 1000
    assert not accept(g, "A/USDT", E.BUY_FILLED, "k", 500)
    assert not accept(g, "A/USDT", E.BUY_FILLED, "other2", 1_000)  # prunes; next at 2000
    assert accept(g, "A/USDT", E.BUY_FILLED, "k", 1_499)  # still within the expiry
    assert not accept(g, "A/USDT", E.BUY_FILLED, "k", 1_500)  # expired: accepted again
    assert accept(g, "A/USDT", E.BUY_FILLED, "k", 1_501)  # and remembered anew


def test_idempotency_guard_memory_is_bounded() -> None:
    expiry = 100
    g = IdempotencyGuard(expiry)
    peak = 0
    for i in range(10_000):
        now = i * 3
        assert not accept(g, "X/USDT", E.BUY_PARTIAL, f"k{i}", now)
        peak = max(peak, len(g))
    # only keys younger than ~2 expiry windows may be kept (one arrives every 3 ms)
    assert peak <= 2 * expiry // 3 + 2, peak
    assert len(g) < 100


def test_history_is_bounded() -> None:
    m, _ = make_machine()
    s = SymbolState("ETH/USDT", phase=P.WAIT_FILL)
    n = HISTORY_LEN * 3 + 1
    for i in range(n):
        assert m.fire(s, E.BUY_PARTIAL, i) is not None
    assert len(s.history) == HISTORY_LEN
    assert s.history[-1] == (n - 1, "WAIT_FILL", "BUY_PARTIAL", "WAIT_FILL")
    assert s.history[0][0] == n - HISTORY_LEN
    assert s.seq == n


def test_self_loop_keeps_entered_ms_and_change_updates_it() -> None:
    m, _ = make_machine()
    s = SymbolState("ETH/USDT", phase=P.WAIT_FILL, entered_ms=1_000, stuck_alerted=True)
    m.fire(s, E.BUY_PARTIAL, 2_000)
    m.fire(s, E.TIMEOUT, 3_000)  # WAIT_FILL --TIMEOUT--> WAIT_FILL (cancel)
    assert (s.phase, s.entered_ms, s.stuck_alerted) == (P.WAIT_FILL, 1_000, True)
    m.fire(s, E.BUY_FILLED, 4_000)
    assert (s.phase, s.entered_ms, s.stuck_alerted) == (P.POSITION, 4_000, False)


def test_error_backoff_doubles_up_to_the_cap() -> None:
    er = ErrorSettings()
    base, cap = er.backoff_base_s, er.backoff_max_s
    assert (base, cap) == (10.0, 300.0)
    got = [error_backoff_ms(n, base, cap) for n in range(1, 9)]
    assert got == [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]
    assert error_backoff_ms(0, base, cap) == 10_000
    assert error_backoff_ms(10_000, base, cap) == 300_000
    for n in range(1, 60):
        assert error_backoff_ms(n, base, cap) == int(min(base * 2 ** (n - 1), cap) * 1000)


LIFECYCLE = [
    E.WARMUP_DONE,
    E.SIGNAL,
    E.GUARDS_PASSED,
    E.BUY_PLACED,
    E.BUY_FILLED,
    E.EXIT_SIGNAL,
    E.EXIT_CONFIRMED,
    E.SELL_PLACED,
    E.SELL_FILLED,
    E.TRADE_RECORDED,
    E.TIMEOUT,
]
LIFECYCLE_PHASES = [
    P.WARMUP,
    P.IDLE,
    P.ENTRY_EVAL,
    P.PLACE_BUY,
    P.WAIT_FILL,
    P.POSITION,
    P.EXIT_EVAL,
    P.PLACE_SELL,
    P.WAIT_SELL_FILL,
    P.POST_TRADE,
    P.COOLDOWN,
    P.IDLE,
]


def test_full_lifecycle_through_fire() -> None:
    m, rec = make_machine()
    s = SymbolState("BTC/USDT")
    visited = [s.phase]
    for i, event in enumerate(LIFECYCLE):
        now = 60_000 * (i + 1)
        if event is E.SIGNAL:
            s.decision_id = make_decision_id(s.symbol, now, "entry")
        t = m.fire(s, event, now)
        assert t is not None, (s.phase, event)
        assert t.decision_id == s.decision_id
        assert t.to_record()["decision_id"] == s.decision_id
        assert t.seq == i + 1 and t.ts == now
        assert TABLE[(t.src, t.event)] == Row(t.dst, t.action)
        visited.append(s.phase)
    assert visited == LIFECYCLE_PHASES
    assert s.phase is P.IDLE
    assert m.rejected == 0
    assert [t.dst for t in rec.transitions] == LIFECYCLE_PHASES[1:]
    assert rec.transitions[0].decision_id == ""
    assert {t.decision_id for t in rec.transitions[1:]} == {"BTCUSDT-120000-entry"}


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.sampled_from(list(Event)), max_size=60))
def test_random_event_sequences_stay_in_the_table(events: list[Event]) -> None:
    m, rec = make_machine()
    s = SymbolState("X/USDT")
    accepted = 0
    for i, event in enumerate(events):
        before = snapshot(s)
        row = TABLE.get((s.phase, event))
        t = m.fire(s, event, i * 1_000)
        assert s.phase in Phase.__members__.values()
        if row is None:
            assert t is None
            assert snapshot(s) == before
        else:
            accepted += 1
            assert t is not None
            assert s.phase is row.next and t.action is row.action
            assert s.seq == before[3] + 1
        assert s.seq == accepted
    assert m.rejected == len(events) - accepted
    assert len(rec.transitions) == accepted and len(rec.rejects) == m.rejected
    assert isinstance(s.history, deque) and len(s.history) == min(accepted, HISTORY_LEN)


# --- the timeout policy beside the table ------------------------------------------------


def test_every_waiting_phase_has_one_timeout_rule() -> None:
    assert set(TIMEOUTS) == WAITING_PHASES == set(Phase) - TRANSIENT - {P.IDLE}
    for phase, rule in TIMEOUTS.items():
        assert isinstance(rule, TimeoutRule) and isinstance(rule.delay, Delay)
        row = TABLE[(phase, E.TIMEOUT)]
        assert (rule.retry is not None) == (row.next is phase), phase  # a self-loop retries


def test_transient_phases_never_wait() -> None:
    assert {P.ENTRY_EVAL, P.EXIT_EVAL, P.POST_TRADE} == TRANSIENT
    for phase in TRANSIENT:
        assert phase not in TIMEOUTS and (phase, E.TIMEOUT) not in TABLE
        assert phase not in ON_BAR
    assert P.IDLE not in TIMEOUTS and (P.IDLE, E.TIMEOUT) not in TABLE
    assert set(ON_BAR) == {P.WARMUP, P.IDLE, P.POSITION, P.WAIT_FILL, P.WAIT_SELL_FILL}


def test_long_by_design_phases_neither_hold_nor_pass() -> None:
    # the stuck monitor lets a symbol sit in these: any other phase holds a slot or is
    # transient, and a symbol long in it is stuck
    assert {P.IDLE, P.WARMUP, P.COOLDOWN, P.ERROR} == LONG_BY_DESIGN


Timeouts = dict[Phase, TimeoutRule]


def timeout_problems(
    monkeypatch: pytest.MonkeyPatch, timeouts: Timeouts, table: Table | None = None
) -> list[str]:
    """check_table() against a modified timeout policy (and table); both restored after."""
    with monkeypatch.context() as mp:
        mp.setattr(table_mod, "TIMEOUTS", timeouts)
        if table is not None:
            mp.setattr(table_mod, "TABLE", table)
        problems = check_table()
    assert table_mod.TIMEOUTS is TIMEOUTS and check_table() == []
    return problems


def test_check_table_reports_a_waiting_phase_without_a_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = dict(TIMEOUTS)
    del t[P.COOLDOWN]
    problems = timeout_problems(monkeypatch, t)
    assert problems == ["waiting phase COOLDOWN has no timeout rule"], problems


def test_check_table_reports_a_timeout_on_a_transient_phase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = dict(TIMEOUTS)
    t[P.EXIT_EVAL] = TimeoutRule(Delay.SELL_FILL)
    problems = timeout_problems(monkeypatch, t)
    assert any("transient phase EXIT_EVAL" in p for p in problems), problems
    assert any("EXIT_EVAL has no TIMEOUT row" in p for p in problems), problems
    rows = dict(TABLE)
    rows[(P.POST_TRADE, E.TIMEOUT)] = Row(P.COOLDOWN, Action.START_COOLDOWN)
    problems = timeout_problems(monkeypatch, dict(TIMEOUTS), rows)
    assert any("transient phase POST_TRADE must not time out" in p for p in problems), problems
    t = dict(TIMEOUTS)
    t[P.IDLE] = TimeoutRule(Delay.COOLDOWN)
    problems = timeout_problems(monkeypatch, t)
    assert any("IDLE must not time out" in p for p in problems), problems


def test_check_table_reports_a_self_loop_timeout_without_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = dict(TIMEOUTS)
    t[P.WAIT_SELL_FILL] = TimeoutRule(Delay.IOC_TTL)  # re-armed from entry: due at once
    problems = timeout_problems(monkeypatch, t)
    assert problems == ["WAIT_SELL_FILL --TIMEOUT--> WAIT_SELL_FILL needs a retry delay"]
    t = dict(TIMEOUTS)
    t[P.PLACE_BUY] = TimeoutRule(Delay.BUY_FILL, retry=Delay.BUY_FILL)
    problems = timeout_problems(monkeypatch, t)
    assert problems == ["PLACE_BUY has a retry delay but its TIMEOUT row leaves it"]


def test_check_table_reports_a_bar_check_in_a_transient_phase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with monkeypatch.context() as mp:
        mp.setattr(table_mod, "ON_BAR", {**ON_BAR, P.ENTRY_EVAL: BarCheck.ENTRY})
        problems = check_table()
    assert problems == ["transient phase ENTRY_EVAL cannot see a bar"]


def test_render_table_shows_the_timeout_policy() -> None:
    text = render_table()
    assert "timeouts:" in text
    lines = text.split("timeouts:")[1].strip().splitlines()
    assert len(lines) == len(Phase)
    by_phase = {line.split()[0]: line for line in lines}
    assert "buy_fill after entered, then partial_fill, ioc_left_open" in by_phase["WAIT_FILL"]
    assert "retry after buy_fill" in by_phase["WAIT_FILL"]
    assert "max_hold after position_opened" in by_phase["POSITION"]
    assert "error_backoff" in by_phase["ERROR"]
    for phase in TRANSIENT:
        assert "transient" in by_phase[phase.value]
    assert "waits for nothing" in by_phase["IDLE"]
