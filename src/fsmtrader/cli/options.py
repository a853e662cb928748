"""What several commands share: their common options, settings with CLI overrides, and
the refusal of a single-value option given twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from fsmtrader.cli.console import err
from fsmtrader.config import Settings, load_settings

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML settings file (see `fsmtrader config`).")
]
# The candle inputs, read through research.inputs alike by backtest and sweep.
DataOpt = Annotated[
    list[Path],
    typer.Option(
        "--data",
        help="Candle file or folder; repeat for more. CSV (timestamp_ms,open,high,low,close,"
        "volume), Feather, Parquet or freqtrade JSON; a folder like freqtrade's "
        "user_data/data/binance (BTC_USDT-1m.feather) gives every pair in it.",
    ),
]
MarketsOpt = Annotated[
    Path | None, typer.Option("--markets", help="CCXT markets JSON for real exchange filters.")
]
SessionDirOpt = Annotated[Path | None, typer.Option(help="State directory of the session.")]
RunForOpt = Annotated[
    float | None, typer.Option("--for", help="Stop after this many wall seconds.")
]


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    """The settings of ``config`` with the options the user gave (None: not given) on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return load_settings(config, overrides=clean or None)


class OnceGroup(TyperGroup):
    """The command group that refuses a single-value option given twice.

    click keeps the last of ``--config a --config b`` without a word, so a user who
    repeats a flag by mistake runs with settings they did not mean. Before a command
    runs, its arguments are scanned for its options, and an option that takes one value
    and appears twice is one ``error:`` line and exit code 2. Options declared as lists
    (``--data``) may repeat; flags (``--json``) repeat harmlessly.
    """

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None:
            repeated = repeated_option(cmd, rest)
            if repeated is not None:
                err.print(f"[red]error:[/red] {repeated}", highlight=False, markup=True)
                raise typer.Exit(2)
        return name, cmd, rest


def repeated_option(cmd: Any, args: list[str]) -> str | None:
    """What is wrong when ``args`` give a single-value option of ``cmd`` (or of the
    subcommand they lead to) more than once; None when nothing is. Anything else odd is
    left for the real parse to report."""
    takes_value: dict[str, str] = {}  # every spelling -> the long one
    multiple: set[str] = set()
    for param in getattr(cmd, "params", ()):
        opts = [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]
        if getattr(param, "param_type_name", "") != "option" or getattr(param, "is_flag", False):
            continue
        if getattr(param, "count", False):
            continue
        long = max(opts, key=len)
        if getattr(param, "multiple", False):
            multiple.add(long)
        takes_value.update(dict.fromkeys(opts, long))
    seen: Counter[str] = Counter()
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            return None
        head, eq, _ = token.partition("=")
        if token.startswith("--") and eq and head in takes_value:
            seen[takes_value[head]] += 1
        elif token in takes_value:
            seen[takes_value[token]] += 1
            i += 1  # its value
        elif not token.startswith("-") and token in getattr(cmd, "commands", {}):
            return repeated_option(cmd.commands[token], args[i + 1 :])
        i += 1
    for flag, n in seen.items():
        if n > 1 and flag not in multiple:
            return f"{flag} given {n} times: it takes one value (give it once)"
    return None
