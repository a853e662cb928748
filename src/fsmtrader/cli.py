"""The ``fsmtrader`` command line. Errors in input are one line on stderr, never a trace."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from fsmtrader.config import Settings, default_toml, load_settings
from fsmtrader.engine import Engine
from fsmtrader.errors import FsmTraderError
from fsmtrader.feeds import Candles, load_csv, synthetic_market
from fsmtrader.fsm.table import check_table, render_mermaid, render_table
from fsmtrader.markets import MarketFilters
from fsmtrader.runner import (
    Backtest,
    RunResult,
    filters_for,
    filters_from_price,
    load_markets_file,
    new_run_dir,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="fsmtrader: a crash-safe spot trading engine built on explicit state machines.",
)
# soft_wrap: an error stays one line in a pipe, a log or cron (rich would fold at 80).
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML settings file (see `fsmtrader config`).")
]


def _guard(fn: Callable[[], T]) -> T:
    """Run a command; known errors become one red line and exit code 2, anything else a
    one-line message with the trace saved to a file (not dumped on the user)."""
    try:
        return fn()
    except FsmTraderError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            err.print(f"[red]error:[/red] {line}", highlight=False, markup=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        crash = Path(tempfile.gettempdir()) / f"fsmtrader-crash-{os.getpid()}.log"
        crash.write_text(traceback.format_exc())
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (trace in {crash})")
        raise typer.Exit(1) from None


def _settings(config: Path | None, **overrides: Any) -> Settings:
    clean = {k: v for k, v in overrides.items() if v is not None}
    return load_settings(config, overrides=clean or None)


@app.command()
def fsm(
    mermaid: Annotated[bool, typer.Option(help="Print a Mermaid state diagram instead.")] = False,
) -> None:
    """Print the symbol state machine's transition table (the single source of truth)."""
    out.print(render_mermaid() if mermaid else render_table(), highlight=False, markup=False)
    problems = check_table()
    if problems:
        for p in problems:
            err.print(f"[red]table problem:[/red] {p}")
        raise typer.Exit(1)


@app.command()
def config(
    config: ConfigOpt = None,
    defaults: Annotated[bool, typer.Option(help="Print the commented default file.")] = False,
) -> None:
    """Validate and print the effective settings (or the commented defaults)."""

    def run() -> None:
        if defaults:
            sys.stdout.write(default_toml())  # verbatim: it must stay valid TOML
            return
        s = _settings(config)
        out.print_json(json.dumps(s.redacted_dict()))

    _guard(run)


@app.command()
def demo(
    config: ConfigOpt = None,
    hours: Annotated[float | None, typer.Option(help="Simulated hours to trade.")] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="Simulated seconds per wall second (0: as fast as possible)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the synthetic market.")] = None,
    quiet: Annotated[bool, typer.Option(help="No live table; summary only.")] = False,
) -> None:
    """Paper-trade a synthetic market on the built-in simulated exchange (no keys, no network)."""

    def run() -> None:
        _check_speed(speed, allow_zero=True)
        s = _settings(config, seed=seed, demo={"hours": hours} if hours is not None else None)
        minutes = int(s.demo.hours * 60)
        warm = s.entry.anchor_window_min
        market = synthetic_market(s.market.symbols, minutes=warm + minutes, seed=s.seed)
        backfill = [c.slice(0, warm) for c in market]
        series = [c.slice(warm, warm + minutes) for c in market]
        filters = filters_for(series, s.market.quote)
        pace = s.demo.speed if speed is None else speed
        if pace == 0 and speed is None and not quiet and sys.stdout.isatty():
            pace = 3600.0  # an hour a second: long enough to watch, short enough to wait for
        err.print(
            f"demo: paper session, {len(series)} symbols x {minutes} one-minute bars "
            f"({s.demo.hours:g} h simulated), seed {s.seed}, speed "
            f"{'max' if pace == 0 else f'{pace:g}x'}"
        )
        result = _run_with_display(
            s, series, filters, "demo", backfill=backfill, speed=pace, quiet=quiet
        )
        _print_summary(result)

    _guard(run)


