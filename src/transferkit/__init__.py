"""transferkit: transfer learning from pretrained models, with every decision explained."""
__version__ = "0.1.0"

from ._lazy import lazy_exports  # noqa: E402
from .errors import TransferkitError  # noqa: E402

# The estimators and backbones import torch; they load on first use so the CLI starts fast.
__getattr__, __dir__ = lazy_exports(__name__, {
    "create_backbone": ".backbones", "list_backbones": ".backbones", "Forecaster": ".tasks",
    "ImageClassifier": ".tasks", "ObjectDetector": ".tasks", "TextClassifier": ".tasks", "load_run": ".tasks", "load_predictor": ".tasks",
})

__all__ = ["Forecaster", "ImageClassifier", "ObjectDetector", "TextClassifier", "TransferkitError", "__version__", "create_backbone",
           "list_backbones", "load_predictor", "load_run"]
