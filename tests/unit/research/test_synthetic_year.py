"""The synthetic year: deterministic files the backtest can read, valid candles, trades."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from fsmtrader.errors import DataError
from fsmtrader.feeds import Candles, load_csv
from fsmtrader.research.synthetic_year import (
    file_name,
    pair_models,
    synthetic_pair,
    write_year,
)
from fsmtrader.runner import Backtest, filters_for
from fsmtrader_testing.harness import settings
from fsmtrader_testing.paper import run_fsmtrader as cli


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fmt", ["csv", "feather"])
def test_same_seed_gives_byte_identical_files_another_seed_does_not(
    tmp_path: Path, fmt: str
) -> None:
    a = write_year(tmp_path / "a", pairs=2, days=2, seed=3, fmt=fmt)
    write_year(tmp_path / "b", pairs=2, days=2, seed=3, fmt=fmt)
    write_year(tmp_path / "c", pairs=2, days=2, seed=4, fmt=fmt)
    assert [p.name for p in a] == [file_name("BTC/USDT", fmt), file_name("ETH/USDT", fmt)]
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    da, dc = digests(tmp_path / "a"), digests(tmp_path / "c")
    assert all(da[name] != dc[name] for name in da)
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temp left


def test_a_pair_does_not_change_when_more_pairs_are_written() -> None:
    one = synthetic_pair(pair_models(1)[0], 500, 9, 0)
    again = synthetic_pair(pair_models(3)[0], 500, 9, 0)
    assert np.array_equal(np.asarray(one.close), np.asarray(again.close))


def test_candles_are_valid_ohlc_on_a_strict_minute_grid() -> None:
    for i, model in enumerate(pair_models(5)):
        c = synthetic_pair(model, 20_000, 1, i)
        ts, o, h, lo, cl, v = (
            np.asarray(x) for x in (c.ts, c.open, c.high, c.low, c.close, c.volume)
        )
        assert np.all(np.diff(ts) == 60_000)
        assert np.all(lo <= o) and np.all(lo <= cl) and np.all(o <= h) and np.all(cl <= h)
        assert np.all(lo > 0) and np.all(v >= 0)
        assert np.mean(h > lo) > 0.95  # intraday wicks (a flat candle now and then at a tick)
        assert np.array_equal(o[1:], cl[:-1])  # the open is the previous close


def test_the_csv_reads_back_exactly_through_the_csv_loader(tmp_path: Path) -> None:
    (path,) = write_year(tmp_path, pairs=1, days=1, seed=5, fmt="csv")
    loaded = load_csv(path, "BTC/USDT")
    made = synthetic_pair(pair_models(1)[0], 1440, 5, 0)
    for col in ("ts", "open", "high", "low", "close", "volume"):
        assert list(getattr(loaded, col)) == np.asarray(getattr(made, col)).tolist(), col


def test_the_drop_buy_strategy_trades_on_it(tmp_path: Path) -> None:
    """Ten days of two volatile pairs give entries and exits of several kinds."""
    models = pair_models(4)[2:]
    series = [as_lists(synthetic_pair(m, 10 * 1440, 1, i + 2)) for i, m in enumerate(models)]
    s = settings(market={"symbols": [c.symbol for c in series]})
    summary = Backtest(s, series, filters_for(series), tmp_path / "r").run().summary
    assert summary["trades"] >= 5


def test_bad_input_is_one_error_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--pairs"):
        write_year(tmp_path, pairs=0)
    proc = cli("synthetic-data", "--out", str(tmp_path / "x"), "--format", "xls", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --format must be one of feather, csv, got 'xls'"
    ]


def test_the_command_writes_the_folder(tmp_path: Path) -> None:
    proc = cli(
        "synthetic-data", "--pairs", "2", "--days", "1", "--seed", "2", "--out", "d", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "BTC_USDT-1m.feather",
        "ETH_USDT-1m.feather",
    ]
    assert "2/2 pairs written" in proc.stderr


def as_lists(c: Candles) -> Candles:
    """The candles with Python-list columns, as the step loop on main reads them."""
    cols = (
        np.asarray(getattr(c, f)).tolist() for f in ("ts", "open", "high", "low", "close", "volume")
    )
    return Candles(c.symbol, *cols)


def test_backtest_reads_the_folder_and_fast_gives_the_same_audit(tmp_path: Path) -> None:
    """``synthetic-data`` then ``backtest --data DIR`` with and without ``--fast``, as real
    processes: the same trades and audit trail, and the fast run stepped fewer candles."""
    made = cli(
        "synthetic-data", "--pairs", "3", "--days", "4", "--seed", "3", "--out", "d", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    runs = {}
    for fast in (False, True):
        cwd = tmp_path / ("fast" if fast else "step")
        cwd.mkdir()
        proc = cli(
            "backtest",
            "--data",
            str(tmp_path / "d"),
            "--json",
            *(["--fast"] if fast else []),
            cwd=cwd,
        )
        assert proc.returncode == 0, proc.stderr
        (run_dir,) = (cwd / "runs").iterdir()
        runs[fast] = (json.loads(proc.stdout), run_dir)
    (step, step_dir), (fast, fast_dir) = runs[False], runs[True]
    assert step["candles"] == fast["candles"] == 3 * 4 * 1440
    assert step["trades"] > 0 and step["trades"] == fast["trades"]
    assert step["audit_sha256"] == fast["audit_sha256"]
    assert (step_dir / "trades.jsonl").read_bytes() == (fast_dir / "trades.jsonl").read_bytes()
    assert (fast["fast"], step["fast"]) == (True, False)
    assert fast["stepped"] < step["stepped"] == step["candles"]
