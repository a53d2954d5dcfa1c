"""Task registry: which estimator handles which kind of data, and how a data path is recognised."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from .._registry import Info, Registry
from ..errors import DataError, RunDirectoryError


@dataclasses.dataclass(frozen=True)
class KeyMetric:
    """A test metric that sums a run up where runs are listed side by side (`transferkit runs`,
    `compare`): its key in metrics.json's evaluation block, its label, which direction is better."""

    key: str
    label: str
    higher_is_better: bool = True
    #: how a value is shown wherever runs are listed (one precision per metric, whichever run)
    format: str = ".3f"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskInfo(Info):
    """What the registry knows about a task before importing its estimator."""

    modality: str  # the input it reads: image, text or timeseries (strategies list theirs in StrategyInfo)
    #: the metrics listed per run, first the one runs are ranked by (read without importing torch)
    key_metrics: tuple[KeyMetric, ...] = ()


#: task name → estimator class (with `fit`, `evaluate`, `save`, `load`)
TASKS: Registry[type, TaskInfo] = Registry("task", info=TaskInfo)


def register_task(name: str, info: TaskInfo) -> Callable[[type], type]:
    """Class decorator registering a task estimator under `name` (for tasks defined outside
    transferkit): `@register_task("segmentation", TaskInfo(modality="image"))`."""
    return TASKS.register(name, info)


# The packaged tasks; each estimator module loads (with torch) when its task is first used.
_CLASSIFICATION_METRICS = (KeyMetric("accuracy", "accuracy"), KeyMetric("macro_f1", "macro F1"))
TASKS.declare("image-classification", f"{__package__}.image_classification:ImageClassifier", TaskInfo(
    description="classify images (folder of class folders)", modality="image", key_metrics=_CLASSIFICATION_METRICS))
TASKS.declare("text-classification", f"{__package__}.text_classification:TextClassifier", TaskInfo(
    description="classify texts (CSV/TSV/JSONL table, or a Hugging Face data set)", modality="text",
    key_metrics=_CLASSIFICATION_METRICS))
TASKS.declare("forecast", f"{__package__}.forecasting:Forecaster", TaskInfo(
    description="forecast time series (CSV: a time column and numeric series)", modality="timeseries",
    key_metrics=(KeyMetric("mse", "MSE", higher_is_better=False, format=".4f"),
                 KeyMetric("mae", "MAE", higher_is_better=False, format=".4f"),
                 KeyMetric("mase", "MASE", higher_is_better=False))))

TASKS.declare("object-detection", f"{__package__}.detection:DetectionEstimator", TaskInfo(
    description="find and box objects in images (Pascal VOC, COCO or YOLO folder)", modality="detection",
    key_metrics=(KeyMetric("map_50", "mAP@.5"), KeyMetric("map", "mAP@[.5:.95]"))))


def detect_task(path: str | Path) -> tuple[str, str]:
    """The task a data path suggests, and why: the first registered task, in increasing
    `detect_order`, whose `recognise(path)` gives a reason (the packaged ones: a time-series CSV,
    a text table or data set name, an image folder). Imports the task estimators (with torch)."""
    for name in sorted(TASKS.names(), key=lambda n: TASKS.get(n).detect_order):
        why = TASKS.get(name).recognise(path)
        if why:
            return name, why
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such file or directory; check the path.")
    raise DataError(f"{p}: cannot tell the task from a {p.suffix or 'suffix-less'} file; pass --task "
                    f"({', '.join(TASKS.names())}).")


def load_run(run_dir: str | Path):
    """The fitted estimator saved in `run_dir`, whatever its task (a bad run directory raises
    one `RunDirectoryError` line naming the file)."""
    from ..rundir import CONFIG_FILE, read_config

    path = Path(run_dir).expanduser()
    task = read_config(path, {"task": str})["task"]
    if task not in TASKS:
        raise RunDirectoryError(f"{path / CONFIG_FILE}: unknown task {task!r}; known: {', '.join(TASKS.names())}.")
    return TASKS.get(task).load(path)


def predictor_for(run_dir: str | Path, engine: str = "auto"):
    """(the model that answers predictions of the run at `run_dir`, the `TwinChoice` saying which
    engine and why): its ONNX twin (an `OnnxPredictor`: onnxruntime, no torch) when present and
    valid, else the PyTorch estimator of `load_run`; `engine` "onnx" or "torch" forces either."""
    from .twin import choose_engine

    choice = choose_engine(run_dir, engine)
    return (choice.predictor if choice.predictor is not None else load_run(run_dir)), choice


def load_predictor(run_dir: str | Path, engine: str = "auto"):
    """A model to predict with from the run at `run_dir`, as fast as it can be loaded: the run's ONNX
    twin when present and valid (same `predict`, `predict_proba` / `forecast` and records as the
    estimator), else the PyTorch estimator. `load_run` gives the full estimator (extend, evaluate,
    export); this is for predictions only. `engine`: "auto", "onnx" (the twin or an error), "torch"."""
    return predictor_for(run_dir, engine)[0]
