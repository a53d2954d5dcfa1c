"""transferkit: transfer learning from pretrained models, with every decision explained."""
__version__ = "0.1.0"

from .backbones import create_backbone, list_backbones  # noqa: E402
from .errors import TransferkitError  # noqa: E402
from .tasks import Forecaster, ImageClassifier, TextClassifier, load_run  # noqa: E402

__all__ = ["Forecaster", "ImageClassifier", "TextClassifier", "TransferkitError", "__version__", "create_backbone", "list_backbones", "load_run"]
