"""What a decision asks the shell to do: frozen values, run in order by the shell.

A decision returns state changes for its symbol and a list of these. The shell applies the
changes, then runs the commands one by one; a command whose result a later decision needs
(an order's new state, fills booked by a cancel) is followed by a ``Then`` or a ``Settle``,
which the shell decides on a fresh view. A ``Fire`` is always the last command of a list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, NamedTuple, TypedDict, Unpack

from fsmtrader.fsm.phases import Event
from fsmtrader.orders.intent import Intent
from fsmtrader.state.records import Record
from fsmtrader.strategy import ExitState

if TYPE_CHECKING:
    from fsmtrader.engine.policy import EnginePolicy
    from fsmtrader.engine.view import SymbolView
    from fsmtrader.state.symbol import SymbolState


@dataclass(frozen=True, slots=True)
class Place:
    """Hand an intent to the router (which reserves, writes ahead and sends it)."""

    intent: Intent
    live_ask: Decimal | None = None  # the ask the buy was priced with: no second quote


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the order of ``intent_id`` (or make sure it is never sent)."""

    intent_id: str
    settle: bool = False  # decide the phase's outcome from the answer
    forget: bool = False  # stop waiting for it once it is over


@dataclass(frozen=True, slots=True)
class Refresh:
    """Ask the venue about the live order of ``intent_id`` and book new fills."""

    intent_id: str


@dataclass(frozen=True, slots=True)
class Fire:
    """Feed an event to the symbol's machine (the transition's action decides next)."""

    event: Event
    reason: str = ""
    key: str | None = None  # idempotency fingerprint: a duplicate is dropped


@dataclass(frozen=True, slots=True)
class Publish:
    """Put a record on the bus (audit, store, subscribers)."""

    record: Record


@dataclass(frozen=True, slots=True)
class Halt:
    """Stop opening positions (unless the engine is halted already; ``always``: halt, and
    say why, even then: an accounting break must not hide behind an earlier halt)."""

    reason: str
    always: bool = False


@dataclass(frozen=True, slots=True)
class Count:
    """Add one to an engine counter (shown in the summary)."""

    name: str


@dataclass(frozen=True, slots=True)
class DiscardEmpty:
    """Forget an empty position record of the symbol (nothing held, nothing pending)."""


@dataclass(frozen=True, slots=True)
class ClosePosition:
    """Book the closed trade; the shell then decides ``trade_recorded`` on it."""

    reason: str
    ts: int


@dataclass(frozen=True, slots=True)
class Settle:
    """The order in flight is over: decide what follows it (buy outcome or next rung)."""

    side: Literal["buy", "sell"]
    escalate: bool = True


Decider = Callable[["SymbolState", "SymbolView", "EnginePolicy"], "Decision"]


@dataclass(frozen=True, slots=True)
class Then:
    """Decide ``decider`` when the shell reaches this point, on a view that shows what the
    commands before it did (a cancel may have booked fills)."""

    decider: Decider = field(compare=False)
    name: str = ""


Command = (
    Place
    | Cancel
    | Refresh
    | Fire
    | Publish
    | Halt
    | Count
    | DiscardEmpty
    | ClosePosition
    | Settle
    | Then
)


class SymbolChanges(TypedDict, total=False):
    """The ``SymbolState`` fields a decision may set. The phase, its sequence number, entry
    time and history are the machine's: only a table row changes them."""

    decision_id: str
    step: int
    exit_reason: str
    error_count: int
    last_error: str
    entry_block_until: int
    exit_block_until: int
    active_intent: str | None
    entry_ref: Decimal | None
    exit_ref: Decimal | None
    buy_leg: int
    sell_leg: int
    exit: ExitState | None


class Decision(NamedTuple):
    """State changes for the symbol and the commands to run, in order."""

    changes: SymbolChanges
    commands: list[Command]


def decide(*commands: Command, **changes: Unpack[SymbolChanges]) -> Decision:
    return Decision(changes, list(commands))


def then(first: Decision, second: Decision) -> Decision:
    """Both, in order (the second's changes win)."""
    changes = SymbolChanges()
    changes.update(first.changes)
    changes.update(second.changes)
    return Decision(changes, first.commands + second.commands)
