"""errors.required: the explicit check that replaces an assert (which python -O drops)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fsmtrader.errors import required


def test_a_present_value_passes_through_unchanged() -> None:
    marker = object()
    assert required(marker, "marker") is marker
    assert required(0, "zero") == 0  # falsy is not missing


def test_a_missing_value_is_an_error_that_names_it() -> None:
    with pytest.raises(RuntimeError, match="internal error: the config file's path is missing"):
        required(None, "the config file's path")


def test_the_check_holds_under_python_dash_o() -> None:
    code = "from fsmtrader.errors import required\nrequired(None, 'x')\n"
    proc = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1 and "internal error: x is missing" in proc.stderr
