"""Seeded, stratified sampling shared by every labelled data source."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def stratified_carve(labels: Sequence[int], fraction: float, num_classes: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices (kept, carved out): `fraction` of the items, stratified by label, at least one per
    class on each side (otherwise a class would be missing from a split)."""
    from sklearn.model_selection import train_test_split

    n = len(labels)
    size = min(max(round(fraction * n), num_classes), n - num_classes)
    keep, out = train_test_split(np.arange(n), test_size=size, stratify=list(labels), random_state=seed)
    return sorted(keep.tolist()), sorted(out.tolist())


def sample_per_class(labels: Sequence[int], k: int, seed: int) -> list[int]:
    """Indices of `k` items per class (all of a class if it has fewer), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=min(k, int((labels == c).sum())), replace=False)
              for c in np.unique(labels)]
    return sorted(np.concatenate(chosen).tolist())
