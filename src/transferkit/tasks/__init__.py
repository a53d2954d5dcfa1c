"""Tasks: estimators that put data, backbone and strategy together for one kind of problem."""
from .image_classification import ImageClassifier, expand_image_paths
from .metrics import classification_metrics

__all__ = ["ImageClassifier", "classification_metrics", "expand_image_paths"]
