"""What a committed record says on a phone: one short plain-text message per event worth
telling (an entry or exit filled, a ghost, a halt, ERROR and back, a stuck symbol, a
reconcile mismatch), or None. Pure: no clock, no I/O, so the numbers can be checked
against the very records they came from.

Money is shown from the records' Decimal strings as they are; only what a message
computes (a cost, a percentage) is worked out in Decimal and rounded for display."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fsmtrader.config.control_sections import TelegramSettings

MAX_TEXT = 4000  # Telegram refuses a message over 4096 characters
RECONCILE_HALT = ("reconcile MISMATCH", "reconcile incomplete")


@dataclass(frozen=True, slots=True)
class Note:
    """A message to send: ``kind`` names it in the metrics and picks its switch."""

    kind: str
    text: str


def dec(value: Any) -> Decimal | None:
    """A record's money string as a Decimal; None when it is missing or not a number."""
    if value is None or isinstance(value, float):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def shown(d: Decimal, places: int = 8) -> str:
    """A computed Decimal for display: at most ``places`` decimals, no exponent, no
    trailing zeros."""
    exp = d.as_tuple().exponent
    q = d.quantize(Decimal(1).scaleb(-places)) if isinstance(exp, int) and exp < -places else d
    text = f"{q:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def money(value: Any) -> str:
    """A money string of a record for display (at most 8 decimals, no trailing zeros);
    as it is when it is not a number."""
    d = dec(value)
    return shown(d) if d is not None else str(value)


def signed(text: str) -> str:
    return text if text.startswith("-") else "+" + text


def clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _tail(record: Mapping[str, Any]) -> str:
    did = str(record.get("decision_id") or "")
    return f"\nid {did}" if did else ""


def entry_note(r: Mapping[str, Any]) -> Note:
    """A ``position`` record: the entry's fill (average price, amount, cost, fees)."""
    qty, price = dec(r.get("qty")), dec(r.get("avg_entry"))
    cost = shown(qty * price) if qty is not None and price is not None else "?"
    text = (
        f"🟢 BUY {r.get('symbol', '?')} filled\n"
        f"{r.get('qty')} @ {r.get('avg_entry')}\n"
        f"cost {cost}, fees {money(r.get('fees'))}" + _tail(r)
    )
    return Note("entry", text)


def trade_pct(r: Mapping[str, Any]) -> Decimal | None:
    """Realised PnL as a percentage of what the entry cost (bought_qty x avg_entry)."""
    pnl, qty, price = dec(r.get("realized_pnl")), dec(r.get("bought_qty")), dec(r.get("avg_entry"))
    if pnl is None or qty is None or price is None or qty * price == 0:
        return None
    return (pnl * 100 / (qty * price)).quantize(Decimal("0.01"))


def exit_note(r: Mapping[str, Any]) -> Note:
    """A ``trade`` record: the exit, its reason, legs, fees and realised PnL."""
    buy_fee, sell_fee = dec(r.get("buy_fees")), dec(r.get("sell_fees"))
    fees = shown(buy_fee + sell_fee) if buy_fee is not None and sell_fee is not None else "?"
    pct = trade_pct(r)
    pnl = money(r.get("realized_pnl"))
    mark = "✅" if not pnl.startswith("-") else "🔻"
    pct_text = f" ({signed(str(pct))}%)" if pct is not None else ""
    legs = r.get("sell_legs")
    text = (
        f"{mark} SELL {r.get('symbol', '?')} ({r.get('exit_reason', '?')})\n"
        f"{r.get('sold_qty')} @ {r.get('avg_exit')} (in @ {r.get('avg_entry')}), "
        f"{legs} leg{'s' if legs != 1 else ''}\n"
        f"PnL {signed(pnl)}{pct_text}, fees {fees}" + _tail(r)
    )
    return Note("exit", text)


