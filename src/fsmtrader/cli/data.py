"""The ``download-data`` command: public candles from a venue into the CSV files
``backtest --data`` reads, resuming files already there."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress as Bar
from rich.progress import TaskID

from fsmtrader.cli.console import err
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import settings_from
from fsmtrader.errors import FsmTraderError
from fsmtrader.exchange.ccxt_adapter.venues import SUPPORTED, VENUES, ExchangeId

if TYPE_CHECKING:  # the downloader and ccxt load when the command runs
    from fsmtrader.download import DownloadResult
    from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange


def download_data(
    exchange: Annotated[str, typer.Option(help=" or ".join(SUPPORTED))] = "binance",
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

    def run() -> None:
        venue_id = _checked_venue(exchange)
        wanted = [s.strip() for item in (symbols or ["BTC/USDT"]) for s in item.split(",")]
        _check_base_url(base_url)
        paths = _target_paths(out_dir, exchange, wanted, timeframe)
        if not math.isfinite(days) or days <= 0:
            raise FsmTraderError(f"--days: must be > 0 (got {days:g})")
        venue = _public_venue(venue_id, base_url)
        try:
            _check_listed(venue, wanted, exchange)
            _download_all(venue, paths, timeframe=timeframe, days=days)
        except ValueError as exc:
            raise FsmTraderError(str(exc)) from None
        finally:
            venue.close()

    guard(run)


def _checked_venue(exchange: str) -> ExchangeId:
    profile = VENUES.get(exchange)
    if profile is None:
        raise FsmTraderError(f"--exchange: must be {' or '.join(SUPPORTED)} (got {exchange!r})")
    return profile.id


def _check_base_url(base_url: str) -> None:
    """The same rule as ``exchange.base_url``: only a server on this machine."""
    if not base_url:
        return
    try:
        settings_from(None, exchange={"base_url": base_url})
    except FsmTraderError:
        raise FsmTraderError(
            f"--base-url: must be http://127.0.0.1:PORT, a server on this machine "
            f"(got {base_url!r}); leave it out for the real venue"
        ) from None


def _target_paths(
    out_dir: Path, exchange: str, wanted: list[str], timeframe: str
) -> dict[str, Path]:
    """The CSV file of each symbol; FsmTraderError for a timeframe or name not usable."""
    from fsmtrader.download import default_path

    try:
        return {sym: default_path(out_dir, exchange, sym, timeframe) for sym in wanted}
    except ValueError as exc:
        raise FsmTraderError(f"--timeframe/--symbols: {exc}") from None


def _public_venue(venue_id: ExchangeId, base_url: str) -> CcxtExchange:
    """A keyless client of the venue, or of the local server at ``base_url``."""
    from fsmtrader.exchange.ccxt_adapter.options import CcxtOptions
    from fsmtrader.exchange.ccxt_adapter.sync import CcxtExchange

    options = CcxtOptions(venue_id, api_key=None, api_secret=None, base_url=base_url or None)
    return CcxtExchange(options, inline=True)


def _check_listed(venue: CcxtExchange, wanted: list[str], exchange: str) -> None:
    markets = venue.load_markets()
    unknown = [sym for sym in wanted if sym not in markets]
    if unknown:
        raise FsmTraderError(
            f"--symbols: {', '.join(unknown)} not on {exchange} "
            f"(e.g. {', '.join(sorted(markets)[:8])})"
        )


def _download_all(
    venue: CcxtExchange, paths: dict[str, Path], *, timeframe: str, days: float
) -> None:
    """One file after the other, each with a progress bar and a one-line result."""
    from fsmtrader.download import download_ohlcv

    now = int(time.time() * 1000)
    with Bar(console=err, transient=False) as bar:
        for sym, path in paths.items():
            task = bar.add_task(f"{sym} {timeframe}", total=1.0)

            def show(done: int, total: int, task: TaskID = task) -> None:
                bar.update(task, completed=done / total if total else 1.0)

            result = download_ohlcv(
                venue, sym, timeframe=timeframe, days=days, out=path, now_ms=now, progress=show
            )
            bar.update(task, completed=1.0)
            err.print(_result_line(sym, result))


def _result_line(sym: str, result: DownloadResult) -> str:
    return (
        f"{sym}: {result.rows:,} candles in {result.path} "
        f"({'resumed, ' if result.resumed else ''}{result.rows_added:,} new)"
        + "".join(f"; {n}" for n in result.notes)
    )
