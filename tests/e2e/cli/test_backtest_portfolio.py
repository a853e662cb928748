"""``fsmtrader backtest`` on several files and folders, through real subprocesses: one
wallet and shared slots, freqtrade's data folder, --symbols, --timerange, and every
warning and refusal a user should see instead of a silent empty run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from fsmtrader.feeds import Candles, synthetic_market, write_csv
from fsmtrader_testing.paper import one_error_line
from fsmtrader_testing.paper import run_fsmtrader as cli

from conftest import shared_file

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MIN = 60_000
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def _file(symbol: str) -> str:
    return symbol.replace("/", "_") + "-1m.csv"


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of three synthetic pairs (sharp drops several times a day each)."""
    folder = tmp_path_factory.mktemp("market")
    for c in synthetic_market(PAIRS, minutes=2 * 1440, seed=5, start_ms=T0):
        write_csv(folder / _file(c.symbol), c)
    return folder


def _config(tmp: Path, slots: int) -> Path:
    path = tmp / f"slots{slots}.toml"
    path.write_text(f"[risk]\nmax_open_positions = {slots}\n")
    return path


def _run(tmp: Path, *args: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    proc = cli("backtest", *args, "--json", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    (run,) = [p for p in (tmp / "runs").iterdir() if p.name.startswith("backtest-")]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["audit_sha256"] == out["audit_sha256"]
    trades = [json.loads(ln) for ln in (run / "trades.jsonl").read_text().splitlines()]
    return summary, trades


def _most_open_at_once(trades: list[dict[str, Any]]) -> int:
    """The most trades open at one moment (an exit and an entry in the same ms do not
    count as overlapping)."""
    edges = sorted([(t["exit_ms"], -1) for t in trades] + [(t["entry_ms"], 1) for t in trades])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_three_pairs_share_one_slot(market: Path, tmp_path: Path) -> None:
    """One wallet for three pairs: with max_open_positions = 1 the trades never overlap
    in time, although the same data with three slots does overlap."""
    one, three = tmp_path / "one", tmp_path / "three"
    one.mkdir(), three.mkdir()
    s1, t1 = _run(one, "--data", str(market), "--config", str(_config(one, 1)))
    s3, t3 = _run(three, "--data", str(market), "--config", str(_config(three, 3)))
    for summary in (s1, s3):
        assert summary["symbols"] == PAIRS and summary["candles"] == 3 * 2 * 1440
        assert summary["inputs"]["candles"] == dict.fromkeys(PAIRS, 2 * 1440)
    assert _most_open_at_once(t3) > 1  # the data do give simultaneous signals
    assert _most_open_at_once(t1) == 1
    assert {t["symbol"] for t in t1} == set(PAIRS)  # every pair traded, one at a time
    assert len(t1) < len(t3)
    config = json.loads(next((one / "runs").iterdir()).joinpath("config.json").read_text())
    assert config["market"]["symbols"] == PAIRS and config["risk"]["max_open_positions"] == 1


def test_files_and_symbols_select_and_order(market: Path, tmp_path: Path) -> None:
    summary, trades = _run(
        tmp_path,
        "--data", str(market / _file("SOL/USDT")),
        "--data", str(market / _file("BTC/USDT")),
        "--data", str(market / _file("ETH/USDT")),
        "--symbols", "ETH/USDT,SOL/USDT",
        "--timerange", "20240102-",
    )  # fmt: skip
    assert summary["symbols"] == ["ETH/USDT", "SOL/USDT"]
    assert summary["candles"] == 2 * 1440
    inputs = summary["inputs"]
    assert inputs["timerange"] == "20240102-"
    assert inputs["span"]["ETH/USDT"]["from"] == "2024-01-02 00:00 UTC"
    assert inputs["files"]["SOL/USDT"] == str(market / _file("SOL/USDT"))
    assert {t["symbol"] for t in trades} <= {"ETH/USDT", "SOL/USDT"}


def test_a_freqtrade_folder_of_feather_files(market: Path, tmp_path: Path) -> None:
    folder = tmp_path / "user_data" / "data" / "binance"
    folder.mkdir(parents=True)
    for path in market.iterdir():
        data = np.loadtxt(path, delimiter=",", skiprows=1)
        table = pa.table(
            {
                "date": pa.array(data[:, 0].astype(np.int64), type=pa.timestamp("ms", tz="UTC")),
                **{
                    name: data[:, i + 1]
                    for i, name in enumerate(("open", "high", "low", "close", "volume"))
                },
            }
        )
        feather.write_feather(table, folder / path.name.replace(".csv", ".feather"))
    from_feather, trades_f = _run(tmp_path, "--data", str(folder))
    (tmp_path / "runs").rename(tmp_path / "runs-feather")
    from_csv, trades_c = _run(tmp_path, "--data", str(market))
    assert from_feather["symbols"] == PAIRS
    assert trades_f == trades_c  # the same candles, the same trades
    assert from_feather["audit_sha256"] == from_csv["audit_sha256"]


def test_real_binance_file_with_a_timerange(tmp_path: Path) -> None:
    data = shared_file("binance_usdm_LTCUSDT_1m_2026-02.csv")
    markets = shared_file("ccxt_binance_spot_markets.json")
    summary, _ = _run(
        tmp_path, "--data", str(data), "--markets", str(markets), "--timerange", "20260210-20260212"
    )
    assert summary["symbols"] == ["LTC/USDT"]  # from the file name
    assert summary["candles"] == 2 * 1440 + 1  # both ends inclusive, as in freqtrade
    assert summary["filters_source"] == f"from {markets}"
    inputs = summary["inputs"]
    assert inputs["gaps"] == {} and inputs["warnings"] == []
    assert inputs["span"]["LTC/USDT"] == {
        "from_ms": 1_770_681_600_000,
        "to_ms": 1_770_854_400_000,
        "from": "2026-02-10 00:00 UTC",
        "to": "2026-02-12 00:00 UTC",
    }


def test_human_output_one_line_per_symbol_and_the_warnings(market: Path, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for path in market.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    lines = (folder / _file("ETH/USDT")).read_text().splitlines()
    del lines[101:111]  # ten candles missing from ETH/USDT
    (folder / _file("ETH/USDT")).write_text("\n".join(lines) + "\n")
    proc = cli("backtest", "--data", str(folder), "--timerange", "-20240102", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("backtest: ", "warning: "))]
    assert [ln.split(":")[1].strip() for ln in said[:3]] == PAIRS
    assert said[1].startswith("backtest: ETH/USDT: 1,431 candles 2024-01-01 00:00 UTC to ")
    assert (
        "1 gap(s), 10 missing" in said[1] and "filters (defaults derived from the data)" in said[1]
    )
    assert said[3:] == [
        "warning: ETH/USDT: 1 gap(s), 10 candle(s) missing; longest 10 from 2024-01-01 01:40 "
        "UTC; left as gaps, nothing filled in"
    ]
    assert "realised PnL" in proc.stdout


def test_seconds_and_a_short_series_warn(market: Path, tmp_path: Path) -> None:
    data = np.loadtxt(market / _file("BTC/USDT"), delimiter=",", skiprows=1)
    secs = Candles("BTC/USDT", (data[:, 0] // 1000).astype(np.int64), *data[:, 1:].T)
    write_csv(tmp_path / "BTC_USDT-1m.csv", secs)
    eth = (market / _file("ETH/USDT")).read_text().splitlines()
    (tmp_path / "ETH_USDT-1m.csv").write_text("\n".join(eth[:31]) + "\n")  # 30 candles
    proc = cli("backtest", "--data", str(tmp_path), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads(proc.stdout)["inputs"]["warnings"]
    assert warnings[0].endswith(
        "timestamps look like seconds (1704067200 = 2024-01-01 00:00 "
        "UTC as seconds, 1970 as milliseconds); read them as seconds"
    )
    assert warnings[1].startswith("ETH/USDT: 30 candles span 29 min, less than the 60 min")
    assert [f"warning: {w}" for w in warnings] == proc.stderr.strip().splitlines()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--config", "a.toml", "--config", "b.toml"], "error: --config given 2 times"),
        (["--timerange", "20240101-", "--timerange=20240102-"], "error: --timerange given 2"),
        (["--symbols", "DOGE/USDT"], "--symbols DOGE/USDT: no candle file for it in --data"),
        (["--symbols", "BTC/USDT", "--symbol", "BTC/USDT"], "give one of them"),
        (["--timerange", "2024"], "--timerange '2024': expected YYYYMMDD-YYYYMMDD"),
        (["--timerange", "20250101-"], "--timerange 20250101-: no BTC/USDT candles in it (its"),
    ],
    ids=[
        "config-twice",
        "timerange-twice",
        "symbol-without-file",
        "both-symbol-flags",
        "bad-timerange",
        "empty-timerange",
    ],
)
def test_refusals_are_one_line(market: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    proc = cli("backtest", "--data", str(market), *args, cwd=tmp_path)
    assert needle in one_error_line(proc)
    assert not (tmp_path / "runs").exists()


def test_repeated_option_is_refused_for_other_commands_too(tmp_path: Path) -> None:
    line = one_error_line(cli("config", "-c", "a.toml", "--config", "b.toml", cwd=tmp_path))
    assert line == "error: --config given 2 times: it takes one value (give it once)"
    line = one_error_line(cli("demo", "--hours", "1", "--hours", "2", cwd=tmp_path))
    assert line.startswith("error: --hours given 2 times")


def test_a_quote_the_wallet_lacks_and_a_too_short_run(market: Path, tmp_path: Path) -> None:
    eur = tmp_path / "eur"
    eur.mkdir()
    (eur / "BTC_EUR-1m.csv").write_bytes((market / _file("BTC/USDT")).read_bytes())
    line = one_error_line(cli("backtest", "--data", str(eur), cwd=tmp_path))
    assert line == (
        "error: BTC/EUR: quoted in EUR, but the wallet holds USDT (market.quote); set "
        'market.quote = "EUR" in --config, or use USDT pairs'
    )
    cfg = tmp_path / "eur.toml"
    cfg.write_text('[market]\nquote = "EUR"\n')
    proc = cli("backtest", "--data", str(eur), "--config", str(cfg), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no --markets file, so its filters" in json.loads(proc.stdout)["inputs"]["warnings"][0]
    short = tmp_path / "BTC_USDT-1m.csv"
    short.write_text("\n".join((market / _file("BTC/USDT")).read_text().splitlines()[:41]) + "\n")
    line = one_error_line(cli("backtest", "--data", str(short), cwd=tmp_path))
    assert line.startswith("error: BTC/USDT: too short to warm up (entry.anchor_window_min)")
