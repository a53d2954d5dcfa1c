"""Tasks: estimators that put data, backbone and strategy together for one kind of problem."""
from .base import ClassifierBase, TransferEstimator
from .forecasting import Forecaster
from .image_classification import ImageClassifier, expand_image_paths
from .metrics import classification_metrics
from .registry import TASKS, detect_task, load_run, register_task
from .text_classification import TextClassifier

__all__ = [
    "TASKS", "ClassifierBase", "Forecaster", "ImageClassifier", "TextClassifier", "TransferEstimator", "classification_metrics",
    "detect_task", "expand_image_paths", "load_run", "register_task",
]
