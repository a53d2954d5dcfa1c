"""Strategies for adapting a pretrained backbone, registered by name (see `registry`)."""
from .._lazy import lazy_exports
from .registry import STRATEGIES, StrategyInfo, create_strategy, register_strategy

_EXPORTS = {
    **dict.fromkeys(("ExtendData", "FitData", "FitOutcome", "Strategy", "TrainSettings"), ".base"),
    **dict.fromkeys(("GradualUnfreeze", "freeze_batchnorm_stats", "set_trainable"), ".freezing"),
    **dict.fromkeys(("LOSSES", "Loss", "Objective"), ".losses"),
    "LayerGroupUnfreezing": ".finetuning",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # torch loads with the first of these

__all__ = sorted([*_EXPORTS, "STRATEGIES", "StrategyInfo", "create_strategy", "register_strategy"])
