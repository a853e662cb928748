"""The chat commands: reads answered from the bot's own BookReader, controls through the
same desk as the API (who = "telegram"), so they are refused for the same reasons in the
same words. A force exit or a recover first asks Confirm / Cancel; only the confirm
button runs it, once, and a confirmation left alone expires.

Runs in the Telegram client's thread; the reader belongs to that thread."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fsmtrader.control.desk import ControlDesk
from fsmtrader.control.reads import BookReader
from fsmtrader.control.telegram.messages import clip, daily_summary, day_of, money, signed

CONFIRM_TTL_S = 120.0
MAX_PENDING = 50
HELP = (
    "/status [symbol] - phases, positions, open orders\n"
    "/trades [n] - the last closed trades\n"
    "/profit - realised PnL, wins, fees\n"
    "/daily [n] - PnL per UTC day\n"
    "/balance - cash, reserved, positions\n"
    "/ghosts - orders that never reached the exchange\n"
    "/stopentry - no new entries\n"
    "/resume - entries again\n"
    "/forceexit <symbol|all> - sell now (asks to confirm)\n"
    "/recover <symbol> - take a symbol out of ERROR (asks to confirm)\n"
    "/reconcile - compare the books with the exchange now\n"
    "/help - this list"
)


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: text, and inline buttons (label, callback data) when it asks."""

    text: str
    buttons: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Pending:
    action: str
    args: dict[str, str]
    expires: float


def _int_arg(args: list[str], default: int, high: int) -> int:
    try:
        n = int(args[0]) if args else default
    except ValueError:
        n = default
    return max(1, min(n, high))


