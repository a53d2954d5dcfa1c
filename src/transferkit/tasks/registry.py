"""Task registry: which estimator handles which kind of data, and how a data path is recognised."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from .._registry import Info, Registry
from ..errors import DataError, RunDirectoryError


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskInfo(Info):
    """What the registry knows about a task before importing its estimator."""

    modality: str  # the input it reads: image, text or timeseries (strategies list theirs in StrategyInfo)


#: task name → estimator class (with `fit`, `evaluate`, `save`, `load`)
TASKS: Registry[type, TaskInfo] = Registry("task", info=TaskInfo)


def register_task(name: str, info: TaskInfo) -> Callable[[type], type]:
    """Class decorator registering a task estimator under `name` (for tasks defined outside
    transferkit): `@register_task("segmentation", TaskInfo(modality="image"))`."""
    return TASKS.register(name, info)


# The packaged tasks; each estimator module loads (with torch) when its task is first used.
TASKS.declare("image-classification", f"{__package__}.image_classification:ImageClassifier", TaskInfo(
    description="classify images (folder of class folders)", modality="image"))
TASKS.declare("text-classification", f"{__package__}.text_classification:TextClassifier", TaskInfo(
    description="classify texts (CSV/TSV/JSONL table, or a Hugging Face data set)", modality="text"))
TASKS.declare("forecast", f"{__package__}.forecasting:Forecaster", TaskInfo(
    description="forecast time series (CSV: a time column and numeric series)", modality="timeseries"))


def detect_task(path: str | Path) -> tuple[str, str]:
    """The task a data path suggests, and why: an image folder, a text table, or a time-series CSV
    (a date column followed by numeric columns only)."""
    from ..data.text import SPLIT_FILES, TEXT_EXTENSIONS, looks_like_hub_name

    p = Path(path).expanduser()
    if p.is_dir():
        tables = [f for f in p.iterdir() if f.is_file() and f.suffix.lower() in TEXT_EXTENSIONS
                  and f.stem.lower() in sum(SPLIT_FILES.values(), ())]
        if tables or (p / "dataset_dict.json").is_file():
            return "text-classification", f"{p.name}/ holds {tables[0].name if tables else 'a saved data set'}"
        return "image-classification", f"{p.name}/ is a folder (of class folders of images)"
    if not p.exists():
        if not looks_like_hub_name(str(path)):
            raise DataError(f"{p}: no such file or directory; check the path.")
        return "text-classification", f"{path} is not a path: read as a Hugging Face data set name"
    if p.suffix.lower() == ".csv" and _looks_like_series(p):
        return "forecast", f"{p.name}: a time column followed by numeric columns"
    if p.suffix.lower() in TEXT_EXTENSIONS:
        return "text-classification", f"{p.name} is a {p.suffix[1:].upper()} table"
    raise DataError(f"{p}: cannot tell the task from a {p.suffix or 'suffix-less'} file; pass --task "
                    f"({', '.join(TASKS.names())}).")


def _looks_like_series(path: Path, rows: int = 50) -> bool:
    import pandas as pd

    try:
        head = pd.read_csv(path, nrows=rows)
    except Exception:  # not parseable as plain CSV: let the text reader explain
        return False
    if head.shape[1] < 2 or len(head) == 0:
        return False
    first = head.iloc[:, 0].astype(str)
    # utc=True: times with different UTC offsets (or beside naive ones) raise otherwise; whether they
    # may be mixed is for the series loader to say
    dates = pd.to_datetime(first, errors="coerce", format="mixed", utc=True)
    rest_numeric = all(pd.api.types.is_numeric_dtype(head[c]) for c in head.columns[1:])
    return bool(dates.notna().all() and not first.str.fullmatch(r"-?\d+(\.\d+)?").all() and rest_numeric)


def load_run(run_dir: str | Path):
    """The fitted estimator saved in `run_dir`, whatever its task (a bad run directory raises
    one `RunDirectoryError` line naming the file)."""
    from ..rundir import CONFIG_FILE, read_config

    path = Path(run_dir).expanduser()
    task = read_config(path, {"task": str})["task"]
    if task not in TASKS:
        raise RunDirectoryError(f"{path / CONFIG_FILE}: unknown task {task!r}; known: {', '.join(TASKS.names())}.")
    return TASKS.get(task).load(path)
