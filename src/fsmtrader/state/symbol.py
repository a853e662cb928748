"""One symbol's state: its phase and everything the shell decided for it, the exit
tracking of its open position and its entry indicator included (the position itself is
the portfolio's)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from fsmtrader.fsm.phases import Phase
from fsmtrader.strategy import DropSignal, ExitState

HISTORY_LEN = 32


@dataclass(slots=True)
class SymbolState:
    """Everything the machine knows about one symbol, besides its position (the portfolio's)."""

    symbol: str
    phase: Phase = Phase.WARMUP
    entered_ms: int = 0
    seq: int = 0
    decision_id: str = ""
    step: int = 0  # exit ladder rung of the current exit
    exit_reason: str = ""
    error_count: int = 0  # consecutive faults; reset when a trade completes
    last_error: str = ""
    entry_block_until: int = 0
    exit_block_until: int = 0
    active_intent: str | None = None  # the order in flight for this symbol
    entry_ref: Decimal | None = None  # ask at the entry decision (slippage reference)
    exit_ref: Decimal | None = None  # bid when the exit began
    buy_leg: int = 0  # escalation step of the current entry
    sell_leg: int = 0  # sell orders of the current position so far
    stuck_alerted: bool = False
    exit: ExitState | None = None  # set while a position is open (POSITION and the exit)
    history: deque[tuple[int, str, str, str]] = field(
        default_factory=lambda: deque(maxlen=HISTORY_LEN)
    )
    # The entry indicator, fed every bar. Not saved: it is rebuilt from price history
    # (``DropSignal.prime``), so it takes no part in comparing or printing a state. The
    # engine gives each symbol one built from its policy; a state built elsewhere (the
    # store's, a test's) gets a blank one, and a restore hands the live one over.
    signal: DropSignal = field(
        default_factory=lambda: DropSignal(0, 0.0), compare=False, repr=False
    )
