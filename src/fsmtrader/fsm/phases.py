"""Phases a symbol can be in, events that move it, and actions the shell must run."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    WARMUP = "WARMUP"
    IDLE = "IDLE"
    ENTRY_EVAL = "ENTRY_EVAL"
    PLACE_BUY = "PLACE_BUY"
    WAIT_FILL = "WAIT_FILL"
    POSITION = "POSITION"
    EXIT_EVAL = "EXIT_EVAL"
    PLACE_SELL = "PLACE_SELL"
    WAIT_SELL_FILL = "WAIT_SELL_FILL"
    POST_TRADE = "POST_TRADE"
    COOLDOWN = "COOLDOWN"
    ERROR = "ERROR"


class Event(StrEnum):
    WARMUP_DONE = "WARMUP_DONE"
    SIGNAL = "SIGNAL"  # drop trigger fired
    GUARDS_PASSED = "GUARDS_PASSED"
    GUARDS_BLOCKED = "GUARDS_BLOCKED"
    OBSERVED = "OBSERVED"  # observe mode: the buy is audited, not placed
    BUY_PLACED = "BUY_PLACED"
    BUY_ABORTED = "BUY_ABORTED"  # preflight failed / ghost / router gave up
    BUY_PARTIAL = "BUY_PARTIAL"
    BUY_FILLED = "BUY_FILLED"  # done buying with a position (full or kept partial)
    BUY_ESCALATE = "BUY_ESCALATE"  # unfilled remainder: next escalation step
    BUY_CANCELED = "BUY_CANCELED"  # done buying with nothing filled
    HAS_POSITION = "HAS_POSITION"  # IDLE finds a position (after ERROR / restart)
    EXIT_SIGNAL = "EXIT_SIGNAL"  # TP / SL / trailing fired on a price
    EXIT_CONFIRMED = "EXIT_CONFIRMED"
    EXIT_HOLD = "EXIT_HOLD"  # exit evaluation says keep holding
    SELL_PLACED = "SELL_PLACED"
    SELL_BLOCKED = "SELL_BLOCKED"  # flash-crash guard, ladder exhausted, router gave up
    SELL_PARTIAL = "SELL_PARTIAL"  # a rung filled partly: next rung for the rest
    SELL_UNFILLED = "SELL_UNFILLED"  # a rung filled nothing: next rung
    SELL_FILLED = "SELL_FILLED"  # position closed (remainder, if any, is dust)
    STOP_FILLED = "STOP_FILLED"  # the resting protective stop sold the position
    TRADE_RECORDED = "TRADE_RECORDED"
    TIMEOUT = "TIMEOUT"
    FAULT = "FAULT"  # an unexpected error in an action
    RECOVER = "RECOVER"  # manual recovery from ERROR


class Action(StrEnum):
    """What the imperative shell does after a transition."""

    NONE = "NONE"
    BLOCK_ENTRY = "BLOCK_ENTRY"  # arm the entry-block cooldown
    EVALUATE_ENTRY = "EVALUATE_ENTRY"
    SUBMIT_BUY = "SUBMIT_BUY"
    CHECK_BUY = "CHECK_BUY"
    CANCEL_BUY = "CANCEL_BUY"
    ABANDON_BUY = "ABANDON_BUY"  # stop escalating, release what is reserved
    OPEN_POSITION = "OPEN_POSITION"
    EVALUATE_EXIT = "EVALUATE_EXIT"
    SUBMIT_SELL = "SUBMIT_SELL"
    CHECK_SELL = "CHECK_SELL"
    CANCEL_SELL = "CANCEL_SELL"
    RESUME_POSITION = "RESUME_POSITION"
    RECORD_TRADE = "RECORD_TRADE"
    START_COOLDOWN = "START_COOLDOWN"
    ENTER_ERROR = "ENTER_ERROR"
    LEAVE_ERROR = "LEAVE_ERROR"
