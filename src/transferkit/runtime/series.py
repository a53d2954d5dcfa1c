"""A history CSV as an exported forecaster reads it, with the csv module and numpy (no pandas).

The column rules are the estimator's (`data.timeseries.load_series_csv`): the time column is the
recorded one, else a column named like `date`/`time`, else the first non-numeric column whose
values all parse as times; the forecast series are found by name and must be numeric and
complete. The forecast steps are timestamped from the last time and the frequency the run recorded.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from ..errors import DataError

TIME_COLUMN_NAMES = ("date", "datetime", "time", "timestamp", "ds", "period")
_MISSING = {"", "nan", "na", "n/a", "null", "none", "nat", "-"}
#: fixed-length pandas offset aliases → seconds ("h", "15min", "D"...; old upper-case spellings too)
_UNITS = {"s": 1, "S": 1, "min": 60, "T": 60, "h": 3600, "H": 3600, "D": 86400, "d": 86400, "W": 604800}


@dataclass
class History:
    """The history's values of the forecast series (T, C) in their own units, and its last time."""

    path: Path
    values: np.ndarray
    last_time: datetime | None


def _parse_time(text: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is not None:  # the estimator converts times with an offset to naive UTC
        from datetime import timezone

        stamp = stamp.astimezone(timezone.utc).replace(tzinfo=None)
    return stamp


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_history(path: str | Path, series: list[str], time_column: str | None = None) -> History:
    """The columns `series` of the CSV at `path` as float32 (T, C), and its last time (None when
    the file has no time column or its times are not ISO 8601); bad files raise one line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass the path of a CSV file with one row per time step.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc}); save it as comma-separated text.") from None
    while rows and all(not v.strip() for v in rows[-1]):  # trailing blank lines are harmless
        rows.pop()
    if not rows:
        raise DataError(f"{path}: the file is empty; pass a CSV with a header row and one row per time step.")
    header, data = [h.strip() for h in rows[0]], rows[1:]
    if not data:
        raise DataError(f"{path}: the file has a header but no data rows; add one row per time step.")
    missing = [c for c in series if c not in header]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r}; the model forecasts {', '.join(series)}.")
    values = np.empty((len(data), len(series)), dtype=np.float32)
    for j, name in enumerate(series):
        k = header.index(name)
        for i, row in enumerate(data):
            raw = row[k].strip() if k < len(row) else ""
            if raw.lower() in _MISSING:
                raise DataError(f"{path}: missing value in column {name!r} at line {i + 2}; fill the gaps first.")
            number = _number(raw)
            if number is None:
                raise DataError(f"{path}: non-numeric value {raw[:40]!r} in column {name!r} at line {i + 2}; fix it.")
            if not abs(number) <= _FLOAT32_MAX:  # inf, NaN or beyond float32 (1e39): the forecast would be null
                raise DataError(f"{path}: value {raw[:40]!r} in column {name!r} at line {i + 2} is not a finite "
                                "number a model can read; fix it.")
            values[i, j] = number
    column = _time_column(header, data, time_column)
    last = _parse_time(data[-1][column]) if column is not None and column < len(data[-1]) else None
    return History(path, values, last)


def _time_column(header: list[str], data: list[list[str]], recorded: str | None) -> int | None:
    """Index of the time column: the recorded one, a column named like a time, or the first
    non-numeric column whose values all parse as ISO times."""
    if recorded in header:
        return header.index(recorded)
    for i, name in enumerate(header):
        if name.lower() in TIME_COLUMN_NAMES:
            return i
    for i in range(len(header)):
        cells = [r[i] for r in data if i < len(r)]
        if cells and not all(_number(c) is not None for c in cells) and all(_parse_time(c) for c in cells):
            return i
    return None


def step_times(last: datetime | None, frequency: str | None, steps: int) -> list[str]:
    """Timestamps of the `steps` forecast steps after `last` at `frequency` (a pandas offset alias),
    written as pandas writes them ("2021-01-11 00:00:00"); "+1", "+2"... without a time or for a
    frequency other than fixed lengths and month starts/ends."""
    match = re.fullmatch(r"(\d*)([A-Za-z]+)(?:-\w+)?", frequency or "")
    if last is None or not match:
        return [f"+{i + 1}" for i in range(steps)]
    count, unit = int(match.group(1) or 1), match.group(2)
    if unit in _UNITS:
        delta = timedelta(seconds=count * _UNITS[unit])
        return [str(last + delta * (i + 1)) for i in range(steps)]
    if unit in ("MS", "ME", "M"):
        return [str(_add_months(last, count * (i + 1), start=unit == "MS")) for i in range(steps)]
    return [f"+{i + 1}" for i in range(steps)]


def _add_months(stamp: datetime, months: int, start: bool) -> datetime:
    """The month start (`start`) or month end `months` months after `stamp`'s month, at its time of day."""
    import calendar

    index = stamp.year * 12 + stamp.month - 1 + months
    year, month = divmod(index, 12)
    day = 1 if start else calendar.monthrange(year, month + 1)[1]
    return stamp.replace(year=year, month=month + 1, day=day)
