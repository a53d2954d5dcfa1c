"""Model selection before training: transferability scores, their registry, and ranking metrics."""
from .ranking import top1_hit, weighted_kendall_tau
from .registry import SCORES, TransferabilityScorer, compute_score
from .scores import hscore, knn_accuracy, leep, linear_probe_accuracy, logme, nce

__all__ = [
    "SCORES", "TransferabilityScorer", "compute_score", "hscore", "knn_accuracy", "leep",
    "linear_probe_accuracy", "logme", "nce", "top1_hit", "weighted_kendall_tau",
]
