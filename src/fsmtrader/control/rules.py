"""When a control is refused: pure functions of the bot's state, one per control, each
returning the one-line reason (None: go ahead). The API, the CLI and Telegram all show
these same words."""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.fsm.phases import Phase

EXITING = {Phase.EXIT_EVAL, Phase.PLACE_SELL, Phase.WAIT_SELL_FILL, Phase.POST_TRADE}
BUYING = {Phase.ENTRY_EVAL, Phase.PLACE_BUY, Phase.WAIT_FILL}


def refuse_stopentry(entries_stopped: str) -> str | None:
    if entries_stopped:
        return f"entries are already stopped ({entries_stopped})"
    return None


def refuse_resume(entries_stopped: str, halted: str) -> str | None:
    if not entries_stopped and not halted:
        return "entries are not stopped; nothing to resume"
    return None


def refuse_forceexit(symbol: str, phase: Phase, held: Decimal) -> str | None:
    """Only a held position in POSITION is exited; every other state says why not."""
    if phase is Phase.POSITION:
        return None
    if phase in EXITING:
        return f"{symbol} is already exiting ({phase.value})"
    if phase in BUYING:
        return f"{symbol} has a buy in flight ({phase.value}); force-exit once it has filled"
    if phase is Phase.ERROR:
        what = f"holds {held}" if held > 0 else "holds nothing"
        return f"{symbol} is in ERROR and {what}; recover it first"
    if held > 0:
        return f"{symbol} holds {held} but is in {phase.value}; it resumes the position itself"
    return f"{symbol} holds no position ({phase.value})"


def refuse_recover(symbol: str, phase: Phase) -> str | None:
    if phase is not Phase.ERROR:
        return f"{symbol} is in {phase.value}, not in ERROR"
    return None


def unknown_symbol(symbol: str, known: list[str]) -> str | None:
    if symbol in known:
        return None
    if not symbol:
        return "symbol: required (e.g. BTC/USDT, or all for forceexit)"
    return f"symbol {symbol!r}: not traded by this bot (allowed: {', '.join(known)})"
