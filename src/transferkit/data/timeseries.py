"""Time series from CSV: validated loading, chronological splits, standardisation and sliding windows.

Conventions follow the long-horizon forecasting literature (Informer, PatchTST, DLinear): one
row per time step, numeric columns are the series, splits are chronological, statistics come
from the training rows only, and validation/test windows start `lookback` rows before their
segment so that every forecast target lies inside the segment.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError

#: Column names taken as the time column without trying to parse anything else first.
TIME_COLUMN_NAMES = ("date", "datetime", "time", "timestamp", "ds", "period")
_MISSING = {"", "nan", "na", "n/a", "null", "none", "nat", "-"}
#: ETT split of Informer/PatchTST: 12/4/4 months of 30 days.
ETT_MONTHS = (12, 4, 4)


@dataclass
class SeriesTable:
    """A validated multivariate series: `values[t, c]` is column `columns[c]` at time step t.

    `times` is None when the file has no time column (rows are then equally spaced steps).
    `frequency` is a pandas offset alias ("h", "15min", "D", "MS") or None without times.
    """

    path: Path
    values: np.ndarray  # (T, C) float32
    columns: list[str]
    times: np.ndarray | None = None  # (T,) datetime64[ns]
    time_column: str | None = None
    target: str | None = None
    frequency: str | None = None
    notes: list[str] = field(default_factory=list)  # what loading changed (e.g. times converted to UTC)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def num_channels(self) -> int:
        return int(self.values.shape[1])

    @property
    def target_index(self) -> int | None:
        return None if self.target is None else self.columns.index(self.target)

    @property
    def season(self) -> int:
        return seasonal_period(self.frequency)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for config.json and the report."""
        return {
            "path": str(self.path), "rows": len(self), "columns": list(self.columns),
            "time_column": self.time_column, "target": self.target, "frequency": self.frequency,
            "season": self.season,
            "start": None if self.times is None else str(np.datetime_as_string(self.times[0], unit="s")),
            "end": None if self.times is None else str(np.datetime_as_string(self.times[-1], unit="s")),
        }


def _line(row: int) -> int:
    """File line of data row `row` (0-based): line 1 is the header."""
    return row + 2


def load_series_csv(
    path: str | Path,
    time_column: str | None = None,
    target: str | None = None,
    columns: Sequence[str] | None = None,
) -> SeriesTable:
    """Read a CSV of time series: one row per time step, a time column (optional), numeric series.

    The time column is `time_column`, else a column named like `date`/`time`, else the first
    non-numeric column whose values all parse as dates. Every other column (or `columns`) is a
    series and must be numeric and complete; a `target` outside `columns` is added to them.
    Raises `DataError` with a one-line fix otherwise.
    """
    import pandas as pd

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass the path of a CSV file with one row per time step.")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; pass a CSV with a header row and one row per time step.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable CSV file ({reason}); save it as comma-separated text.") from None
    _check_unique_header(path, pd, time_column)
    frame.columns = [str(c).strip() for c in frame.columns]
    # a trailing blank line is harmless; blank lines inside the data are reported as missing values
    while len(frame) and all(str(v).strip() == "" for v in frame.iloc[-1]):
        frame = frame.iloc[:-1]
    if len(frame) == 0:
        raise DataError(f"{path}: the file has a header but no data rows; add one row per time step.")
    found = ", ".join(frame.columns)

    if time_column is not None and time_column not in frame.columns:
        raise DataError(f"{path}: no time column {time_column!r}; columns found: {found}. "
                        "Pass one of them with --time-column.")
    time_column = time_column or _detect_time_column(frame)

    if columns is not None:
        unknown = [c for c in columns if c not in frame.columns]
        if unknown:
            raise DataError(f"{path}: no column {unknown[0]!r}; columns found: {found}. Fix --columns.")
        series = [c for c in columns if c != time_column]
    else:
        series = [c for c in frame.columns if c != time_column]
    if target is not None:
        if target not in frame.columns or target == time_column:
            raise DataError(f"{path}: no series column {target!r} for --target; columns found: {found}.")
        if target not in series:  # the target is always one of the series
            series.append(target)
    if not series:
        raise DataError(f"{path}: no series columns besides the time column {time_column!r}; "
                        "add at least one numeric column.")

    values = np.empty((len(frame), len(series)), dtype=np.float32)
    for j, name in enumerate(series):
        raw = frame[name].str.strip()
        missing = raw.str.lower().isin(_MISSING).to_numpy()
        numbers = pd.to_numeric(raw.where(~missing, None), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(numbers) & ~missing
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{path}: non-numeric value {frame[name].iloc[row]!r} in column {name!r} at line "
                            f"{_line(row)}; fix it, or leave {name!r} out with --columns.")
        if missing.any() or not np.isfinite(numbers).all():
            row = int(np.argmax(missing | ~np.isfinite(numbers)))
            count = int((missing | ~np.isfinite(numbers)).sum())
            raise DataError(f"{path}: missing value in column {name!r} at line {_line(row)} ({count} in that "
                            "column); fill the gaps first (e.g. pandas interpolate) or drop the column.")
        values[:, j] = numbers

    times, frequency, notes = None, None, []
    if time_column is not None:
        times, frequency, notes = _parse_times(path, frame[time_column], time_column)
    return SeriesTable(path=path, values=values, columns=series, times=times, time_column=time_column,
                       target=target, frequency=frequency, notes=notes)


