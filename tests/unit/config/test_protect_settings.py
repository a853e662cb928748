"""[protect]: off by default; refused, naming the key and what to do, wherever the venue
is MEXC (no spot stop orders): the live exchange or the simulator's venue profile. The
CLI says it in one line and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fsmtrader.config import load_settings
from fsmtrader.config_wiring import engine_policy
from fsmtrader.errors import ConfigError


def test_off_by_default_and_the_engine_gets_no_stop_policy() -> None:
    s = load_settings(None, env={})
    assert s.protect.enabled is False
    assert engine_policy(s).protect is None


def test_on_binance_the_engine_gets_the_offset_and_the_move() -> None:
    s = load_settings(
        None, env={}, overrides={"protect": {"enabled": True, "limit_offset_bps": 50}}
    )
    p = engine_policy(s).protect
    assert p is not None and (str(p.limit_offset_bps), str(p.min_move_bps)) == ("50.0", "25.0")


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"exchange": {"name": "mexc"}}, "exchange.name = mexc"),
        ({"sim": {"venue": "mexc"}}, "sim.venue = mexc"),
    ],
)
def test_mexc_is_refused_naming_the_key(overrides: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={}, overrides={"protect": {"enabled": True}, **overrides})
    [line] = str(info.value).splitlines()
    assert line.startswith("protect.enabled (from override): MEXC has no spot stop orders")
    assert where in line and line.endswith("set protect.enabled = false (got true)")


def test_mexc_without_protect_is_fine() -> None:
    assert load_settings(None, env={}, overrides={"sim": {"venue": "mexc"}}).sim.venue == "mexc"


def test_the_cli_refuses_it_in_one_line_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[protect]\nenabled = true\n[sim]\nvenue = "mexc"\n', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "fsmtrader", "config", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert f"protect.enabled (from {path}): MEXC has no spot stop orders" in run.stderr
