"""Model selection before training: transferability scores, their registry, and ranking metrics."""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("TauInterval", "bootstrap_weighted_tau", "top1_hit", "weighted_kendall_tau"), ".ranking"),
    **dict.fromkeys(("SCORES", "ScoreInfo", "TransferabilityScorer", "compute_score", "register_score"), ".registry"),
    **dict.fromkeys(("hscore", "knn_accuracy", "leep", "linear_probe_accuracy", "logme", "nce"), ".scores"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
