"""How well transferability scores rank models, measured against the accuracies reached after transfer."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError


def _pair(scores: Any, accuracies: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    a = np.asarray(accuracies, dtype=np.float64).reshape(-1)
    if len(s) != len(a):
        raise DataError(f"{len(s)} scores but {len(a)} accuracies; give one of each per model.")
    if len(s) < 2:
        raise DataError("ranking needs at least 2 models.")
    if not (np.isfinite(s).all() and np.isfinite(a).all()):
        raise DataError("scores and accuracies must be finite.")
    return s, a


def weighted_kendall_tau(scores: Any, accuracies: Any) -> float:
    """Weighted Kendall tau between scores and accuracies (1: same order, -1: reversed).

    `scipy.stats.weightedtau` with its default hyperbolic weights, as in You et al. (LogME, ICML 2021):
    swaps among the best models cost more than swaps among the worst.
    """
    from scipy.stats import weightedtau

    s, a = _pair(scores, accuracies)
    return float(weightedtau(s, a)[0])  # NaN when all scores or all accuracies are equal


def top1_hit(scores: Any, accuracies: Any) -> bool:
    """Whether the top-scored model reaches the best accuracy.

    A tie for the top score counts as a hit only if every tied model is best: a score that cannot
    tell the models apart has not picked one.
    """
    s, a = _pair(scores, accuracies)
    picked = np.flatnonzero(s == s.max())
    return bool((a[picked] == a.max()).all())
