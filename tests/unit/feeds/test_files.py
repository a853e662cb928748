"""Candle files other than our CSV (Feather, Parquet, freqtrade JSON), what a file name
says, the pyarrow CSV path against the row parser, and the numpy bar stream."""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmtrader.errors import DataError
from fsmtrader.feeds import Candles, bars, load_csv, synthetic_candles, write_csv
from fsmtrader.feeds.candles import CHUNK
from fsmtrader.feeds.files import load_file, parse_name

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MIN = 60_000


def _table(c: Candles, *, unit: str = "ms") -> pa.Table:
    """``c`` as freqtrade writes it: a UTC ``date`` timestamp, then the prices."""
    scale = {"s": 1 / 1000, "ms": 1, "us": 1000, "ns": 1_000_000}[unit]
    date = (np.asarray(c.ts, dtype=np.int64) * scale).astype(np.int64)
    return pa.table(
        {
            "date": pa.array(date, type=pa.timestamp(unit, tz="UTC")),
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
        }
    )


@pytest.fixture
def candles() -> Candles:
    return synthetic_candles("BTC/USDT", minutes=300, seed=3, start_ms=T0)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_feather_in_any_time_unit(tmp_path: Path, candles: Candles, unit: str) -> None:
    path = tmp_path / "BTC_USDT-1m.feather"
    feather.write_feather(_table(candles, unit=unit), path)
    got = load_file(path, "BTC/USDT")
    assert got == candles
    assert isinstance(got.ts, np.ndarray) and got.ts.dtype == np.int64
    assert isinstance(got.close, np.ndarray) and got.close.dtype == np.float64


def test_parquet_and_json_and_gz(tmp_path: Path, candles: Candles) -> None:
    pq.write_table(_table(candles), tmp_path / "BTC_USDT-1m.parquet")
    rows = [list(r) for r in zip(*candles.columns(), strict=True)]
    (tmp_path / "BTC_USDT-1m.json").write_text(json.dumps(rows))
    (tmp_path / "BTC_USDT-1m.json.gz").write_bytes(gzip.compress(json.dumps(rows).encode()))
    for name in ("BTC_USDT-1m.parquet", "BTC_USDT-1m.json", "BTC_USDT-1m.json.gz"):
        assert load_file(tmp_path / name, "BTC/USDT") == candles, name


def test_a_table_without_prices_or_time_is_refused(tmp_path: Path, candles: Candles) -> None:
    path = tmp_path / "BTC_USDT-1m.feather"
    feather.write_feather(_table(candles).drop_columns(["volume"]), path)
    with pytest.raises(DataError, match=r"BTC_USDT-1m\.feather: no volume \(columns: date"):
        load_file(path, "BTC/USDT")
    feather.write_feather(_table(candles).rename_columns(["when", *"ohlcv"]), path)
    with pytest.raises(DataError, match="no a date/timestamp column"):
        load_file(path, "BTC/USDT")


