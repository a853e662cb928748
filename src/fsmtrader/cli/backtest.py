"""The ``backtest`` command: the strategy on a candle file, through the same engine as live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fsmtrader.cli.console import err, out
from fsmtrader.cli.display import print_summary, run_with_display
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import ConfigOpt, settings_from
from fsmtrader.errors import FsmTraderError
from fsmtrader.feeds import Candles, load_csv
from fsmtrader.markets import MarketFilters
from fsmtrader.runner import filters_from_price, load_markets_file


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
        s = settings_from(config, market={"symbols": [symbol]})
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
        result = run_with_display(s, [candles], filters, "backtest", quiet=as_json, extra=extra)
        if as_json:
            out.print_json(json.dumps(result.summary, default=str))
        else:
            print_summary(result)

    guard(run)


def _backtest_filters(
    symbol: str, candles: Candles, markets: Path | None, quote: str
) -> tuple[dict[str, MarketFilters], str]:
    """The symbol's filters from a markets file, else derived from the data's first
    price; and where they came from, for the user."""
    if markets is not None:
        table = load_markets_file(markets)
        if symbol not in table:
            known = ", ".join(sorted(table))
            raise FsmTraderError(f"--symbol {symbol}: not in {markets} (known: {known})")
        return {symbol: table[symbol]}, f"from {markets}"
    f = filters_from_price(symbol, candles.close[0], quote)
    return {symbol: f}, "defaults derived from the data"
