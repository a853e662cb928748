"""Commands that trade nothing: the transition table, the settings, the local exchange server."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from fsmtrader.cli.console import err, out
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import ConfigOpt, settings_from
from fsmtrader.config import Settings, default_toml
from fsmtrader.config.checks import unreachable_settings
from fsmtrader.config.live_policy import LIVE_RULES, live_rule_problems
from fsmtrader.errors import FsmTraderError
from fsmtrader.exchange.ccxt_adapter.venues import SUPPORTED, VENUES
from fsmtrader.fsm.table import check_table, render_mermaid, render_table


def show_fsm(
    mermaid: Annotated[bool, typer.Option(help="Print a Mermaid state diagram instead.")] = False,
) -> None:
    """Print the symbol state machine's transition table (the single source of truth)."""
    out.print(render_mermaid() if mermaid else render_table(), highlight=False, markup=False)
    problems = check_table()
    if problems:
        for p in problems:
            err.print(f"[red]table problem:[/red] {p}")
        raise typer.Exit(1)


def show_config(
    config: ConfigOpt = None,
    defaults: Annotated[bool, typer.Option(help="Print the commented default file.")] = False,
    check_live: Annotated[
        bool,
        typer.Option(
            "--check-live",
            help="Apply the live-trading rules to the file: exit 1 listing every rule broken.",
        ),
    ] = False,
) -> None:
    """Validate and print the effective settings (or the commented defaults); warn, on
    stderr, about settings that validate but cannot act as written. --check-live applies
    the rules `trade --live` and `preflight` apply (credentials aside)."""

    def run() -> None:
        if defaults:
            sys.stdout.write(default_toml())  # verbatim: it must stay valid TOML
            return
        s = settings_from(config)
        if check_live:
            _check_live(s)
            return
        out.print_json(json.dumps(s.redacted_dict()))
        for line in unreachable_settings(s):
            err.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)

    guard(run)


def _check_live(s: Settings) -> None:
    """One line per live rule the settings break (exit 1), or one line saying they pass."""
    problems = live_rule_problems(s)
    if problems:
        err.print(f"not ready for live trading ({len(problems)} rule(s) broken):", highlight=False)
        for line in problems:
            out.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"live rules: all {len(LIVE_RULES)} pass", highlight=False)


# The venue-rule options of sim-server, as types so its signature stays short.
_LagOption = Annotated[
    int | None, typer.Option(help="A new order is not found by any look-up for this long (ms).")
]
_FeeAssetOption = Annotated[
    str, typer.Option(help="Fees in: quote, received (base on a buy) or bnb.")
]
_FaultRateOption = Annotated[
    float, typer.Option(help="Probability of a random fault per signed trading request.")
]
_FaultKindOption = Annotated[
    list[str] | None,
    typer.Option(help="Random fault kind to draw from (repeatable; default: all)."),
]


def sim_server(
    flavour: Annotated[str, typer.Option(help=" or ".join(SUPPORTED))] = "binance",
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1.")] = 8765,
    api_key: Annotated[str, typer.Option(help="The key clients must send.")] = "test-key",
    api_secret: Annotated[str, typer.Option(help="The secret they sign with.")] = "test-secret",
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 60.0,
    quirk: Annotated[
        list[str] | None, typer.Option(help="MEXC quirk to switch on (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic prices.")] = 0,
    visibility_lag_ms: _LagOption = None,
    fee_asset: _FeeAssetOption = "quote",
    fault_rate: _FaultRateOption = 0.0,
    fault_seed: Annotated[int, typer.Option(help="Seed of the random faults.")] = 0,
    fault_kind: _FaultKindOption = None,
) -> None:
    """A local spot exchange on 127.0.0.1 speaking Binance's (or MEXC's) REST API, backed
    by the simulated exchange with that venue's rules: point any ccxt client's base URLs
    at it. GET /__sim/state counts the random faults injected, by kind."""

    def run() -> None:
        try:  # test support, not product: the one allowed import (tests/invariants/)
            from fsmtrader_testing.simserver import serve
        except ModuleNotFoundError as exc:
            raise FsmTraderError(
                f"sim-server: cannot load the test-support package ({exc.name} is missing); "
                "install fsmtrader from its source tree: pip install -e ."
            ) from None
        venue = VENUES.get(flavour)
        if venue is None:
            raise FsmTraderError(f"--flavour: must be {' or '.join(SUPPORTED)} (got {flavour!r})")
        if not 0 <= port <= 65535:
            raise FsmTraderError(f"--port: must be 0..65535, 0 for any free port (got {port})")
        try:
            serve(
                flavour=venue.id,
                api_key=api_key,
                api_secret=api_secret,
                port=port,
                speed=speed,
                quirks=frozenset(quirk or ()),
                seed=seed,
                on_ready=lambda url: out.print(f"sim-server ({flavour}) listening on {url}"),
                visibility_lag_ms=visibility_lag_ms,
                fee_asset=fee_asset,  # type: ignore[arg-type]  # checked by serve
                fault_rate=fault_rate,
                fault_seed=fault_seed,
                fault_kinds=fault_kind,
            )
        except (ValueError, OSError) as exc:
            raise FsmTraderError(f"sim-server: {exc}") from None

    guard(run)
