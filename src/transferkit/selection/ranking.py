"""How well transferability scores rank models, measured against the accuracies reached after transfer."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

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


@dataclass(frozen=True)
class TauInterval:
    """A weighted Kendall tau with a percentile bootstrap interval (`low`, `high` at `level`)."""

    estimate: float
    low: float
    high: float
    level: float
    resamples: int
    #: the replicates' values (NaN where undefined): two scores bootstrapped with the same `seed` on
    #: the same tasks and models share their resamples, so their replicates compare pairwise
    values: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level,
                "resamples": self.resamples}


def _correct_arrays(correct: Sequence[Any], models: int) -> list[np.ndarray]:
    arrays = [np.asarray(c, dtype=np.float64) for c in correct]
    if len(arrays) != models:
        raise DataError(f"{models} scores but {len(arrays)} per-model result arrays; give one of each per model.")
    arrays = [a.reshape(1, -1) if a.ndim == 1 else a for a in arrays]
    if any(a.ndim != 2 or a.shape[0] == 0 for a in arrays):
        raise DataError("each model's results must be a (seeds, test examples) array of 0/1 correctness.")
    if len({a.shape[1] for a in arrays}) != 1:
        raise DataError("every model must be scored on the same test examples (equal numbers of columns): "
                        "the bootstrap resamples them jointly.")
    return arrays


def bootstrap_weighted_tau(
    tasks: Sequence[tuple[Any, Sequence[Any]]], resamples: int = 1000, level: float = 0.95, seed: int = 0,
) -> tuple[list[TauInterval], TauInterval]:
    """Weighted Kendall tau of scores against fine-tuned accuracy, per task and averaged over tasks,
    with percentile bootstrap intervals that carry the noise of the ground truth.

    Each task is `(scores, correct)`: one score per model and, per model, a (seeds, test examples)
    0/1 array of which test examples each fine-tuning seed classified correctly. The estimate ranks
    the scores against the mean accuracy over seeds and examples. A bootstrap replicate resamples
    the test examples (one draw per task, shared by all models: the models are compared on the same
    images) and, independently per model, its seeds, then recomputes each task's tau and their mean.
    Deterministic for a given `seed`; replicates where a tau is undefined (tied accuracies) are skipped.
    """
    if resamples < 1 or not 0 < level < 1:
        raise ValueError(f"resamples must be >= 1 and 0 < level < 1, got {resamples}, {level}.")
    if not tasks:
        raise DataError("bootstrap_weighted_tau needs at least one task.")
    rng = np.random.default_rng(seed)
    prepared = []
    for scores, correct in tasks:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        arrays = _correct_arrays(correct, len(s))
        _pair(s, [a.mean() for a in arrays])  # at least 2 models, finite values
        prepared.append((s, arrays))
    estimates = [weighted_kendall_tau(s, [a.mean() for a in arrays]) for s, arrays in prepared]
    replicates = np.full((resamples, len(prepared)), np.nan)
    for t, (s, arrays) in enumerate(prepared):
        n = arrays[0].shape[1]
        # resampled test examples as counts (one row per replicate): each seed's accuracy on a
        # replicate is then one matrix product, for all seeds of all models at once
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
        per_seed = np.vstack(arrays) @ counts.T / n  # (all seeds, resamples)
        offsets = np.cumsum([0] + [len(a) for a in arrays])
        columns = np.arange(resamples)[:, None]
        accuracy = np.stack([per_seed[offsets[m] + rng.integers(0, len(a), (resamples, len(a))), columns].mean(axis=1)
                             for m, a in enumerate(arrays)], axis=1)  # (resamples, models)
        for r in range(resamples):
            replicates[r, t] = weighted_kendall_tau(s, accuracy[r])
    tail = 100 * (1 - level) / 2

    def interval(estimate: float, all_values: np.ndarray) -> TauInterval:
        values = all_values[np.isfinite(all_values)]
        if values.size == 0:
            return TauInterval(estimate, float("nan"), float("nan"), level, 0, all_values)
        low, high = np.percentile(values, [tail, 100 - tail])
        return TauInterval(float(estimate), float(low), float(high), level, int(values.size), all_values)

    per_task = [interval(e, replicates[:, t]) for t, e in enumerate(estimates)]
    # a replicate's mean over the tasks whose tau is defined in it (as the estimate skips NaN tasks)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(replicates)
        means = np.where(finite.any(axis=1), np.nansum(replicates, axis=1) / np.maximum(finite.sum(axis=1), 1), np.nan)
    defined = [e for e in estimates if np.isfinite(e)]
    mean = interval(float(np.mean(defined)) if defined else float("nan"), means)
    return per_task, mean
