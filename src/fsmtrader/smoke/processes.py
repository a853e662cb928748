"""Scenarios D and E: a real ``fsmtrader paper`` in a subprocess."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fsmtrader.config import Settings
from fsmtrader.smoke.dashboard import run_e
from fsmtrader.smoke.recovery import run_d
from fsmtrader.smoke.report import ScenarioResult

RUNNERS: dict[str, Callable[[Settings, Path], ScenarioResult]] = {"D": run_d, "E": run_e}
