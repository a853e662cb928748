"""The ``backtest`` command: the strategy on candle files, one wallet and shared slots for
every symbol, through the same engine as live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fsmtrader.cli.console import err, out
from fsmtrader.cli.display import print_summary, run_with_display
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import ConfigOpt, DataOpt, MarketsOpt, settings_from
from fsmtrader.config import Settings
from fsmtrader.errors import ConfigError, FsmTraderError
from fsmtrader.markets import MarketFilters
from fsmtrader.research.inputs import Inputs, filters_and_source, input_symbols, load_inputs
from fsmtrader.research.report.headline import print_headline

SymbolsOpt = Annotated[
    str | None,
    typer.Option(
        "--symbols",
        help="Comma-separated BASE/QUOTE, e.g. BTC/USDT,ETH/USDT: the symbols to run "
        "(default: every file, named from its file name); names a single file's symbol.",
    ),
]
SymbolOpt = Annotated[
    str | None, typer.Option("--symbol", help="One symbol: the same as --symbols with one.")
]
TimerangeOpt = Annotated[
    str | None,
    typer.Option(
        "--timerange",
        help="YYYYMMDD-YYYYMMDD as in freqtrade, both ends inclusive, either may be empty.",
    ),
]
FastOpt = Annotated[
    bool,
    typer.Option(
        "--fast", help="Skip candles where nothing can trigger (the backtest.fast setting)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def backtest(
    data: DataOpt,
    symbols: SymbolsOpt = None,
    symbol: SymbolOpt = None,
    timerange: TimerangeOpt = None,
    fast: FastOpt = False,
    config: ConfigOpt = None,
    markets: MarketsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Backtest the strategy on candle files: every symbol in one wallet, sharing
    risk.max_open_positions, with the same engine as paper and live."""

    def run() -> None:
        wanted = _symbols(symbols, symbol)
        base = _base_settings(config, input_symbols(data, wanted))
        quote = base.market.quote
        warmup_ms = base.entry.anchor_window_min * 60_000
        inputs = load_inputs(data, wanted, timerange, quote, warmup_ms=warmup_ms)
        filters, source, notes = filters_and_source(inputs.series, markets, quote)
        inputs.warnings.extend(notes)
        inputs.refuse_untradeable()
        names = [c.symbol for c in inputs.series]
        s = settings_from(
            config, market={"symbols": names}, backtest={"fast": True} if fast else None
        )
        if not as_json:
            _tell(inputs, filters, source)
        for w in inputs.warnings:
            err.print(f"[yellow]warning:[/yellow] {escape(w)}", highlight=False, markup=True)
        extra = {
            "filters_source": source,
            "skipped_rows": sum(inputs.skipped_rows.values()),
            "data": [str(p) for p in data],
            "inputs": inputs.summary(),
        }
        result = run_with_display(s, inputs.series, filters, "backtest", quiet=as_json, extra=extra)
        if as_json:
            out.print_json(json.dumps(result.summary, default=str))
        else:
            print_summary(result)
            print_headline(result.run_dir, out)

    guard(run)


def _base_settings(config: Path | None, names: list[str]) -> Settings:
    """The settings as written, for the wallet's quote and the warm-up; when their own
    symbols do not fit (market.quote = "EUR" with the default USDT symbols), with the
    data's symbols instead. A data quote that fits neither is then named by load_inputs."""
    try:
        return settings_from(config)
    except ConfigError:
        return settings_from(config, market={"symbols": names})


def _symbols(symbols: str | None, symbol: str | None) -> list[str] | None:
    """``--symbols`` split on commas, or the one ``--symbol``; not both."""
    if symbols is not None and symbol is not None:
        raise FsmTraderError("--symbol and --symbols: give one of them (--symbols A/B,C/D)")
    if symbol is not None:
        return [symbol]
    if symbols is None:
        return None
    return [s for s in (part.strip() for part in symbols.split(",")) if s] or [""]


def _tell(inputs: Inputs, filters: dict[str, MarketFilters], source: str) -> None:
    """One line per symbol on stderr: its candles, span, file, gaps and filters."""
    for c in inputs.series:
        f = filters[c.symbol]
        err.print(
            f"backtest: {inputs.line(c)}; filters ({source}): tick {f.tick_size}, "
            f"step {f.step_size}, min_qty {f.min_qty}, min_notional {f.min_notional}",
            highlight=False,
            markup=False,
        )
