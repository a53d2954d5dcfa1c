"""Strategies for adapting a pretrained backbone, registered by name."""
from . import auto, fine_tune, linear_probe, lora, setfit  # noqa: F401  (register the strategies)
from .base import STRATEGIES, FitData, FitOutcome, Strategy, TrainSettings, TransferModel, create_strategy, register_strategy
from .features import extract_features
from .freezing import GradualUnfreeze, freeze_batchnorm_stats, set_trainable

__all__ = [
    "STRATEGIES", "FitData", "FitOutcome", "GradualUnfreeze", "Strategy", "TrainSettings", "TransferModel",
    "create_strategy", "extract_features", "freeze_batchnorm_stats", "register_strategy", "set_trainable",
]
