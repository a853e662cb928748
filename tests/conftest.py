"""Shared test fixtures. The engine harness and its helpers live in
:mod:`fsmtrader_testing.harness`, where the scripts and benchmarks use them too."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"shared data file {path} is not present")
    return path
