"""Scenarios D and E: a real ``fsmtrader paper`` in a subprocess."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fsmtrader.config import Settings
from fsmtrader.smoke.report import ScenarioResult, verdict


def run_d(user: Settings, folder: Path) -> ScenarioResult:
    return verdict("D", ["not implemented yet"], {}, [])


def run_e(user: Settings, folder: Path) -> ScenarioResult:
    return verdict("E", ["not implemented yet"], {}, [])


RUNNERS: dict[str, Callable[[Settings, Path], ScenarioResult]] = {"D": run_d, "E": run_e}