def _check_unique_header(path: Path, pd, time_column: str | None = None) -> None:
    """Refuse a header that names a column twice: pandas would silently rename the second
    (`date` → `date.1`) and read it as one more series (a repeated time column as a non-numeric one)."""
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0]
    names = [str(c).strip() for c in header]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            what = "time column name" if name == time_column or name.lower() in TIME_COLUMN_NAMES else "column name"
            raise DataError(f"{path}: {what} {name!r} appears twice in the header (columns {seen[name] + 1} "
                            f"and {i + 1}); give every column its own name.")
        seen[name] = i


def constant_columns(values: np.ndarray) -> list[int]:
    """Indices of the columns of `values` (T, C) that hold one value in every row."""
    values = np.asarray(values)
    if len(values) == 0:
        return []
    return [int(j) for j in np.flatnonzero((values == values[:1]).all(axis=0))]


def _detect_time_column(frame) -> str | None:
    import pandas as pd

    for name in frame.columns:
        if name.lower() in TIME_COLUMN_NAMES:
            return name
    for name in frame.columns:
        raw = frame[name].str.strip()
        if pd.to_numeric(raw, errors="coerce").notna().all():
            continue  # numbers (even year-like ones) are series, not timestamps
        parsed, _ = _to_datetime(raw)
        if parsed.notna().all():
            return name
    return None