class Commands:
    def __init__(
        self,
        *,
        reader: BookReader,
        desk: ControlDesk,
        now_ms: Callable[[], int],
        marks: Callable[[], Mapping[str, float]],
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader, self.desk, self.now_ms, self.marks = reader, desk, now_ms, marks
        self.timeout_s = timeout_s
        self.clock = clock
        self.pending: dict[str, _Pending] = {}

    async def on_text(self, text: str) -> Reply | None:
        """A message in an allowed chat: the reply, or None for what is not a command."""
        words = text.strip().split()
        if not words or not words[0].startswith("/"):
            return None
        name, args = words[0][1:].split("@", 1)[0].lower(), words[1:]
        reads: dict[str, Callable[[list[str]], str]] = {
            "status": self._status,
            "trades": self._trades,
            "profit": lambda _: self._profit(),
            "daily": self._daily,
            "balance": lambda _: self._balance(),
            "ghosts": lambda _: self._ghosts(),
            "help": lambda _: HELP,
            "start": lambda _: HELP,
        }
        if name in reads:
            return Reply(clip(reads[name](args)))
        if name in ("stopentry", "resume", "reconcile"):
            return Reply(await self.control(name, {}))
        if name in ("forceexit", "recover"):
            return self._ask(name, args)
        return Reply(f"unknown command /{name}; /help lists them")

    async def on_button(self, data: str) -> str:
        """An inline button pressed: the text the asking message is replaced with."""
        verb, _, key = data.partition(":")
        self._expire()
        job = self.pending.pop(key, None)
        if job is None:
            return "this confirmation has expired or was already answered"
        if verb != "ok":
            return f"cancelled: /{job.action} {job.args.get('symbol', '')}".rstrip()
        return await self.control(job.action, job.args)

    async def control(self, action: str, args: Mapping[str, str]) -> str:
        """Run a control through the desk and say what came of it, as the desk words it."""
        fut = self.desk.submit(action, args, "telegram")
        try:
            res = await asyncio.wait_for(asyncio.wrap_future(fut), self.timeout_s)
        except TimeoutError:
            fut.cancel()
            return f"{action}: the bot did not answer within {self.timeout_s:g} s"
        mark = "✅" if res.ok else "❌"
        return f"{mark} {action}: {res.message}"

    def _ask(self, action: str, args: list[str]) -> Reply:
        if not args:
            what = "<symbol|all>" if action == "forceexit" else "<symbol>"
            return Reply(f"usage: /{action} {what}")
        symbol = args[0] if args[0].lower() != "all" else "all"
        symbol = symbol.upper() if symbol != "all" else symbol
        self._expire()
        while len(self.pending) >= MAX_PENDING:
            self.pending.pop(next(iter(self.pending)))
        key = secrets.token_hex(6)
        self.pending[key] = _Pending(action, {"symbol": symbol}, self.clock() + CONFIRM_TTL_S)
        question = (
            f"Force exit {symbol}: sell now?"
            if action == "forceexit"
            else f"Recover {symbol} from ERROR?"
        )
        return Reply(question, (("Confirm", f"ok:{key}"), ("Cancel", f"no:{key}")))

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, p in self.pending.items() if p.expires <= now]:
            del self.pending[key]

    # --- reads ---------------------------------------------------------------------------
    def _status(self, args: list[str]) -> str:
        st = self.reader.status(self.now_ms(), self.marks())
        rows = st.get("symbols", [])
        if args:
            want = args[0].upper()
            rows = [r for r in rows if r.get("symbol") == want]
            if not rows:
                return f"{want}: not a symbol of this bot"
        lines = []
        if st.get("halted"):
            lines.append(f"⛔ halted: {st['halted']}")
        if st.get("entries_stopped"):
            lines.append(f"⏸ entries stopped: {st['entries_stopped']}")
        lines += [_symbol_line(r, detail=bool(args)) for r in rows]
        return "\n".join(lines) or "no symbols"

    def _trades(self, args: list[str]) -> str:
        rows = self.reader.trades(None, None, _int_arg(args, 5, 50))
        if not rows:
            return "no closed trades yet"
        return "\n".join(
            f"{day_of(int(t['exit_ms']))} {t['symbol']} {t['exit_reason']}: "
            f"{t['sold_qty']} {t['avg_entry']} -> {t['avg_exit']}, "
            f"PnL {signed(money(t['realized_pnl']))}"
            for t in rows
        )

    def _profit(self) -> str:
        p = self.reader.profit()
        lines = [
            f"trades {p.get('trades')}, won {p.get('wins')}, win rate {_pct(p.get('win_rate'))}",
            f"realised PnL {signed(money(p.get('realized_pnl')))}, fees {money(p.get('fees'))}",
        ]
        for name in ("best", "worst"):
            t = p.get(name)
            if t:
                lines.append(f"{name}: {t['symbol']} {signed(money(t['realized_pnl']))}")
        return "\n".join(lines)

    def _daily(self, args: list[str]) -> str:
        days = self.reader.daily(_int_arg(args, 7, 90), self.now_ms())
        return daily_summary(days, self.reader.profit()).text

    def _balance(self) -> str:
        b = self.reader.balance()
        lines = [
            f"cash {b['cash']} {b['quote']}",
            f"reserved {b['reserved']}, exposure {b['exposure']}",
        ]
        lines += [
            f"{p['symbol']}: {p['qty']} @ {p['entry_price']} (cost {p['cost_basis']})"
            for p in b.get("positions", [])
        ]
        return "\n".join(lines)

    def _ghosts(self) -> str:
        g = self.reader.ghosts()
        rate = g.get("ghost_rate")
        lines = [f"ghosts {g['count']} of {g['signals']} signals (rate {_pct(rate)})"]
        lines += [f"{reason}: {n}" for reason, n in g.get("by_reason", {}).items()]
        lines += [
            f"{day_of(int(x['ts']))} {x['symbol']} {x['side']} {x['reason']} {x['decision_id']}"
            for x in g.get("recent", [])[:5]
        ]
        return "\n".join(lines)


def _pct(value: Any) -> str:
    return f"{value * 100:.1f}%" if isinstance(value, int | float) else "-"


def _symbol_line(r: Mapping[str, Any], *, detail: bool) -> str:
    line = f"{r.get('symbol')} {r.get('phase')}"
    if r.get("position") not in (None, "0", ""):
        line += f" pos {r['position']} @ {r.get('entry_price')}"
        if r.get("unrealized_pnl") is not None:
            line += f" uPnL {signed(money(r['unrealized_pnl']))}"
    order = r.get("open_order")
    if order:
        side, state = order.get("side"), order.get("state")
        line += f" | {side} {state} {order.get('amount')}@{order.get('price')}"
    if r.get("error_count"):
        line += f" | errors {r['error_count']}: {r.get('last_error')}"
    if detail:
        secs = int(r.get("time_in_phase_ms") or 0) // 1000
        line += f"\nlast {r.get('last_price')}, in phase {secs} s"
        if r.get("decision_id"):
            line += f"\nid {r['decision_id']}"
    return line
