"""research.inputs.load_inputs on real files in tmp: folders and freqtrade's layout,
--symbols, --timerange, gaps, seconds, warm-up, quotes and markets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from fsmtrader.errors import DataError
from fsmtrader.feeds import Candles, synthetic_candles, write_csv
from fsmtrader.research.inputs import filters_and_source, load_inputs
from fsmtrader.research.timerange import parse_timerange

from conftest import shared_file

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MIN = 60_000
DAY = 1440 * MIN
HOUR_MS = 60 * MIN


def _freqtrade(path: Path, c: Candles) -> None:
    """``c`` written the way freqtrade writes a pair (ns UTC ``date``)."""
    table = pa.table(
        {
            "date": pa.array(np.asarray(c.ts) * 1_000_000, type=pa.timestamp("ns", tz="UTC")),
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
        }
    )
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        feather.write_feather(table, path)


def _series(symbol: str, minutes: int = 600, seed: int = 1, start: int = T0) -> Candles:
    return synthetic_candles(symbol, minutes=minutes, seed=seed, start_ms=start)


@pytest.fixture
def user_data(tmp_path: Path) -> Path:
    """A freqtrade data folder: three pairs at 1m, BTC also at 5m, a mark series and a
    trades file that are not candles to trade."""
    folder = tmp_path / "user_data" / "data" / "binance"
    folder.mkdir(parents=True)
    _freqtrade(folder / "BTC_USDT-1m.feather", _series("BTC/USDT", seed=1))
    _freqtrade(folder / "ETH_USDT-1m.parquet", _series("ETH/USDT", seed=2))
    write_csv(folder / "SOL_USDT-1m.csv", _series("SOL/USDT", seed=3))
    five = _series("BTC/USDT", seed=4).slice(0, 100)
    _freqtrade(folder / "BTC_USDT-5m.feather", Candles("BTC/USDT", *five.columns()))
    _freqtrade(folder / "BTC_USDT-1m-mark.feather", _series("BTC/USDT", seed=9))
    (folder / "BTC_USDT-trades.feather").write_bytes(b"")
    return folder


def test_a_freqtrade_folder(user_data: Path) -> None:
    got = load_inputs([user_data], None, None, "USDT")
    assert [c.symbol for c in got.series] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert got.series[0] == _series("BTC/USDT", seed=1)  # the 1m file, not 5m or mark
    assert got.series[1] == _series("ETH/USDT", seed=2)
    assert got.sources["ETH/USDT"] == str(user_data / "ETH_USDT-1m.parquet")
    (warning,) = got.warnings
    assert warning == (
        "BTC/USDT: several timeframes; using the finest, 1m (ignored: BTC_USDT-5m.feather)"
    )
    for c in got.series:
        assert isinstance(c.ts, np.ndarray) and c.ts.dtype == np.int64
    summary = got.summary()
    assert summary["candles"] == {"BTC/USDT": 600, "ETH/USDT": 600, "SOL/USDT": 600}
    assert summary["span"]["SOL/USDT"]["from"] == "2024-01-01 00:00 UTC"
    assert summary["gaps"] == {} and summary["interval_ms"] == MIN


def test_symbols_select_and_order(user_data: Path) -> None:
    got = load_inputs([user_data], ["sol/usdt", "BTC/USDT"], None, "USDT")
    assert [c.symbol for c in got.series] == ["SOL/USDT", "BTC/USDT"]
    with pytest.raises(DataError) as info:
        load_inputs([user_data], ["BTC/USDT", "DOGE/USDT"], None, "USDT")
    assert str(info.value) == (
        "--symbols DOGE/USDT: no candle file for it in --data (found: BTC/USDT, ETH/USDT, SOL/USDT)"
    )
    with pytest.raises(DataError, match="'BTCUSDT' is not BASE/QUOTE"):
        load_inputs([user_data], ["BTCUSDT"], None, "USDT")
    with pytest.raises(DataError, match="BTC/USDT is given twice"):
        load_inputs([user_data], ["BTC/USDT", "btc/usdt"], None, "USDT")


def test_one_file_named_by_symbols(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    write_csv(path, _series("XYZ/USDT"))
    got = load_inputs([path], ["XYZ/USDT"], None, "USDT")
    assert got.series[0].symbol == "XYZ/USDT" and got.warnings == []
    with pytest.raises(DataError, match=r"prices\.csv: cannot tell the symbol from the file name"):
        load_inputs([path], None, None, "USDT")
    named = tmp_path / "LTCUSDT-1m.csv"
    write_csv(named, _series("LTC/USDT"))
    got = load_inputs([named], ["ABC/USDT"], None, "USDT")
    assert got.series[0].symbol == "ABC/USDT"
    assert got.warnings == [
        f"{named}: its name says LTC/USDT; run as ABC/USDT (--symbols names a single file)"
    ]


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: candle file not found"):
        load_inputs([tmp_path / "nope.csv"], None, None, "USDT")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no candle files"):
        load_inputs([tmp_path / "empty"], None, None, "USDT")
    with pytest.raises(DataError, match="--data: give at least one"):
        load_inputs([], None, None, "USDT")


def test_monthly_files_are_joined_and_overlaps_refused(tmp_path: Path) -> None:
    whole = _series("LTC/USDT", minutes=900)
    write_csv(tmp_path / "LTCUSDT-1m-2024-01.csv", whole.slice(0, 400))
    write_csv(tmp_path / "LTCUSDT-1m-2024-02.csv", whole.slice(400, 900))
    got = load_inputs([tmp_path], None, None, "USDT")
    assert got.series == [whole]
    write_csv(tmp_path / "LTCUSDT-1m-2024-03.csv", whole.slice(850, 900))
    with pytest.raises(DataError, match="overlap in time; give one"):
        load_inputs([tmp_path], None, None, "USDT")


def test_a_file_given_twice_is_named(tmp_path: Path) -> None:
    write_csv(tmp_path / "LTCUSDT-1m-2024-01.csv", _series("LTC/USDT", minutes=400))
    for paths in ([tmp_path, tmp_path], [tmp_path, tmp_path / "LTCUSDT-1m-2024-01.csv"]):
        with pytest.raises(DataError, match=r"LTCUSDT-1m-2024-01.csv is given twice"):
            load_inputs(paths, None, None, "USDT")


# --- timerange -----------------------------------------------------------------------


def test_timerange_parsing() -> None:
    jan1 = parse_timerange("20240101-20240102")
    assert (jan1.start_ms, jan1.stop_ms) == (T0, T0 + DAY)
    assert parse_timerange("20240102-").stop_ms is None
    assert parse_timerange("-20240102").start_ms is None
    assert parse_timerange("1704067200-").start_ms == T0  # epoch seconds, as freqtrade
    for bad in ("2024", "20240101", "2024-01-01", "-", "20241301-", "x-y"):
        with pytest.raises(DataError, match="--timerange"):
            parse_timerange(bad)
    with pytest.raises(DataError, match="the end is before the start"):
        parse_timerange("20240105-20240101")


def test_timerange_cuts_every_series_inclusively(tmp_path: Path) -> None:
    for i, sym in enumerate(("BTC_USDT", "ETH_USDT")):
        write_csv(tmp_path / f"{sym}-1m.csv", _series(sym.replace("_", "/"), 3 * 1440, i))
    got = load_inputs([tmp_path], None, "20240102-20240103", "USDT")
    for c in got.series:
        assert int(c.ts[0]) == T0 + DAY and int(c.ts[-1]) == T0 + 2 * DAY  # both ends in
        assert len(c) == 1441
    open_end = load_inputs([tmp_path], None, "20240103-", "USDT")
    assert [len(c) for c in open_end.series] == [1440, 1440]
    assert got.summary()["timerange"] == "20240102-20240103"


def test_empty_timerange_names_range_and_span(tmp_path: Path) -> None:
    write_csv(tmp_path / "BTC_USDT-1m.csv", _series("BTC/USDT", 600))
    with pytest.raises(DataError) as info:
        load_inputs([tmp_path], None, "20250101-20250201", "USDT")
    assert str(info.value) == (
        "--timerange 20250101-20250201: no BTC/USDT candles in it (its data run from "
        "2024-01-01 00:00 UTC to 2024-01-01 09:59 UTC)"
    )


# --- what the user must hear -----------------------------------------------------------


def test_gaps_are_reported_not_filled(tmp_path: Path) -> None:
    c = _series("BTC/USDT", 600)
    keep = np.ones(600, dtype=bool)
    keep[100:130] = False  # 30 minutes missing
    keep[400] = False
    holed = Candles("BTC/USDT", *(np.asarray(col)[keep] for col in c.columns()))
    write_csv(tmp_path / "BTC_USDT-1m.csv", holed)
    write_csv(tmp_path / "ETH_USDT-1m.csv", _series("ETH/USDT", 600))
    got = load_inputs([tmp_path], None, None, "USDT")
    assert len(got.series[0]) == 569  # nothing inserted
    assert got.gaps == {
        "BTC/USDT": [(T0 + 100 * MIN, T0 + 130 * MIN), (T0 + 400 * MIN, T0 + 401 * MIN)]
    }
    assert got.warnings == [
        "BTC/USDT: 2 gap(s), 31 candle(s) missing; longest 30 from 2024-01-01 01:40 UTC; "
        "left as gaps, nothing filled in"
    ]
    assert got.summary()["missing_candles"] == {"BTC/USDT": 31, "ETH/USDT": 0}
    assert "2 gap(s), 31 missing" in got.line(got.series[0])


def test_seconds_are_read_as_seconds_with_a_warning(tmp_path: Path) -> None:
    c = _series("BTC/USDT", 120)
    secs = Candles("BTC/USDT", np.asarray(c.ts) // 1000, *c.columns()[1:])
    write_csv(tmp_path / "BTC_USDT-1m.csv", secs)
    got = load_inputs([tmp_path], None, None, "USDT")
    assert got.series[0] == c
    (warning,) = got.warnings
    assert warning.endswith(
        "BTC_USDT-1m.csv: timestamps look like seconds (1704067200 = 2024-01-01 00:00 UTC as "
        "seconds, 1970 as milliseconds); read them as seconds"
    )


def test_too_short_to_warm_up(tmp_path: Path) -> None:
    write_csv(tmp_path / "BTC_USDT-1m.csv", _series("BTC/USDT", 50))
    write_csv(tmp_path / "ETH_USDT-1m.csv", _series("ETH/USDT", 600))
    got = load_inputs([tmp_path], None, None, "USDT", warmup_ms=HOUR_MS)
    assert got.warnings == [
        "BTC/USDT: 50 candles span 49 min, less than the 60 min entry.anchor_window_min "
        "needs to warm up: it cannot trade"
    ]
    got.refuse_untradeable()  # ETH can trade
    alone = load_inputs([tmp_path], ["BTC/USDT"], None, "USDT", warmup_ms=HOUR_MS)
    with pytest.raises(DataError, match="BTC/USDT: too short to warm up"):
        alone.refuse_untradeable()


def test_a_quote_the_wallet_does_not_hold(tmp_path: Path) -> None:
    write_csv(tmp_path / "BTC_EUR-1m.csv", _series("BTC/EUR"))
    with pytest.raises(DataError) as info:
        load_inputs([tmp_path], None, None, "USDT")
    assert str(info.value) == (
        "BTC/EUR: quoted in EUR, but the wallet holds USDT (market.quote); set market.quote = "
        '"EUR" in --config, or use USDT pairs'
    )
    got = load_inputs([tmp_path], None, None, "EUR")
    filters, source, warnings = filters_and_source(got.series, None, "EUR")
    assert filters["BTC/EUR"].quote == "EUR" and source == "defaults derived from the data"
    assert warnings == [
        "BTC/EUR: no --markets file, so its filters (tick, step, min notional 5 EUR) are "
        "guesses from the price; pass --markets for the venue's real ones"
    ]


def test_mixed_intervals_are_refused(tmp_path: Path) -> None:
    write_csv(tmp_path / "BTC_USDT-1m.csv", _series("BTC/USDT", 200))
    c = _series("ETH/USDT", 200)
    hourly = Candles("ETH/USDT", T0 + np.arange(200) * HOUR_MS, *c.columns()[1:])
    write_csv(tmp_path / "ETH_USDT-1h.csv", hourly)
    with pytest.raises(DataError, match=r"different candle intervals \(BTC/USDT 60 s, ETH/USDT"):
        load_inputs([tmp_path], None, None, "USDT")


def test_markets_file_filters() -> None:
    data = shared_file("binance_usdm_LTCUSDT_1m_2026-02.csv")
    markets = shared_file("ccxt_binance_spot_markets.json")
    got = load_inputs([data], None, "20260210-20260211", "USDT")
    (c,) = got.series
    assert c.symbol == "LTC/USDT" and len(c) == 1441 and got.gaps == {}
    filters, source, warnings = filters_and_source(got.series, markets, "USDT")
    assert str(filters["LTC/USDT"].tick_size) == "0.01" and warnings == []
    assert source == f"from {markets}"
    renamed = load_inputs([data], ["NOPE/USDT"], None, "USDT")
    with pytest.raises(DataError, match=r"NOPE/USDT: not in .* \(known: ADA/USDT, BTC/USDT"):
        filters_and_source(renamed.series, markets, "USDT")