def test_not_a_feather_file(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-1m.feather"
    path.write_text("not arrow")
    with pytest.raises(DataError, match=r"BTC_USDT-1m\.feather: not a readable feather file"):
        load_file(path, "BTC/USDT")


@pytest.mark.parametrize(
    ("column", "row", "value", "needle"),
    [
        ("high", 4, 1.0, "row 5: high < low"),
        ("open", 7, 1e9, "row 8: open/close outside [low, high]"),
        ("volume", 2, -1.0, "row 3: volume must be finite and >= 0"),
    ],
)
def test_table_rows_are_checked_like_csv(
    tmp_path: Path, candles: Candles, column: str, row: int, value: float, needle: str
) -> None:
    table = _table(candles)
    col = table.column(column).to_numpy().copy()
    col[row] = value
    table = table.set_column(table.column_names.index(column), column, pa.array(col))
    path = tmp_path / "BTC_USDT-1m.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError) as info:
        load_file(path, "BTC/USDT")
    assert str(info.value).startswith(f"{path}: {needle}")


def test_table_rows_out_of_order(tmp_path: Path, candles: Candles) -> None:
    ts = np.asarray(candles.ts).copy()
    ts[10] = ts[9]
    c = Candles("BTC/USDT", ts, *candles.columns()[1:])
    feather.write_feather(_table(c), tmp_path / "a.feather")
    with pytest.raises(DataError, match=r"a\.feather: row 11: timestamp not after the previous"):
        load_file(tmp_path / "a.feather", "BTC/USDT")


def test_table_bad_prices_are_skipped_and_told(tmp_path: Path, candles: Candles) -> None:
    table = _table(candles)
    close = table.column("close").to_numpy().copy()
    close[[3, 50]] = [0.0, np.nan]
    table = table.set_column(4, "close", pa.array(close))
    feather.write_feather(table, tmp_path / "x.feather")
    told: list[str] = []
    got = load_file(tmp_path / "x.feather", "BTC/USDT", on_skip=told.append)
    assert len(got) == len(candles) - 2
    assert [m.split(": ")[1] for m in told] == ["row 4", "row 51"]
    assert 3 * MIN + T0 not in got.ts.tolist()


# --- our CSV: the pyarrow path gives exactly what the row parser gives -------------------


def test_csv_fast_path_equals_the_row_parser(tmp_path: Path, candles: Candles) -> None:
    """A clean file goes through pyarrow; the same rows plus one zero price go through
    the row parser (which must skip it). Both must give the same values, bit for bit."""
    clean = tmp_path / "clean.csv"
    write_csv(clean, candles)
    text = clean.read_text().splitlines()
    text.insert(100, f"{int(candles.ts[98]) + 1},0,1,1,1,1")  # between rows 98 and 99
    slow = tmp_path / "slow.csv"
    slow.write_text("\n".join(text) + "\n")
    told: list[str] = []
    fast_c, slow_c = load_csv(clean, "BTC/USDT"), load_csv(slow, "BTC/USDT", on_skip=told.append)
    assert len(told) == 1 and told[0].startswith(f"{slow}:101: skipped, open price")
    assert fast_c == slow_c == candles
    for got in (fast_c, slow_c):
        assert isinstance(got.ts, np.ndarray) and got.ts.dtype == np.int64


@settings(deadline=None, max_examples=50)  # file I/O on a shared machine
@given(st.lists(st.floats(0.001, 1e6, allow_nan=False), min_size=1, max_size=40))
def test_csv_round_trip_any_prices(prices: list[float]) -> None:
    import tempfile

    c = Candles(
        "X/USDT",
        [T0 + i * MIN for i in range(len(prices))],
        prices,
        prices,
        prices,
        prices,
        [1.0] * len(prices),
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        write_csv(path, c)
        assert load_csv(path, "X/USDT") == c


# --- file names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "symbol", "timeframe", "prices"),
    [
        ("BTC_USDT-1m.feather", "BTC/USDT", "1m", True),
        ("ETH_BTC-5m.parquet", "ETH/BTC", "5m", True),
        ("BTC_USDT_USDT-1h-futures.feather", "BTC/USDT", "1h", True),
        ("BTC_USDT_USDT-1h-mark.feather", "BTC/USDT", "1h", False),
        ("BTC_USDT-trades.feather", None, None, False),
        ("SOL_USDT-1m.json.gz", "SOL/USDT", "1m", True),
        ("binance_BTCUSDT_1m.csv", "BTC/USDT", "1m", True),  # download-data's names
        ("binance_usdm_LTCUSDT_1m_2026-02.csv", "LTC/USDT", "1m", True),
        ("LTCUSDT-1m-2026-02.csv", "LTC/USDT", "1m", True),  # data.binance.vision
        ("DOGEFDUSD.csv", "DOGE/FDUSD", None, True),
        ("x.csv", None, None, True),
        ("country.csv", None, None, True),  # a word is not COUN/TRY
    ],
)
def test_parse_name(name: str, symbol: str | None, timeframe: str | None, prices: bool) -> None:
    got = parse_name(Path(name))
    assert (got.symbol, got.timeframe, got.prices) == (symbol, timeframe, prices)


# --- the bar stream ------------------------------------------------------------------


def _reference(series: list[Candles]) -> list[tuple[object, ...]]:
    rows = [
        (int(t), k, c.symbol, float(o), float(h), float(lo), float(cl), float(v))
        for k, c in enumerate(series)
        for t, o, h, lo, cl, v in zip(*c.columns(), strict=True)
    ]
    return [(t, s, o, h, lo, cl, v) for t, _, s, o, h, lo, cl, v in sorted(rows)]


def test_bars_order_and_types_across_many_windows() -> None:
    """Three uneven series of several chunks each: every window boundary is crossed,
    ties keep series order, and each value is a plain Python int or float."""
    rng = random.Random(5)
    series = []
    for k, n in enumerate((CHUNK + 17, 2 * CHUNK // 3, CHUNK // 2 + 5)):
        ts = np.cumsum(np.array([rng.choice((MIN, MIN, 2 * MIN, 5 * MIN)) for _ in range(n)]))
        vals = np.arange(n, dtype=np.float64) + k / 10
        series.append(Candles(f"S{k}/USDT", T0 + ts, vals, vals + 1, vals, vals, vals))
    got = list(bars(series))
    assert got == _reference(series)
    t, sym, *prices = got[12345]
    assert type(t) is int and type(sym) is str
    assert all(type(p) is float for p in prices)


@given(st.lists(st.sets(st.integers(0, 300), max_size=60), min_size=2, max_size=5))
def test_bars_numpy_and_lists_agree(ts_sets: list[set[int]]) -> None:
    as_lists = []
    for i, s in enumerate(ts_sets):
        ts = sorted(s)
        vals = [float(t * 10 + i) for t in ts]
        as_lists.append(Candles(f"S{i}", ts, vals, vals, vals, vals, vals))
    as_arrays = [
        Candles(c.symbol, np.array(c.ts, dtype=np.int64), *(np.array(x) for x in c.columns()[1:]))
        for c in as_lists
    ]
    assert list(bars(as_arrays)) == list(bars(as_lists)) == _reference(as_lists)


def test_candles_equality_and_lists() -> None:
    a = Candles("A", [1, 2], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0])
    b = Candles("A", np.array([1, 2]), *(np.array([1.0, 2.0]) for _ in range(5)))
    assert a == b and b.to_lists() == a and b.to_lists().ts == [1, 2]
    assert b != Candles("B", *b.columns()) and a != b.slice(0, 1)
    assert b.interval_ms() == 1 and isinstance(b.interval_ms(), int)
    with pytest.raises(TypeError, match="cannot be appended"):
        b.appendable()
    a.appendable()[0].append(3)  # lists grow in place
    assert a.ts == [1, 2, 3]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyarrow deprecates writing V1
def test_feather_v1_is_read_whole(tmp_path: Path, candles: Candles) -> None:
    path = tmp_path / "BTC_USDT-1m.feather"
    feather.write_feather(_table(candles), path, version=1)
    assert load_file(path, "BTC/USDT") == candles


def test_row_parser_refuses_a_timestamp_beyond_int64(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(f"{T0},1,1,1,1,1\n9999999999999999999999,1,1,1,1,1\n")
    with pytest.raises(DataError, match=r"huge\.csv:2: timestamp 9999999999999999999 is out"):
        load_csv(path, "X/USDT")


def test_write_csv_of_numpy_columns_reads_back(tmp_path: Path, candles: Candles) -> None:
    arrays = Candles("BTC/USDT", *(np.asarray(col) for col in candles.columns()))
    write_csv(tmp_path / "a.csv", arrays)
    assert "np." not in (tmp_path / "a.csv").read_text()
    assert load_csv(tmp_path / "a.csv", "BTC/USDT") == candles


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[[1,2,3,4,5],[1,2,3,4,5,6,7]]", "expected rows of [ts, open, high, low, close, volume]"),
        ("[[1,2,3,4,5,6],[2,2,3,4,5,null]]", "row 2: volume must be finite and >= 0, got nan"),
        ('{"a": 1}', "expected rows of"),
        ("[[1,2,3", "not a JSON candle file"),
    ],
    ids=["ragged", "null", "object", "truncated"],
)
def test_bad_json_is_named(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "BTC_USDT-1m.json"
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(needle)) as info:
        load_file(path, "BTC/USDT")
    assert str(info.value).startswith(f"{path}: ")