def _utc_offset(text: str) -> str | None:
    """The UTC offset written in one time string ("+02:00"), or None when it has none or is no time."""
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return None
    if stamp is pd.NaT or stamp.tzinfo is None:
        return None
    minutes = int(stamp.utcoffset().total_seconds() // 60)
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _to_datetime(raw) -> tuple[Any, Any]:
    """(times, offsets): times as naive datetime64 with every time that carries a UTC offset
    converted to UTC (NaT where a value is no time), and per row the offset written (None
    without one); offsets is None when no row has one."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
        except (ValueError, TypeError):  # offsets that differ (a DST switch), or offsets beside naive times
            parsed = None
        if parsed is not None and getattr(parsed.dt, "tz", None) is None:
            return parsed, None
        offsets = raw.map(_utc_offset)
        utc = pd.to_datetime(raw, errors="coerce", format="mixed", utc=True).dt.tz_localize(None)
    return utc, offsets


def _parse_times(path: Path, raw, name: str) -> tuple[np.ndarray, str | None, list[str]]:
    """Timestamps as datetime64[ns], the frequency alias and notes; rejects unparseable, unsorted,
    duplicated and gapped time indexes, since window arithmetic assumes one row per step.

    Times with UTC offsets are converted to UTC (so local times across a daylight-saving switch
    stay one step apart); times with an offset beside times without one are refused, since the
    naive ones could be in any zone.
    """
    import pandas as pd

    parsed, offsets = _to_datetime(raw.str.strip())
    if parsed.isna().any():
        row = int(np.argmax(parsed.isna().to_numpy()))
        raise DataError(f"{path}: time column {name!r} has {raw.iloc[row]!r} at line {_line(row)}, not a date; "
                        "fix it or pass the right column with --time-column.")
    notes = []
    if offsets is not None:
        aware = offsets.notna().to_numpy()
        if not aware.all():
            with_offset, without = int(np.argmax(aware)), int(np.argmax(~aware))
            raise DataError(f"{path}: time column {name!r} mixes times with a UTC offset (line {_line(with_offset)}: "
                            f"{raw.iloc[with_offset]!r}) and without one (line {_line(without)}: "
                            f"{raw.iloc[without]!r}); write every time with its offset, or none.")
        written = list(dict.fromkeys(offsets))
        shown = ", ".join(written[:4]) + (", ..." if len(written) > 4 else "")
        if written != ["+00:00"]:
            notes.append(f"times in {name!r} carry UTC offsets ({shown}): converted to UTC"
                         + (", so a daylight-saving switch leaves no gap or repeated hour" if len(written) > 1 else ""))
    times = parsed.to_numpy(dtype="datetime64[ns]")
    if len(times) < 2:
        return times, None, notes
    diffs = np.diff(times)
    zero = np.timedelta64(0, "ns")
    if (diffs < zero).any():
        i = int(np.argmax(diffs < zero)) + 1
        raise DataError(f"{path}: times are not in order: line {_line(i)} ({times[i]}) comes after line "
                        f"{_line(i - 1)} ({times[i - 1]}); sort the file by {name!r}.")
    if (diffs == zero).any():
        i = int(np.argmax(diffs == zero)) + 1
        raise DataError(f"{path}: duplicate timestamp {times[i]} at lines {_line(i - 1)} and {_line(i)}; "
                        "keep one row per time step (e.g. average the duplicates).")
    index = pd.DatetimeIndex(times)
    if len(times) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            freq = pd.infer_freq(index)  # calendar frequencies (months, business days) are regular too
        if freq is not None:
            return times, getattr(freq, "freqstr", str(freq)), notes
    steps, counts = np.unique(diffs, return_counts=True)
    step = steps[int(np.argmax(counts))]
    if len(steps) == 1:  # regular, but too short for pandas to infer a frequency (two rows)
        return times, pd.tseries.frequencies.to_offset(pd.Timedelta(step)).freqstr, notes
    if counts.max() < 0.5 * len(diffs):
        raise DataError(f"{path}: the time steps in {name!r} are irregular (the most common step, "
                        f"{pd.Timedelta(step)}, covers only {counts.max()} of {len(diffs)} steps); "
                        "resample to a regular frequency first.")
    i = int(np.argmax(diffs != step)) + 1
    raise DataError(f"{path}: gap in the time index: line {_line(i)} ({times[i]}) follows line {_line(i - 1)} "
                    f"({times[i - 1]}) after {pd.Timedelta(diffs[i - 1])} instead of {pd.Timedelta(step)}; "
                    "insert the missing time steps and fill them (e.g. reindex and interpolate).")


def _tick_seconds(frequency: str | None) -> float | None:
    """Length of a fixed-size frequency in seconds (None for calendar ones such as months)."""
    import pandas as pd

    if not frequency:
        return None
    try:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(frequency)).total_seconds()
    except (ValueError, TypeError):
        return None


def seasonal_period(frequency: str | None) -> int:
    """Steps per natural season: a day for sub-daily data (24 for hourly), a week for daily data,
    a year for weekly/monthly/quarterly data; 1 (no season, naive = last value) otherwise."""
    seconds = _tick_seconds(frequency)
    if seconds and seconds < 86400:
        per_day = 86400 / seconds
        return int(per_day) if per_day == int(per_day) and per_day > 1 else 1
    if seconds == 86400:
        return 7
    base = (frequency or "").upper().lstrip("0123456789")
    if base.startswith("B"):
        return 5
    if base.startswith("W"):
        return 52
    if base.startswith(("M", "BM")):
        return 12
    if base.startswith(("Q", "BQ")):
        return 4
    return 1


def _rows_per_month(frequency: str | None) -> int | None:
    """Rows in a 30-day month for hourly or finer data (the ETT convention), else None."""
    seconds = _tick_seconds(frequency)
    if not seconds or seconds > 3600 or 3600 % seconds:
        return None
    return int(30 * 24 * 3600 // seconds)


def chronological_split(
    table: SeriesTable | int,
    lookback: int,
    horizon: int,
    train_fraction: float = 1.0,
) -> dict[str, Any]:
    """Train/val/test row ranges `[start, end)` over which `WindowDataset` slides.

    Hourly (or finer) data covering at least 20 months uses the ETT split of Informer/PatchTST:
    12/4/4 months of 30 days (8640/2880/2880 hourly rows; later rows are unused). Other data is
    split 70/10/20. Validation and test ranges start `lookback` rows before their segment, so the
    first forecast target is the segment's first row. `train_fraction` < 1 keeps only the most
    recent part of the training segment (little-data fine-tuning). Statistics for standardisation
    should come from `split["train"]`.
    """
    n = len(table) if isinstance(table, SeriesTable) else int(table)
    frequency = table.frequency if isinstance(table, SeriesTable) else None
    path = f"{table.path}: " if isinstance(table, SeriesTable) else ""
    if lookback < 1 or horizon < 1:
        raise DataError(f"{path}lookback {lookback} and horizon {horizon} must both be at least 1.")
    if not 0.0 < train_fraction <= 1.0:
        raise DataError(f"{path}train fraction {train_fraction} must be in (0, 1]; e.g. --train-fraction 0.1.")
    month = _rows_per_month(frequency)
    if month and n >= sum(ETT_MONTHS) * month:
        train_end, val_end = ETT_MONTHS[0] * month, (ETT_MONTHS[0] + ETT_MONTHS[1]) * month
        test_end = sum(ETT_MONTHS) * month
        scheme = (f"ETT split: {ETT_MONTHS[0]}/{ETT_MONTHS[1]}/{ETT_MONTHS[2]} months of 30 days "
                  f"({train_end}/{val_end - train_end}/{test_end - val_end} rows; {n - test_end} later rows unused)")
    else:
        train_end = int(n * 0.7)
        test_len = int(n * 0.2)
        val_end, test_end = n - test_len, n
        scheme = f"chronological 70/10/20 ({train_end}/{val_end - train_end}/{test_len} rows)"
    need = lookback + horizon
    parts = {
        "train": (0, train_end),
        "val": (max(0, train_end - lookback), val_end),
        "test": (max(0, val_end - lookback), test_end),
    }
    for name in ("test", "val", "train"):
        start, end = parts[name]
        if end - start < need:
            raise DataError(f"{path}horizon {horizon} + lookback {lookback} = {need} rows but the {name} part has "
                            f"only {end - start} of {n} rows; this split needs at least "
                            f"{minimum_rows(lookback, horizon, train_fraction)} rows: use a longer series or a "
                            "shorter --lookback/--horizon.")
    if train_fraction < 1.0:
        kept = _kept_rows(train_end, train_fraction)
        if kept < need:
            raise DataError(f"{path}train fraction {train_fraction:g} keeps {kept} of {train_end} training rows, "
                            f"fewer than lookback + horizon = {need}: the training segment needs at least "
                            f"{minimum_training_rows(lookback, horizon, train_fraction)} rows, a series split "
                            f"70/10/20 at least {minimum_rows(lookback, horizon, train_fraction)} rows; use a larger "
                            "--train-fraction or a shorter --lookback/--horizon.")
        parts["train"] = (train_end - kept, train_end)
        scheme += f"; training on the most recent {kept} rows ({train_fraction:g} of the training segment)"
    return {
        **parts,
        "windows": {k: (e - s) - need + 1 for k, (s, e) in parts.items()},
        "lookback": lookback, "horizon": horizon, "train_fraction": train_fraction,
        "description": scheme,
    }


def _kept_rows(train_rows: int, train_fraction: float) -> int:
    """Rows of a training segment of `train_rows` that `train_fraction` keeps (its most recent)."""
    # floor, so that the minimum is exactly ceil((lookback + horizon) / train_fraction) rows
    return int(math.floor(train_rows * train_fraction + 1e-9)) if train_fraction < 1.0 else train_rows


def minimum_training_rows(lookback: int, horizon: int, train_fraction: float = 1.0) -> int:
    """Fewest rows of the training segment that leave one training window after `train_fraction`:
    ceil((lookback + horizon) / train_fraction)."""
    need = lookback + horizon
    rows = max(need, int(need / train_fraction) - 2)
    while _kept_rows(rows, train_fraction) < need:
        rows += 1
    return rows


def minimum_rows(lookback: int, horizon: int, train_fraction: float = 1.0) -> int:
    """Fewest rows from which every longer series passes `chronological_split` (70/10/20) with these
    settings: one training window after `train_fraction` in the first 70 %, one validation and one
    test window (10 % and 20 % of the rows, each at least `horizon`)."""
    need = lookback + horizon

    def fits(rows: int) -> bool:
        train_end, test_len = int(rows * 0.7), int(rows * 0.2)
        val_end = rows - test_len
        return (_kept_rows(train_end, train_fraction) >= need and train_end >= need
                and val_end - max(0, train_end - lookback) >= need and rows - max(0, val_end - lookback) >= need)

    # from a length that certainly fits, down while the next shorter one fits too
    rows = max(math.ceil(minimum_training_rows(lookback, horizon, train_fraction) / 0.7) + 2, 10 * horizon + 10)
    while not fits(rows):
        rows += 1
    while rows > 1 and fits(rows - 1):
        rows -= 1
    return rows


@dataclass
class Standardizer:
    """Per-channel z-scoring with statistics of the training rows (never val/test: no leakage)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> "Standardizer":
        values = np.asarray(values, dtype=np.float64)
        std = values.std(axis=0)
        # a constant channel would divide by zero: deviation 1 keeps it constant (0) after centring
        std = np.where(std > 1e-12, std, 1.0)
        return cls(mean=values.mean(axis=0).astype(np.float32), std=std.astype(np.float32))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((np.asarray(values, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float32) * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, data: dict[str, Sequence[float]]) -> "Standardizer":
        return cls(mean=np.asarray(data["mean"], dtype=np.float32), std=np.asarray(data["std"], dtype=np.float32))


class WindowDataset(Dataset):
    """Sliding windows (stride 1) over rows `[start, end)`: item i is
    `(x, y) = (values[start+i : start+i+lookback], values[start+i+lookback : start+i+lookback+horizon])`,
    float32 tensors of shape (lookback, C) and (horizon, C); `channels` selects columns."""

    def __init__(
        self,
        values: np.ndarray,
        lookback: int,
        horizon: int,
        start: int = 0,
        end: int | None = None,
        channels: Sequence[int] | None = None,
    ) -> None:
        end = len(values) if end is None else end
        data = np.asarray(values, dtype=np.float32)[start:end]
        if channels is not None:
            data = data[:, list(channels)]
        self.data = torch.from_numpy(np.ascontiguousarray(data))
        self.lookback, self.horizon = int(lookback), int(horizon)
        self.start, self.end = int(start), int(end)

    def __len__(self) -> int:
        return max(0, len(self.data) - self.lookback - self.horizon + 1)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        cut = i + self.lookback
        return self.data[i:cut], self.data[cut:cut + self.horizon]

    def arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All windows at once as views: x (N, lookback, C) and y (N, horizon, C)."""
        n = len(self)
        win = self.data.unfold(0, self.lookback + self.horizon, 1)[:n]  # (N, C, L+H)
        win = win.transpose(1, 2)
        return win[:, :self.lookback], win[:, self.lookback:]

    @property
    def num_channels(self) -> int:
        return int(self.data.shape[1])


__all__ = [
    "SeriesTable", "Standardizer", "WindowDataset", "chronological_split", "constant_columns", "load_series_csv",
    "minimum_rows", "minimum_training_rows", "seasonal_period",
]
