"""Tasks: estimators that put data, backbone and strategy together for one kind of problem."""
from .._lazy import lazy_exports
from .registry import TASKS, KeyMetric, TaskInfo, detect_task, load_predictor, load_run, predictor_for, register_task

_EXPORTS = {
    "ClassifierBase": ".classifier",
    "TransferEstimator": ".base",
    "Forecaster": ".forecasting",
    **dict.fromkeys(("ImageClassifier", "expand_image_paths"), ".image_classification"),
    "classification_metrics": ".metrics",
    "TextClassifier": ".text_classification",
    "ObjectDetector": ".detection",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # the estimators import torch

__all__ = sorted([*_EXPORTS, "TASKS", "KeyMetric", "TaskInfo", "detect_task", "load_predictor", "load_run",
                  "predictor_for", "register_task"])
