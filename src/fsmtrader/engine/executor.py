"""Running decisions: one queue of commands per stimulus, no recursion.

A decision's state changes are applied first (so the router's write-ahead commit sees the
intent the symbol waits for), then its commands run in order. A ``Fire`` feeds the machine;
the transition's action is decided (``engine.actions``) and its commands queued. A command
whose answer matters (a placed order, a cancel, a poll) is turned into the next event by
``outcome_event``. A failing decision or command parks the symbol (FAULT) and drops the rest
of its commands; an accounting invariant break also halts the engine.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fsmtrader.engine import entry, errors, exit
from fsmtrader.engine.actions import DECISIONS
from fsmtrader.engine.commands import (
    Cancel,
    ClosePosition,
    Command,
    Count,
    Decision,
    DiscardEmpty,
    Fire,
    Halt,
    Place,
    Publish,
    Refresh,
    Settle,
    Then,
    decide,
)
from fsmtrader.engine.outcomes import Via, outcome_event
from fsmtrader.engine.parts import EngineParts
from fsmtrader.fsm.machine import Transition
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.symbol import SymbolState

log = logging.getLogger("fsmtrader.engine")
ZERO = Decimal(0)
Handler = Callable[[SymbolState, Any], Decision | None]


class Executor:
    def __init__(self, engine: EngineParts) -> None:
        self.engine = engine
        self._handlers: dict[type, Handler] = {
            Place: self._place,
            Cancel: self._cancel,
            Refresh: self._refresh,
            Settle: self._settle,
            Then: lambda st, cmd: cmd.decider(st, engine.view(st.symbol), engine.policy),
            Publish: lambda st, cmd: engine.bus.publish(cmd.record),
            Halt: lambda st, cmd: (
                engine.halt(cmd.reason) if cmd.always or not engine.halted else None
            ),
            Count: lambda st, cmd: engine.counts.update((cmd.name,)),
            DiscardEmpty: lambda st, cmd: engine.portfolio.discard_empty(st.symbol),
            ClosePosition: self._close_position,
        }

    def run(self, st: SymbolState, first: Decision) -> bool:
        """Run ``first`` for ``st`` and everything it leads to. Returns whether a
        transition happened (the caller then commits)."""
        e = self.engine
        handlers = self._handlers
        queue: deque[Command] = deque()
        t: Transition | None = None
        moved = False
        follow: Decision | None = first
        while True:
            if follow is not None:
                changes, commands = follow
                if changes:
                    for name, value in changes.items():
                        setattr(st, name, value)
                    e.dirty.add(st.symbol)
                queue.extendleft(reversed(commands))
            if not queue:
                return moved
            cmd = queue.popleft()
            try:
                if type(cmd) is Fire:
                    follow = None
                    nt = e.machine.fire(st, cmd.event, e.clock.now_ms(), cmd.reason, cmd.key)
                    if nt is not None:
                        t, moved = nt, True
                        e.dirty.add(st.symbol)
                        e.schedule(st, nt)
                        follow = DECISIONS[nt.action](st, nt, e.view(st.symbol), e.policy)
                else:
                    follow = handlers[type(cmd)](st, cmd)
            except Exception as exc:  # a decision or command bug parks the symbol
                queue.clear()
                what = t.action if t is not None else "an order check"
                log.exception("%s: %s failed", st.symbol, what)
                follow = errors.fault(st, t, exc)

    # --- commands whose answer is decided on ----------------------------------------------
    def _outcome(
        self, st: SymbolState, rec: OrderRecord, via: Via, before: Decimal = ZERO
    ) -> Decision | None:
        out = outcome_event(st.phase, rec, self.engine.held(st.symbol), via, before)
        return decide(out) if out is not None else None

    def _place(self, st: SymbolState, cmd: Place) -> Decision | None:
        rec = self.engine.router.submit(cmd.intent, live_ask=cmd.live_ask)
        return self._outcome(st, rec, Via.SUBMIT)

    def _cancel(self, st: SymbolState, cmd: Cancel) -> Decision | None:
        rec = self.engine.router.cancel(cmd.intent_id)
        if cmd.forget and rec.done:
            return decide(active_intent=None)
        return self._outcome(st, rec, Via.CANCEL) if cmd.settle else None

    def _refresh(self, st: SymbolState, cmd: Refresh) -> Decision | None:
        router = self.engine.router
        before = router.records[cmd.intent_id].filled
        rec = router.refresh(cmd.intent_id)
        return self._outcome(st, rec, Via.POLL, before)

    def _settle(self, st: SymbolState, cmd: Settle) -> Decision:
        e = self.engine
        if cmd.side == "buy":
            return entry.buy_outcome(st, e.view(st.symbol), e.policy, cmd.escalate)
        return exit.next_rung(st, e.view(st.symbol), e.policy)

    def _close_position(self, st: SymbolState, cmd: ClosePosition) -> Decision:
        trade = self.engine.portfolio.close_position(st.symbol, cmd.ts, cmd.reason)
        return exit.trade_recorded(trade, cmd.ts, self.engine.policy.mode(st.symbol))
