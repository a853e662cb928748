"""A backtest candle's part in the engine: the exit its path meets (``strategy.bar_exit``)
and the price the simulated exchange is told the market trades at for it, and an entry
signal that waits for the next candle's open (``backtest.entry_on = next_open``).

Paper and live sessions never come here: their ticks go through ``Engine.on_bar`` alone,
whose exit check sees one price (``strategy.check_exit``)."""

from __future__ import annotations

from decimal import Decimal

from fsmtrader.engine import entry
from fsmtrader.engine.commands import Decision
from fsmtrader.fsm.phases import Phase
from fsmtrader.markets import ceil_to, q_price
from fsmtrader.state.symbol import SymbolState
from fsmtrader.strategy import BothTouch, bar_exit


def candle_exit(
    st: SymbolState,
    ts: int,
    bar: tuple[float, float, float, float],
    rule: BothTouch,
    tick: Decimal,
) -> tuple[str, Decimal] | None:
    """(reason, bid) of the exit the candle ``bar`` = (o, h, l, c) of a held position
    meets at ``ts``, None if none (or exits wait after a blocked sell). The tracker's peak
    moves along the path whatever the answer."""
    ex = st.exit
    if ex is None:
        return None  # (its bar at the close faults it, as a tick would)
    o, h, lo, c = bar
    reason, price = bar_exit(ex, o, h, lo, c, rule)
    if not reason or ts < st.exit_block_until:
        return None
    return reason, trigger_bid(reason, price, tick, lo, h)


def trigger_bid(reason: str, price: float, tick: Decimal, low: float, high: float) -> Decimal:
    """The bid a level met inside a candle stands for: on the tick grid (a venue trades
    only there), rounded into the candle's side of the level (up for the target, met from
    below; down for a stop, met from above), kept within the candle. Float noise of the
    level (60 * 0.97 = 58.199999999999996) is cut at 12 significant digits first."""
    level = Decimal(f"{price:.12g}")
    bid = ceil_to(level, tick) if reason == "take_profit" else q_price(level, tick)
    top = q_price(Decimal(f"{high:.12g}"), tick)
    bottom = ceil_to(Decimal(f"{low:.12g}"), tick)
    return max(min(bid, top), min(bottom, top))


#: A signal waiting for the next open: (the signal candle's time, its close, the anchor).
OpenEntry = tuple[int, float, float]


def open_entry(
    st: SymbolState, ts: int, waiting: dict[str, OpenEntry], stopped: bool
) -> Decision | None:
    """The signal that waited in ``waiting`` for this open (it leaves it), decided now on
    the open's quote if the symbol may still enter: IDLE, not blocked, entries not
    ``stopped`` (halted or by a control)."""
    signal = waiting.pop(st.symbol, None)
    if signal is None or st.phase is not Phase.IDLE or ts < st.entry_block_until or stopped:
        return None
    sig_ts, close, anchor = signal
    return entry.signal(st.symbol, sig_ts, close, anchor)
