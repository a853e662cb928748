"""What a run shows: the live status table while it runs and the summary table after it."""

from __future__ import annotations

from typing import Any

from rich.live import Live
from rich.table import Table

from fsmtrader.cli.console import err, out
from fsmtrader.config import Settings
from fsmtrader.engine import Engine
from fsmtrader.feeds import Candles
from fsmtrader.markets import MarketFilters
from fsmtrader.runner import Backtest, RunResult, new_run_dir


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
        with Live(console=err, refresh_per_second=8, transient=False) as live:

            def progress(done: int, total: int) -> None:
                live.update(status_table(done, total, backtest.engine))

            return backtest.run(progress=progress, speed=speed, extra_summary=extra)
    except BaseException:
        partial = run_dir.with_name(run_dir.name + ".partial")
        if partial.exists():
            err.print(f"[yellow]run incomplete: partial output left in {partial}[/yellow]")
        raise


def status_table(done: int, total: int, engine: Engine) -> Table:
    """One row per symbol (phase, price, anchor, position) under a progress and PnL title."""
    pct = 100 * done / total if total else 100
    pf = engine.portfolio
    t = Table(
        title=f"{done:,}/{total:,} bars ({pct:.0f}%)  trades {len(pf.trades)}  "
        f"realised PnL {pf.realized_pnl:.4f} {pf.quote}  cash {pf.cash:.2f}"
    )
    t.add_column("symbol")
    t.add_column("phase")
    t.add_column("price", justify="right")
    t.add_column("anchor", justify="right")
    t.add_column("position", justify="right")
    for sym, st in engine.states.items():
        sig = st.signal
        pos = pf.positions.get(sym)
        t.add_row(
            sym,
            st.phase.value,
            f"{sig.last_close:g}",
            f"{sig.anchor:g}",
            f"{pos.qty}" if pos else "",
        )
    return t


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