def ghost_note(r: Mapping[str, Any]) -> Note:
    reason = str(r.get("reason", "")).removeprefix("ghost:")
    side = str(r.get("side", "")).upper()
    text = (
        f"👻 {side} {r.get('symbol', '?')} aborted: never reached the exchange\n"
        f"reason {reason}" + _tail(r)
    )
    return Note("ghost", text)


def halt_note(r: Mapping[str, Any]) -> Note:
    reason = str(r.get("reason", ""))
    if reason.startswith(RECONCILE_HALT):
        return Note("reconcile", f"⚠️ Reconcile: {reason}\nNew entries halted.")
    return Note("halt", f"⛔ HALT: {reason}\nNew entries stopped; open positions still managed.")


def kill_switch_note(r: Mapping[str, Any]) -> Note:
    """The STOP file acted (stop, a position's flatten, lifted): switched with halts."""
    icon = {"stop": "🛑", "flatten": "🧯", "lift": "▶️"}.get(str(r.get("action")), "🛑")
    where = f" {r['symbol']}" if r.get("symbol") else ""
    return Note("halt", f"{icon} Kill switch{where}: {r.get('message') or r.get('action', '?')}")


def resume_note(r: Mapping[str, Any]) -> Note:
    return Note("halt", f"▶️ Resumed (was: {r.get('was') or '-'})")


def phase_note(r: Mapping[str, Any]) -> Note | None:
    if r.get("to") == "ERROR" and r.get("from") != "ERROR":
        text = f"❗ {r.get('symbol', '?')} in ERROR (from {r.get('from')})\n{r.get('reason', '')}"
        return Note("error", text + _tail(r))
    if r.get("from") == "ERROR" and r.get("to") == "IDLE":
        return Note("error", f"🔧 {r.get('symbol', '?')} recovered: ERROR -> IDLE")
    return None


def stuck_note(r: Mapping[str, Any]) -> Note | None:
    if r.get("alert") != "stuck":
        return None
    text = f"⏳ {r.get('symbol', '?')} stuck: {r.get('detail', '')}"
    return Note("stuck", text + _tail(r))


def order_note(r: Mapping[str, Any]) -> Note | None:
    if r.get("state") == "FAILED_FINAL" and str(r.get("reason", "")).startswith("ghost:"):
        return ghost_note(r)
    return None


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], Note | None]] = {
    "position": entry_note,
    "trade": exit_note,
    "order": order_note,
    "halt": halt_note,
    "resume": resume_note,
    "kill_switch": kill_switch_note,
    "phase": phase_note,
    "alert": stuck_note,
}


def enabled(kind: str, s: TelegramSettings) -> bool:
    """The switch of a message kind (``start``/``stop`` share notify_start_stop)."""
    name = "start_stop" if kind in ("start", "stop") else kind
    return bool(getattr(s, f"notify_{name}", True))


def notification(record: Mapping[str, Any], settings: TelegramSettings) -> Note | None:
    """The message a committed record makes, or None (nothing to tell, or switched off)."""
    build = _BUILDERS.get(str(record.get("kind")))
    note = build(record) if build is not None else None
    if note is None or not enabled(note.kind, settings):
        return None
    return Note(note.kind, clip(note.text))


def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def daily_summary(days: Sequence[Mapping[str, Any]], profit: Mapping[str, Any]) -> Note:
    """The daily summary: the last days (``BookReader.daily``) and the totals
    (``BookReader.profit``)."""
    lines = ["📅 Daily summary (UTC)"]
    for d in days:
        lines.append(
            f"{d.get('day')}: {d.get('trades')} trades ({d.get('wins')} won), "
            f"PnL {signed(money(d.get('realized_pnl')))}, fees {money(d.get('fees'))}"
        )
    lines.append(
        f"Total: {profit.get('trades')} trades, won {_rate(profit.get('win_rate'))}, "
        f"PnL {signed(money(profit.get('realized_pnl')))}, fees {money(profit.get('fees'))}"
    )
    return Note("daily", clip("\n".join(lines)))


def _rate(value: Any) -> str:
    if isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    return "-"
