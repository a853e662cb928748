"""What several commands share: their common options and settings with CLI overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fsmtrader.config import Settings, load_settings

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML settings file (see `fsmtrader config`).")
]
SessionDirOpt = Annotated[Path | None, typer.Option(help="State directory of the session.")]
RunForOpt = Annotated[
    float | None, typer.Option("--for", help="Stop after this many wall seconds.")
]


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    """The settings of ``config`` with the options the user gave (None: not given) on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return load_settings(config, overrides=clean or None)
