"""What a run shows: the live status table while it runs and the summary table after it.

The table prints the status of ``control.status`` (the API's and ``fsmtrader status``'s):
ERROR first, then the symbols with a trade under way, then the rest; phases colour-coded;
idle and warm-up rows hidden when the ``[display]`` settings say so. A durable session's
table is drawn by Rich's own refresh thread from the state database, read-only
(``watch_table``), never from engine objects; the in-memory ``demo``/``backtest`` (no
database) builds the same status from the engine's books in its progress callback, in
the engine's thread, and Rich draws the last one built.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fsmtrader.cli.console import err, out
from fsmtrader.config import Settings
from fsmtrader.config.control_sections import DisplaySettings
from fsmtrader.control.status import build_status, visible_rows
from fsmtrader.engine import Engine
from fsmtrader.errors import FsmTraderError
from fsmtrader.feeds import Candles
from fsmtrader.markets import MarketFilters
from fsmtrader.runner import Backtest, RunResult, new_run_dir

if TYPE_CHECKING:  # the database reader (and the session it reads) only for a durable run
    from fsmtrader.control.reads import BookReader

# Mode colours in a canary: real money stands out, a shadow is dim.
MODE_STYLE: dict[str, str] = {"live": "bold red", "paper": "cyan", "observe": "dim"}
# Phase colours: red is trouble, yellow buying, green holding, magenta selling, blue the
# trade's wrap-up, dim at rest.
PHASE_STYLE: dict[str, str] = {
    "ERROR": "bold white on red",
    "WARMUP": "dim",
    "IDLE": "dim",
    "ENTRY_EVAL": "yellow",
    "PLACE_BUY": "bold yellow",
    "WAIT_FILL": "yellow",
    "POSITION": "bold green",
    "EXIT_EVAL": "magenta",
    "PLACE_SELL": "bold magenta",
    "WAIT_SELL_FILL": "magenta",
    "POST_TRADE": "cyan",
    "COOLDOWN": "blue",
}
Title = str | Callable[[], str]


def duration(ms: int) -> str:
    """A time in phase, short: 45s, 12m03s, 3h05m, 2d04h."""
    s = max(ms, 0) // 1000
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _price(text: str | None) -> str:
    """A price to 8 significant digits, without trailing zeros (3288, not 3288.0)."""
    if text is None:
        return ""
    shown = f"{Decimal(text):.8g}"
    if "." in shown and "e" not in shown.lower():
        shown = shown.rstrip("0").rstrip(".")
    return shown


def _pnl(text: str | None) -> Text:
    if text is None:
        return Text("")
    v = Decimal(text)
    return Text(f"{v:+.4f}", style="green" if v > 0 else "red" if v < 0 else "")


def _order(o: Mapping[str, Any] | None) -> str:
    if o is None:
        return ""
    at = f" @{_price(o['price'])}" if o["price"] is not None else ""
    return f"{o['side']} {o['state']} {o['filled']}/{o['amount']}{at}"


def _errors(row: Mapping[str, Any]) -> Text:
    if not row["error_count"] and not row["last_error"]:
        return Text("")
    last = row["last_error"]
    short = last if len(last) <= 40 else last[:39] + "…"
    return Text(f"{row['error_count']} {short}".strip(), style="red")


def status_rows_table(status: Mapping[str, Any], display: DisplaySettings, title: str) -> Table:
    """The status as a Rich table: the rows ``control.status`` sorted, those at rest in
    a hidden phase left out (counted in the caption), and the books' totals below. The
    symbol and phase never fold; the order and error columns give way on a narrow screen."""
    rows, hidden = visible_rows(
        status, hide_idle=display.hide_idle, hide_warmup=display.hide_warmup
    )
    t = Table(title=title, caption=_caption(status, hidden), caption_justify="left")
    widest = max((len(r["symbol"]) for r in rows), default=6)
    t.add_column("symbol", no_wrap=True, min_width=widest)
    t.add_column("phase", no_wrap=True, min_width=max(len(p) for p in PHASE_STYLE))
    # a canary's symbols run in different modes: then each row says which
    mixed = len({r.get("mode", "") for r in rows}) > 1
    if mixed:
        t.add_column("mode", no_wrap=True)
    for name in ("in phase", "position", "entry", "last", "uPnL"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("order")
    t.add_column("errors")
    for row in rows:
        mode = [Text(row.get("mode", ""), style=MODE_STYLE.get(row.get("mode", ""), ""))]
        t.add_row(
            row["symbol"],
            Text(row["phase"], style=PHASE_STYLE.get(row["phase"], "")),
            *(mode if mixed else []),
            duration(row["time_in_phase_ms"]),
            row["position"] if Decimal(row["position"]) else "",
            _price(row["entry_price"]),
            _price(row["last_price"]),
            _pnl(row["unrealized_pnl"]),
            _order(row["open_order"]),
            _errors(row),
        )
    return t


def _caption(status: Mapping[str, Any], hidden: Mapping[str, int]) -> Text:
    """Short lines (a caption folds at the table's width): the halt and stop of entries,
    the money, what is hidden."""
    tot, q = status["totals"], status["totals"]["quote"]
    lines: list[Text] = []
    if status["halted"]:
        lines.append(Text(f"HALTED: {status['halted']}", style="bold red"))
    if status["entries_stopped"]:
        lines.append(Text(f"entries stopped: {status['entries_stopped']}", style="bold yellow"))
    money = Text(f"positions {tot['positions']}  uPnL {_fixed(tot['unrealized_pnl'])} {q}")
    if tot["unpriced"]:
        money.append(f" (no price: {', '.join(tot['unpriced'])})", style="yellow")
    lines.append(money)
    if tot["realized_pnl"] is not None:
        lines.append(
            Text(f"realised {_fixed(tot['realized_pnl'])} {q}  cash {_fixed(tot['cash'])}")
        )
    if hidden:
        parts = ", ".join(f"{n} {phase}" for phase, n in sorted(hidden.items()))
        lines.append(Text(f"hidden: {parts}", style="dim"))
    return Text("\n").join(lines)


def _fixed(text: str | None) -> str:
    return "-" if text is None else f"{Decimal(text):.4f}"


# --- a durable session: the table from the database, in Rich's thread ----------------------
@contextlib.contextmanager
def watch_table(
    db_path: Path,
    state_dir: Path,
    *,
    marks: Callable[[], Mapping[str, float]],
    now_ms: Callable[[], int],
    display: DisplaySettings,
    title: Title,
    console: Console | None = None,
) -> Iterator[None]:
    """The live table of a running session, drawn ``display.refresh_per_s`` times a
    second by Rich's refresh thread from ``BookReader.status(now_ms(), marks())``: the
    trading loop never waits for it. A failed read shows the last table and the reason."""
    view = _DbView(db_path, state_dir, marks, now_ms, display, title)
    try:
        with Live(
            get_renderable=view.render,
            console=console or err,
            refresh_per_second=display.refresh_per_s,
        ):
            yield
    finally:
        view.close()


class _DbView:
    """One reader, opened on first draw, used by one thread at a time (the lock: Rich
    draws from its thread, and from the caller's when it starts and stops)."""

    def __init__(
        self,
        db_path: Path,
        state_dir: Path,
        marks: Callable[[], Mapping[str, float]],
        now_ms: Callable[[], int],
        display: DisplaySettings,
        title: Title,
    ) -> None:
        self.db_path, self.state_dir = db_path, state_dir
        self.marks, self.now_ms, self.display, self.title = marks, now_ms, display, title
        self._lock = threading.Lock()
        self._reader: BookReader | None = None
        self._last: RenderableType = Text("reading the state database…", style="dim")

    def render(self) -> RenderableType:
        with self._lock:
            try:
                if self._reader is None:
                    from fsmtrader.control.reads import BookReader

                    self._reader = BookReader(self.db_path, self.state_dir)
                status = self._reader.status(self.now_ms(), self.marks())
                self._last = status_rows_table(status, self.display, _title(self.title))
            except FsmTraderError as exc:
                return Group(self._last, Text(f"status not read: {exc}", style="red"))
            return self._last

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def _title(title: Title) -> str:
    return title() if callable(title) else title


# --- in memory: the same status from the engine's books -------------------------------------
def engine_status(engine: Engine) -> dict[str, Any]:
    """The status of an engine without a database (``demo``, ``backtest``), built by the
    same builder from its books; call it in the engine's thread (its progress callback).
    Its marks are the last closes it was fed."""
    books = engine.books()
    return build_status(
        [engine.states[s] for s in sorted(engine.states)],
        books.records.values(),
        books.portfolio,
        marks={sym: st.signal.last_close for sym, st in engine.states.items()},
        now_ms=engine.clock.now_ms(),
        halted=engine.halted,
        entries_stopped=engine.entries_stopped,
        modes=engine.policy.modes,
    )


def progress_title(done: int, total: int, label: str = "") -> str:
    if not total:
        return f"{label} {done:,} bars".strip()
    return f"{label} {done:,}/{total:,} bars ({100 * done / total:.0f}%)".strip()


class _EngineView:
    """The last status built in the engine's thread; Rich draws it from its own."""

    def __init__(self, display: DisplaySettings, label: str) -> None:
        self.display, self.label = display, label
        self._status: dict[str, Any] | None = None
        self._title = label

    def progress(self, engine: Engine, done: int, total: int) -> None:
        self._title = progress_title(done, total, self.label)
        self._status = engine_status(engine)  # replaced whole: the drawer never sees half

    def render(self) -> RenderableType:
        status = self._status
        if status is None:
            return Text(f"{self.label}: starting…", style="dim")
        return status_rows_table(status, self.display, self._title)


def run_with_display(
    s: Settings,
    series: list[Candles],
    filters: dict[str, MarketFilters],
    label: str,
    *,
    backfill: list[Candles] | None = None,
    speed: float = 0.0,
    quiet: bool = False,
    extra: dict[str, Any] | None = None,
) -> RunResult:
    """Run a session into a new run folder, with the live table unless ``quiet``; on any
    failure say where the partial output was left."""
    run_dir = new_run_dir(s.runs_dir, label)
    try:
        backtest = Backtest(s, series, filters, run_dir, backfill=backfill or ())
        if quiet:
            return backtest.run(speed=speed, extra_summary=extra)
        view = _EngineView(s.display, label)
        engine = backtest.engine
        with Live(
            get_renderable=view.render, console=err, refresh_per_second=s.display.refresh_per_s
        ):
            return backtest.run(
                progress=lambda done, total: view.progress(engine, done, total),
                speed=speed,
                extra_summary=extra,
            )
    except BaseException:
        partial = run_dir.with_name(run_dir.name + ".partial")
        if partial.exists():
            err.print(f"[yellow]run incomplete: partial output left in {partial}[/yellow]")
        raise


def print_summary(result: RunResult) -> None:
    """The run's summary as a two-column table on stdout."""
    s = result.summary
    t = Table(title=f"summary — {result.run_dir}", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    rows = [
        ("candles", f"{s['candles']:,}"),
        ("trades", str(s["trades"])),
        ("win rate", f"{100 * s['win_rate']:.1f} %"),
        ("realised PnL", s["realized_pnl"]),
        ("fees", s["fees"]),
        ("orders", str(s["orders"])),
        ("orders by final state", _kv(s["orders_by_final_state"])),
        ("ghosts by reason", _kv(s["ghosts_by_reason"]) or "none"),
        ("rejections", _kv(s["rejections_by_reason"]) or "none"),
        ("dust", _kv(s["dust"]) or "none"),
        ("guards blocked", str(s["guards_blocked"])),
        ("open positions", _kv(s["open_positions"]) or "none"),
        ("halted", s["halted"] or "no"),
        ("audit sha256", s["audit_sha256"][:16] + "…"),
        ("speed", f"{s['candles_per_s']:,} candles/s" if s["candles_per_s"] else "-"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())
