"""A real Dask cluster on 127.0.0.1 (one ``dask scheduler`` and two ``dask worker``
processes, random ports, no dashboard) and the sweep's inputs: a week of real Binance
candles split into a training and a test range, a base config and a space file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fsmtrader_testing.paper import clean_env

from conftest import shared_file

DASK = str(Path(sys.executable).with_name("dask"))
LTC = "binance_usdm_LTCUSDT_1m_2026-02.csv"
TRAIN, TEST = "20260201-20260204", "20260205-20260207"

BASE_TOML = """\
seed = 7
[entry]
anchor_window_min = 30
[exit]
trailing_activation_pct = 0
max_hold_min = 240
"""

SPACE_TOML = """\
"entry.drop_trigger_pct" = { low = 0.5, high = 3, step = 0.25 }
"exit.take_profit_pct" = { low = 0.3, high = 3, log = true }
"exit.stop_loss_pct" = { low = 0.5, high = 4, step = 0.5 }
"backtest.both_touch" = { choices = ["stop_first", "nearer_open_first"] }
"""


@dataclass(frozen=True)
class Inputs:
    data: Path
    base: Path
    space: Path


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    base, space = tmp_path / "base.toml", tmp_path / "space.toml"
    base.write_text(BASE_TOML)
    space.write_text(SPACE_TOML)
    return Inputs(shared_file(LTC), base, space)


def sweep_args(i: Inputs, run_dir: Path, trials: int, *extra: str, train: str = TRAIN) -> list[str]:
    """``fsmtrader sweep`` on the LTC file, training range ``train``."""
    return [
        "sweep",
        "--config", str(i.base),
        "--space", str(i.space),
        "--trials", str(trials),
        "--objective", "return_pct",
        "--data", str(i.data),
        "--train", train,
        "--run-dir", str(run_dir),
        *extra,
    ]  # fmt: skip


@dataclass(frozen=True)
class DaskCluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: tuple[subprocess.Popen[bytes], ...]


def _address(path: Path, proc: subprocess.Popen[bytes], deadline: float) -> str:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with {proc.returncode}")
        try:
            return str(json.loads(path.read_text())["address"])
        except (FileNotFoundError, ValueError, KeyError):
            time.sleep(0.1)
    raise RuntimeError("dask scheduler did not write its scheduler file")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL what has not stopped after 20 s: nothing outlives the test."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def _spawn(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    """``dask *args`` in its own session (so it and its children stop together)."""
    return subprocess.Popen(
        [DASK, *args],
        cwd=cwd,
        env=clean_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    """The scheduler on a random port, two single-threaded workers; stopped at the end
    (and each would stop by itself: the scheduler after 5 idle minutes, the workers
    30 s after losing it)."""
    from distributed import Client

    folder = tmp_path / "dask"
    folder.mkdir()
    file = folder / "scheduler.json"
    scheduler = _spawn(
        "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
        "--dashboard-address", "127.0.0.1:0",
        "--scheduler-file", str(file), "--idle-timeout", "300s", cwd=folder,
    )  # fmt: skip
    procs = [scheduler]
    try:
        address = _address(file, scheduler, time.monotonic() + 60)
        for n in range(2):
            worker = _spawn(
                "worker", "--scheduler-file", str(file), "--nthreads", "1", "--nworkers", "1",
                "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "30s",
                "--name", f"w{n}", "--local-directory", str(folder / f"w{n}"), cwd=folder,
            )  # fmt: skip
            procs.append(worker)
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield DaskCluster(address, scheduler, tuple(procs[1:]))
    finally:
        _stop(procs[1:])
        _stop(procs[:1])
