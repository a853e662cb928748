"""Each command imports what its own work needs: a whole ``fsmtrader backtest`` process
(the real ``python -m fsmtrader`` entry point) loads neither the API client, the durable
session, the control plane, ccxt, the web server, Telegram, optuna nor dask; and with
the commands imported lazily, ``--help`` still lists every one and each one's help works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmtrader.cli.app import COMMANDS, app
from fsmtrader.research.synthetic_year import write_year
from fsmtrader_testing.paper import clean_env, run_fsmtrader

# What a backtest must not pay for: other commands' libraries and our modules around them.
HEAVY = (
    "httpx",
    "ccxt",
    "fastapi",
    "starlette",
    "uvicorn",
    "telegram",
    "optuna",
    "dask",
    "distributed",
    "plotly",
    "pandas",
    "pyarrow.compute",  # float64 Feather columns need no cast (feeds/files.py)
    "fsmtrader.session",
    "fsmtrader.live",
    "fsmtrader.control.plane",
    "fsmtrader.control.reads",
    "fsmtrader.reconcile",
    "fsmtrader.store.sqlite",
    "fsmtrader.preflight",
    "fsmtrader.smoke",
    "fsmtrader.download",
    "fsmtrader.cli.control",
    "fsmtrader.cli.trading",
    "fsmtrader.cli.state",
    "fsmtrader.cli.status",
    "fsmtrader.cli.data",
)

# ``python -m fsmtrader ARGS`` in this process, then its sys.modules into a file
MODULES_AFTER = """
import json, runpy, sys
out = sys.argv[1]
sys.argv = ["fsmtrader", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("fsmtrader", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def _loaded(name: str, modules: set[str]) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_backtest_process_imports_no_heavy_module(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_year(data, pairs=2, days=2, seed=1)
    where = tmp_path / "modules.json"
    argv = [sys.executable, "-c", MODULES_AFTER, str(where), "backtest", "--data", str(data)]
    proc = subprocess.run(
        [*argv, "--json"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(where.read_text())
    assert got["code"] in (0, None), proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["candles"] == 2 * 2 * 1440
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "report.html").is_file() and (run / "report.json").is_file()
    modules = set(got["modules"])
    # the run went through the real command (so the list below means something)
    assert {"fsmtrader.cli.backtest", "fsmtrader.runner", "fsmtrader.research.report"} <= modules
    heavy = [name for name in HEAVY if _loaded(name, modules)]
    assert heavy == [], f"fsmtrader backtest imported {heavy}"


def test_help_lists_every_command(tmp_path: Path) -> None:
    proc = run_fsmtrader("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = [
        line.split()[1]
        for line in proc.stdout.splitlines()
        if line.startswith("│ ") and len(line.split()) > 2 and line.split()[1] in COMMANDS
    ]
    assert listed == list(COMMANDS)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_has_its_help(name: str) -> None:
    got = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
    assert got.exit_code == 0, got.output
    assert f"Usage: root {name} [OPTIONS]" in got.output, got.output


def test_unknown_command_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    proc = run_fsmtrader("backtes", cwd=tmp_path)
    assert proc.returncode == 2
    assert "No such command 'backtes'. Did you mean 'backtest'?" in proc.stderr