@app.command()
def backtest(
    data: Annotated[
        Path, typer.Option("--data", help="OHLCV CSV: timestamp_ms,open,high,low,close,volume")
    ],
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol the file holds, e.g. LTC/USDT")],
    config: ConfigOpt = None,
    markets: Annotated[
        Path | None, typer.Option("--markets", help="CCXT markets JSON for real exchange filters.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Backtest the strategy on a candle file with the same engine as paper and live."""

    def run() -> None:
        s = _settings(config, market={"symbols": [symbol]}, mode="backtest")
        skipped: list[str] = []
        candles = load_csv(data, symbol, on_skip=skipped.append)
        filters, source = _backtest_filters(symbol, candles, markets, s.market.quote)
        if not as_json:
            f = filters[symbol]
            err.print(
                f"backtest: {len(candles)} candles of {symbol} from {data}; filters ({source}): "
                f"tick {f.tick_size}, step {f.step_size}, min_qty {f.min_qty}, "
                f"min_notional {f.min_notional}"
                + (f"; skipped {len(skipped)} bad row(s)" if skipped else "")
            )
        extra = {"filters_source": source, "skipped_rows": len(skipped), "data": str(data)}
        result = _run_with_display(s, [candles], filters, "backtest", quiet=as_json, extra=extra)
        if as_json:
            out.print_json(json.dumps(result.summary, default=str))
        else:
            _print_summary(result)

    _guard(run)


@app.command()
def paper(
    config: ConfigOpt = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="State directory (database, sim exchange, audit).")
    ] = None,
    hours: Annotated[float | None, typer.Option(help="Simulated hours of a new session.")] = None,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per wall second of a new session.")
    ] = 60.0,
    run_for: Annotated[
        float | None, typer.Option("--for", help="Stop after this many wall seconds.")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No live table.")] = False,
) -> None:
    """A durable paper session: kill it at any time (even SIGKILL) and run the same command
    again — it restores, resolves open intents by clientOrderId, reconciles, continues."""
    from fsmtrader.session import PaperSession

    def run() -> None:
        _check_speed(speed, allow_zero=False)
        s = _settings(config, mode="paper", demo={"hours": hours} if hours is not None else None)
        folder = state_dir or s.state_dir
        stop = _stop_on_sigterm()
        session = PaperSession(s, folder, hours=s.demo.hours, speed=speed)
        try:
            report = session.start()
            state = "restored" if session.restored else "new"
            err.print(
                f"paper: {state} session in {folder} ({len(session.series)} symbols, "
                f"{session.info.minutes} min at {session.info.speed:g}x); "
                f"{report.recovered_intents} open intent(s) recovered; {report.summary()}"
            )
            if session.engine.halted:
                err.print(
                    f"[red]HALTED:[/red] {session.engine.halted} (open positions are "
                    "still managed; no new entries)"
                )
            if quiet:
                summary = session.run(stop_after_s=run_for, should_stop=stop)
            else:
                with Live(console=err, refresh_per_second=4) as live:
                    summary = session.run(
                        stop_after_s=run_for,
                        should_stop=stop,
                        progress=lambda done, total: live.update(
                            _status_table(done, total, session.engine)
                        ),
                    )
        finally:
            session.close()
        out.print_json(json.dumps(summary, default=str))

    _guard(run)


@app.command()
def reconcile(
    config: ConfigOpt = None,
    state_dir: Annotated[Path | None, typer.Option(help="State directory of the session.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compare the state database with the exchange and write the reconcile report.
    Exits 0 when everything matches, 3 on a mismatch."""

    def run() -> None:
        s = _settings(config)
        folder = state_dir or s.state_dir
        if not (folder / "fsmtrader.db").exists() and not s.database_url:
            raise FsmTraderError(f"{folder}: no session here (no fsmtrader.db)")
        session = _open_session_of(s, folder)
        try:
            report = session.reconcile_now()
        finally:
            session.close()
        if as_json:
            out.print_json(json.dumps(report.to_dict(), default=str))
        else:
            out.print(report.summary())
            out.print(f"report: {folder / 'reconcile.json'}")
        if not report.ok:
            raise typer.Exit(3)

    _guard(run)


@app.command()
def trade(
    config: ConfigOpt = None,
    live: Annotated[
        bool, typer.Option("--live", help="Place REAL orders on the venue (needs keys).")
    ] = False,
    confirm_live: Annotated[
        bool,
        typer.Option("--confirm-live", help="Required with --live: I accept real orders."),
    ] = False,
    state_dir: Annotated[Path | None, typer.Option(help="State directory.")] = None,
    run_for: Annotated[
        float | None, typer.Option("--for", help="Stop after this many wall seconds.")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No live table.")] = False,
) -> None:
    """Trade on the configured venue: paper with live prices by default (real tickers,
    simulated fills); --live --confirm-live places real orders."""
    from fsmtrader.config import live_problems
    from fsmtrader.live import LiveSession

    def run() -> None:
        s = _settings(config, mode="live" if live else "paper")
        if live:
            problems = live_problems(s)
            if not confirm_live:
                problems.insert(
                    0,
                    "--confirm-live: live trading places real orders; add "
                    "--confirm-live to confirm",
                )
            if problems:
                raise FsmTraderError("refusing to trade live:\n" + "\n".join(problems))
        folder = state_dir or s.state_dir
        stop = _stop_on_sigterm()
        session = LiveSession(s, folder, paper=not live)
        try:
            report = session.start()
            where = s.exchange.base_url or s.exchange.name
            err.print(
                f"trade: {'LIVE' if live else 'paper (live prices)'} on {where}, "
                f"{len(s.market.symbols)} symbols, state in {folder}; "
                f"{report.recovered_intents} open intent(s) recovered; {report.summary()}"
            )
            if session.engine.halted:
                err.print(f"[red]HALTED:[/red] {session.engine.halted}")
            if quiet:
                summary = session.run(stop_after_s=run_for, should_stop=stop)
            else:
                with Live(console=err, refresh_per_second=4) as view:
                    summary = session.run(
                        stop_after_s=run_for,
                        should_stop=stop,
                        progress=lambda done, total: view.update(
                            _status_table(done, 0, session.engine)
                        ),
                    )
        finally:
            session.close()
        out.print_json(json.dumps(summary, default=str))

    _guard(run)


def _check_speed(speed: float | None, *, allow_zero: bool) -> None:
    if speed is None:
        return
    if not math.isfinite(speed) or speed < 0 or (speed == 0 and not allow_zero):
        allowed = ">= 0 (0: as fast as possible)" if allow_zero else "> 0"
        raise FsmTraderError(
            f"--speed: must be {allowed}, in simulated seconds per wall second (got {speed:g})"
        )


def _open_session_of(s: Settings, folder: Path) -> Any:
    """The session a state directory belongs to (paper, paper on live prices, or live),
    so reconcile compares with the right exchange and writes nothing foreign into it."""
    from fsmtrader.live import LiveSession
    from fsmtrader.session import PaperSession, session_kind

    kind = session_kind(folder, s)
    if kind == "paper":
        return PaperSession(s, folder, hours=s.demo.hours, speed=60.0)
    if kind in ("live", "paper-live"):
        return LiveSession(s, folder, paper=kind == "paper-live")
    raise FsmTraderError(f"{folder}: no session here (run `fsmtrader paper` or `trade` first)")


def _stop_on_sigterm() -> Callable[[], bool]:
    """SIGTERM ends a session like Ctrl-C: the loop stops, state is committed, locks go."""
    stopped = {"flag": False}

    def handler(signum: int, frame: object) -> None:
        stopped["flag"] = True

    signal.signal(signal.SIGTERM, handler)
    return lambda: stopped["flag"]


@app.command("sim-server")
def sim_server(
    flavour: Annotated[str, typer.Option(help="binance or mexc")] = "binance",
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1.")] = 8765,
    api_key: Annotated[str, typer.Option(help="The key clients must send.")] = "test-key",
    api_secret: Annotated[str, typer.Option(help="The secret they sign with.")] = "test-secret",
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 60.0,
    quirk: Annotated[
        list[str] | None, typer.Option(help="MEXC quirk to switch on (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic prices.")] = 0,
) -> None:
    """A local spot exchange on 127.0.0.1 speaking Binance's (or MEXC's) REST API, backed
    by the simulated exchange: point any ccxt client's base URLs at it."""

    def run() -> None:
        try:  # test support, not product: the one allowed import (tests/test_invariants.py)
            from fsmtrader_testing.simserver import serve
        except ModuleNotFoundError as exc:
            raise FsmTraderError(
                f"sim-server: cannot load the test-support package ({exc.name} is missing); "
                "install fsmtrader from its source tree: pip install -e ."
            ) from None
        if flavour not in ("binance", "mexc"):
            raise FsmTraderError(f"--flavour: must be binance or mexc (got {flavour!r})")
        if not 0 <= port <= 65535:
            raise FsmTraderError(f"--port: must be 0..65535, 0 for any free port (got {port})")
        try:
            serve(
                flavour=flavour,  # type: ignore[arg-type]
                api_key=api_key,
                api_secret=api_secret,
                port=port,
                speed=speed,
                quirks=frozenset(quirk or ()),
                seed=seed,
                on_ready=lambda url: out.print(f"sim-server ({flavour}) listening on {url}"),
            )
        except (ValueError, OSError) as exc:
            raise FsmTraderError(f"sim-server: {exc}") from None

    _guard(run)


@app.command("download-data")
def download_data(
    exchange: Annotated[str, typer.Option(help="binance or mexc")] = "binance",
    symbols: Annotated[
        list[str] | None, typer.Option("--symbols", help="Symbol(s), e.g. BTC/USDT (repeatable).")
    ] = None,
    timeframe: Annotated[str, typer.Option(help="1m 3m 5m 15m 30m 1h 4h 1d")] = "1m",
    days: Annotated[float, typer.Option(help="How many days back from now.")] = 1.0,
    out_dir: Annotated[Path, typer.Option(help="Folder for the CSV files.")] = Path("data"),
    base_url: Annotated[
        str, typer.Option(help="A local server instead of the venue (http://127.0.0.1:PORT).")
    ] = "",
) -> None:
    """Download candles into the CSV format `backtest --data` reads; an existing file is
    resumed from its last candle. Public data: no keys needed."""
    import time as _time

    from rich.progress import Progress as Bar

    from fsmtrader.download import default_path, download_ohlcv
    from fsmtrader.exchange.ccxt_adapter import CcxtExchange, local_urls

    def run() -> None:
        if exchange not in ("binance", "mexc"):
            raise FsmTraderError(f"--exchange: must be binance or mexc (got {exchange!r})")
        wanted = [s.strip() for item in (symbols or ["BTC/USDT"]) for s in item.split(",")]
        if base_url:  # the same rule as exchange.base_url: only this machine
            try:
                _settings(None, exchange={"base_url": base_url})
            except FsmTraderError:
                raise FsmTraderError(
                    f"--base-url: must be http://127.0.0.1:PORT, a server on this machine "
                    f"(got {base_url!r}); leave it out for the real venue"
                ) from None
        try:
            paths = {sym: default_path(out_dir, exchange, sym, timeframe) for sym in wanted}
        except ValueError as exc:
            raise FsmTraderError(f"--timeframe/--symbols: {exc}") from None
        if not math.isfinite(days) or days <= 0:
            raise FsmTraderError(f"--days: must be > 0 (got {days:g})")
        venue_id: Literal["binance", "mexc"] = "mexc" if exchange == "mexc" else "binance"
        urls = local_urls(venue_id, base_url.rstrip("/")) if base_url else None
        venue = CcxtExchange(venue_id, api_key=None, api_secret=None, urls=urls, inline=True)
        try:
            markets = venue.load_markets()
            unknown = [sym for sym in wanted if sym not in markets]
            if unknown:
                raise FsmTraderError(
                    f"--symbols: {', '.join(unknown)} not on {exchange} "
                    f"(e.g. {', '.join(sorted(markets)[:8])})"
                )
            now = int(_time.time() * 1000)
            with Bar(console=err, transient=False) as bar:
                for sym, path in paths.items():
                    task = bar.add_task(f"{sym} {timeframe}", total=1.0)

                    def show(done: int, total: int, task: Any = task) -> None:
                        bar.update(task, completed=done / total if total else 1.0)

                    result = download_ohlcv(
                        venue,
                        sym,
                        timeframe=timeframe,
                        days=days,
                        out=path,
                        now_ms=now,
                        progress=show,
                    )
                    bar.update(task, completed=1.0)
                    err.print(
                        f"{sym}: {result.rows:,} candles in {result.path} "
                        f"({'resumed, ' if result.resumed else ''}{result.rows_added:,} new)"
                        + "".join(f"; {n}" for n in result.notes)
                    )
        except ValueError as exc:
            raise FsmTraderError(str(exc)) from None
        finally:
            venue.close()

    _guard(run)


@app.command()
def recover(
    config: ConfigOpt = None,
    state_dir: Annotated[Path | None, typer.Option(help="State directory of the session.")] = None,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Take this symbol out of ERROR now.")
    ] = None,
    clear_halt: Annotated[
        bool, typer.Option("--clear-halt", help="Allow new entries again after a halt.")
    ] = False,
) -> None:
    """Manual recovery while the bot is stopped: bring symbols out of ERROR without waiting
    for their backoff, and/or lift a halt (after you have checked its reason)."""

    def run() -> None:
        if not symbol and not clear_halt:
            raise FsmTraderError("recover: say what to do: --symbol SYM and/or --clear-halt")
        s = _settings(config)
        folder = state_dir or s.state_dir
        session = _open_session_of(s, folder)
        try:
            engine = session.engine
            for sym in symbol or []:
                if sym not in engine.states:
                    raise FsmTraderError(
                        f"--symbol {sym}: not in this session ({', '.join(engine.states)})"
                    )
                st = engine.states[sym]
                if not engine.recover(sym):
                    raise FsmTraderError(f"--symbol {sym}: it is in {st.phase}, not in ERROR")
                out.print(f"{sym}: recovered, now {st.phase}")
            if clear_halt:
                if engine.halted:
                    out.print(f"halt lifted (it was: {engine.halted})")
                    engine.resume_entries()
                else:
                    out.print("not halted")
            engine.commit()
        finally:
            session.close()

    _guard(run)


def _backtest_filters(
    symbol: str, candles: Candles, markets: Path | None, quote: str
) -> tuple[dict[str, MarketFilters], str]:
    if markets is not None:
        table = load_markets_file(markets)
        if symbol not in table:
            known = ", ".join(sorted(table))
            raise FsmTraderError(f"--symbol {symbol}: not in {markets} (known: {known})")
        return {symbol: table[symbol]}, f"from {markets}"
    f = filters_from_price(symbol, candles.close[0], quote)
    return {symbol: f}, "defaults derived from the data"


def _run_with_display(
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
    run_dir = new_run_dir(s.runs_dir, label)
    try:
        backtest = Backtest(s, series, filters, run_dir, backfill=backfill or ())
        if quiet:
            return backtest.run(speed=speed, extra_summary=extra)
        with Live(console=err, refresh_per_second=8, transient=False) as live:

            def progress(done: int, total: int) -> None:
                live.update(_status_table(done, total, backtest.engine))

            return backtest.run(progress=progress, speed=speed, extra_summary=extra)
    except BaseException:
        partial = run_dir.with_name(run_dir.name + ".partial")
        if partial.exists():
            err.print(f"[yellow]run incomplete: partial output left in {partial}[/yellow]")
        raise


def _status_table(done: int, total: int, engine: Engine) -> Table:
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
        sig = engine.signals[sym]
        pos = pf.positions.get(sym)
        t.add_row(
            sym,
            st.phase.value,
            f"{sig.last_close:g}",
            f"{sig.anchor:g}",
            f"{pos.qty}" if pos else "",
        )
    return t


def _print_summary(result: RunResult) -> None:
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


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
