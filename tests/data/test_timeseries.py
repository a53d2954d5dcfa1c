"""Time-series CSV loading, validation errors, chronological splits, standardisation, windows."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import shared_dataset
from transferkit.data.timeseries import (
    SeriesTable, Standardizer, WindowDataset, chronological_split, constant_columns, load_series_csv,
    minimum_rows, minimum_training_rows, seasonal_period,
)
from transferkit.errors import DataError


def sine_frame(n: int = 200, freq: str = "h", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame({
        "date": pd.date_range("2020-01-01", periods=n, freq=freq).strftime("%Y-%m-%d %H:%M:%S"),
        "load": np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=n),
        "temp": 10 + 0.01 * t + 0.1 * rng.normal(size=n),
    })


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "series.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_load_detects_time_column_frequency_and_season(tmp_path):
    table = load_series_csv(write(tmp_path, sine_frame()), target="temp")
    assert table.time_column == "date" and table.columns == ["load", "temp"]
    assert table.values.shape == (200, 2) and table.values.dtype == np.float32
    assert table.frequency == "h" and table.season == 24
    assert table.target_index == 1 and table.times.dtype == np.dtype("datetime64[ns]")
    assert json.dumps(table.describe())  # JSON-ready for config.json


def test_time_column_found_by_parsing_and_columns_selected(tmp_path):
    frame = sine_frame().rename(columns={"date": "when"})
    table = load_series_csv(write(tmp_path, frame), columns=["temp"], target="load")
    assert table.time_column == "when" and table.columns == ["temp", "load"]


def test_file_without_time_column(tmp_path):
    table = load_series_csv(write(tmp_path, sine_frame().drop(columns="date")))
    assert table.times is None and table.frequency is None and table.season == 1


@pytest.mark.parametrize("freq, season", [("h", 24), ("15min", 96), ("D", 7), ("MS", 12), ("W-SUN", 52), (None, 1)])
def test_seasonal_period(freq, season):
    assert seasonal_period(freq) == season


def _corrupt(frame: pd.DataFrame, how: str) -> pd.DataFrame:
    frame = frame.astype({"load": object})
    if how == "text":
        frame.loc[5, "load"] = "abc"
    elif how == "missing":
        frame.loc[7, "load"] = None
    elif how == "duplicate":
        frame.loc[9, "date"] = frame.loc[8, "date"]
    elif how == "gap":
        frame = frame.drop(index=11)
    elif how == "unsorted":
        frame.loc[[12, 13], "date"] = frame.loc[[13, 12], "date"].to_numpy()
    return frame


@pytest.mark.parametrize("how, expected", [
    ("text", ["non-numeric value 'abc'", "'load'", "line 7"]),
    ("missing", ["missing value", "'load'", "line 9", "interpolate"]),
    ("duplicate", ["duplicate timestamp", "lines 10 and 11"]),
    ("gap", ["gap in the time index", "line 12", "2:00:00 instead of 0 days 01:00:00"]),
    ("unsorted", ["not in order", "line 15", "sort the file"]),
])
def test_bad_values_name_file_line_and_fix(tmp_path, how, expected):
    path = write(tmp_path, _corrupt(sine_frame(), how))
    with pytest.raises(DataError) as err:
        load_series_csv(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    for part in expected:
        assert part in message, (part, message)


def test_missing_empty_and_header_only_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_series_csv(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        load_series_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("date,load\n")
    with pytest.raises(DataError, match="no data rows"):
        load_series_csv(tmp_path / "header.csv")


def test_unknown_target_or_column_lists_columns(tmp_path):
    path = write(tmp_path, sine_frame())
    with pytest.raises(DataError, match=r"no series column 'OT' for --target; columns found: date, load, temp"):
        load_series_csv(path, target="OT")
    with pytest.raises(DataError, match=r"no column 'x'; columns found: date, load, temp"):
        load_series_csv(path, columns=["load", "x"])


def _table(n: int, freq: str | None = "h") -> SeriesTable:
    values = np.arange(n, dtype=np.float32)[:, None]
    return SeriesTable(path=Path("s.csv"), values=values, columns=["v"], frequency=freq)


def test_split_ett_months_for_long_hourly_series():
    split = chronological_split(_table(17420), lookback=336, horizon=96)
    assert split["train"] == (0, 8640)
    assert split["val"] == (8640 - 336, 8640 + 2880)
    assert split["test"] == (11520 - 336, 14400)
    assert split["windows"] == {"train": 8209, "val": 2785, "test": 2785}  # the reference ETTh1 test set
    val = WindowDataset(_table(17420).values, 336, 96, *split["val"])
    assert val[0][1][0, 0] == 8640  # the first forecast target is the first validation row


def test_split_70_10_20_otherwise():
    for table in (_table(1000), _table(20000, freq="D")):
        n = len(table)
        split = chronological_split(table, lookback=24, horizon=12)
        assert split["train"] == (0, int(0.7 * n))
        assert split["val"] == (int(0.7 * n) - 24, n - int(0.2 * n))
        assert split["test"] == (n - int(0.2 * n) - 24, n)


def test_split_too_short_for_lookback_and_horizon():
    with pytest.raises(DataError, match=r"horizon 96 \+ lookback 336 = 432 rows but the val part has only "
                                        r"407 of 700 rows; this split needs at least 951 rows"):
        chronological_split(_table(700), lookback=336, horizon=96)
    chronological_split(_table(700), lookback=96, horizon=24)


def test_train_fraction_keeps_most_recent_rows():
    split = chronological_split(_table(17420), 336, 96, train_fraction=0.1)
    assert split["train"] == (8640 - 864, 8640) and split["windows"]["train"] == 864 - 432 + 1
    assert split["test"] == (11184, 14400)
    with pytest.raises(DataError, match="keeps 86 of 8640 training rows, fewer than lookback \\+ horizon = 432: "
                                        "the training segment needs at least 43200 rows"):
        chronological_split(_table(17420), 336, 96, train_fraction=0.01)


@pytest.mark.parametrize("lookback, horizon, fraction", [(96, 24, 0.1), (336, 96, 0.1), (48, 12, 0.3), (5, 3, 1.0)])
def test_stated_minimum_rows_are_exact(lookback, horizon, fraction):
    """The minimum the error states is ceil((lookback + horizon) / train_fraction) training rows, and
    every series from `minimum_rows` on splits while the one just shorter does not."""
    assert minimum_training_rows(lookback, horizon, fraction) == math.ceil((lookback + horizon) / fraction)
    least = minimum_rows(lookback, horizon, fraction)
    for rows in range(least, least + 50):
        chronological_split(rows, lookback, horizon, fraction)
    with pytest.raises(DataError, match=f"at least {least} rows"):
        chronological_split(least - 1, lookback, horizon, fraction)


def _times_frame(stamps) -> pd.DataFrame:
    return pd.DataFrame({"date": stamps, "load": np.sin(np.arange(len(stamps)) / 4)})


def test_times_with_different_utc_offsets_become_utc(tmp_path):
    utc = pd.date_range("2020-03-28", periods=72, freq="h", tz="UTC")
    berlin = [t.tz_convert("Europe/Berlin").isoformat() for t in utc]  # +01:00, then +02:00 from 29 March 01:00 UTC
    table = load_series_csv(write(tmp_path, _times_frame(berlin)))
    assert table.frequency == "h" and table.times[0] == np.datetime64("2020-03-28T00:00")
    assert table.notes == ["times in 'date' carry UTC offsets (+01:00, +02:00): converted to UTC, so a "
                           "daylight-saving switch leaves no gap or repeated hour"]
    mixed = [t.isoformat() if i % 2 else t.tz_convert("Etc/GMT-2").isoformat() for i, t in enumerate(utc)]
    table = load_series_csv(write(tmp_path, _times_frame(mixed).rename(columns={"date": "when"})))
    assert table.time_column == "when" and table.frequency == "h" and "(+02:00, +00:00)" in table.notes[0]
    assert load_series_csv(write(tmp_path, _times_frame([t.isoformat() for t in utc]))).notes == []


def test_naive_times_beside_times_with_offsets_are_refused(tmp_path):
    stamps = pd.date_range("2020-01-01", periods=48, freq="h", tz="UTC")
    text = [t.isoformat() if i >= 10 else t.strftime("%Y-%m-%d %H:%M:%S") for i, t in enumerate(stamps)]
    path = write(tmp_path, _times_frame(text))
    with pytest.raises(DataError) as err:
        load_series_csv(path)
    message = str(err.value)
    assert message.startswith(f"{path}: time column 'date' mixes times with a UTC offset (line 12: "
                              "'2020-01-01T10:00:00+00:00') and without one (line 2: '2020-01-01 00:00:00')")
    assert "write every time with its offset, or none" in message and "\n" not in message


def test_a_column_name_twice_in_the_header_is_refused(tmp_path):
    frame = sine_frame(48)
    frame["again"] = np.arange(48)
    path = tmp_path / "twice.csv"
    frame.to_csv(path, index=False, header=["date", "load", "temp", " date"])
    with pytest.raises(DataError, match=r"twice.csv: time column name 'date' appears twice in the header \(columns 1 "
                                        r"and 4\); give every column its own name"):
        load_series_csv(path)


def test_constant_column_is_standardised_with_deviation_one():
    values = np.stack([np.full(50, 7.0), np.arange(50.0)], axis=1)
    scaler = Standardizer.fit(values)
    assert constant_columns(values) == [0] and scaler.std[0] == 1.0
    assert np.all(scaler.transform(values)[:, 0] == 0) and np.isfinite(scaler.transform(values)).all()


def test_standardizer_uses_training_rows_only():
    values = np.concatenate([np.random.default_rng(0).normal(5, 2, (700, 2)), np.full((300, 2), 1000.0)])
    split = chronological_split(SeriesTable(Path("s.csv"), values.astype(np.float32), ["a", "b"]), 24, 12)
    scaler = Standardizer.fit(values[slice(*split["train"])])
    z = scaler.transform(values)
    assert np.allclose(z[:700].mean(0), 0, atol=1e-4) and np.allclose(z[:700].std(0), 1, atol=1e-3)
    assert z[-1, 0] > 100  # the later level shift is not hidden by leaked statistics
    again = Standardizer.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert np.allclose(again.inverse_transform(z), values, atol=1e-2)


def test_window_dataset_items_and_arrays():
    values = np.arange(60, dtype=np.float32).reshape(20, 3)
    ds = WindowDataset(values, lookback=5, horizon=2, start=3, end=15, channels=[2])
    assert len(ds) == 12 - 7 + 1
    x, y = ds[0]
    assert x.shape == (5, 1) and y.shape == (2, 1) and x.dtype.is_floating_point
    assert x[:, 0].tolist() == values[3:8, 2].tolist() and y[:, 0].tolist() == values[8:10, 2].tolist()
    xs, ys = ds.arrays()
    assert xs.shape == (6, 5, 1) and ys.shape == (6, 2, 1)
    assert all((xs[i] == ds[i][0]).all() and (ys[i] == ds[i][1]).all() for i in range(len(ds)))
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_etth1_loads_with_the_reference_split():
    table = load_series_csv(shared_dataset("timeseries", "ETTh1.csv"), target="OT")
    assert table.columns == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert table.frequency == "h" and table.season == 24 and len(table) == 17420
    split = chronological_split(table, 336, 96)
    assert (split["train"], split["windows"]["test"]) == ((0, 8640), 2785)


@pytest.mark.parametrize("content, message", [
    ("date,x\n2020-01-01T00:00:00+00:00,1\n2020-01-01 01:00:00,2\n2020-01-01T02:00:00+00:00,3\n",
     "time column 'date' mixes times with a UTC offset (line 2: '2020-01-01T00:00:00+00:00') and without one (line 3"),
    ("date,x,date\n2020-01-01 00:00,1,5\n2020-01-01 01:00,2,6\n", "column name 'date' appears twice in the header"),
    ("date,x\n" + "".join(f"2020-01-{1 + h // 24:02d} {h % 24:02d}:00,{h}\n" for h in range(400)),
     "the training segment needs at least 1200 rows"),
])
def test_time_series_errors_are_one_line_exit_2(monkeypatch, capsys, tmp_path, content, message):
    from tests.helpers import run_cli

    data = tmp_path / "series.csv"
    data.write_text(content)
    code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", tmp_path / "run", "--lookback", "96",
                           "--horizon", "24", "--train-fraction", "0.1")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err and len(lines) == 1 and message in lines[0], err


def test_two_regular_rows_are_too_few_not_a_gap(tmp_path):
    """Two rows one hour apart are regular: the error is the row count, never a 'gap' of 1 h instead of 1 h."""
    path = tmp_path / "short.csv"
    path.write_text("date,OT\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n")
    series = load_series_csv(path)
    assert series.frequency in ("h", "H")
