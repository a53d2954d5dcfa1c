"""The exemplar memory a classification run keeps for `extend`: which examples (and, for a frozen
backbone, their features) are kept per class, and how they are saved and read back."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import RunDirectoryError
from ..rundir import MEMORY_FEATURES, MEMORY_FILE, read_json, write_text
from ..strategies import STRATEGIES
from ..strategies.incremental import select_exemplars

#: `est` below is a fitted `tasks.classifier.ClassifierBase` (not imported here: it imports this module).
ClassifierBase = Any


#: A run whose backbone stays frozen keeps the features of up to this many examples per class: they are
#: exact for any input and small (5 KB each at 1,280 dimensions), and a head refit on all of them is the
#: head retrained on all the data (a 100-per-class subsample cost flowers5 about 5 points more).
FEATURE_MEMORY_CAP = 1000


def memory_size(est: ClassifierBase) -> int:
    """Examples kept per class: `est.memory` (0: none) for a run whose backbone was trained, else up to
    FEATURE_MEMORY_CAP (features of a frozen backbone are exact and small)."""
    if not est.memory:
        return 0
    return int(est.memory) if STRATEGIES.get(est.strategy_).trains_backbone else max(int(est.memory),
                                                                                     FEATURE_MEMORY_CAP)


def build_memory(est: ClassifierBase, refs: list, labels: list[int], features: np.ndarray | None) -> dict | None:
    """The run's exemplar memory chosen among `refs` (labels over `est.classes_`): at most `memory_size`
    per class, by `est.memory_selection`, with the exemplars' features from the model's backbone as it
    is now (`features`, aligned with `refs`, when the strategy already has them; else extracted, for
    herding from a random pool of twice the memory per class). The features stay exact while the
    backbone is left as it is, so an extension that keeps the backbone refits the head on them."""
    per_class = memory_size(est)
    if per_class <= 0 or not refs:
        return None
    labels_a = np.asarray(labels, dtype=np.int64)
    start = time.perf_counter()
    if features is None and est.memory_selection == "herding":
        pool = np.asarray(select_exemplars(labels_a, 2 * per_class, "random", seed=est.seed))
        pool_features = _features(est, [refs[i] for i in pool], labels_a[pool])
        picked = select_exemplars(labels_a[pool], per_class, "herding", pool_features, est.seed)
        chosen, chosen_features = [int(pool[i]) for i in picked], pool_features[picked]
    else:
        chosen = select_exemplars(labels_a, per_class, est.memory_selection, features, est.seed)
        chosen_features = features[chosen] if features is not None else \
            _features(est, [refs[i] for i in chosen], labels_a[chosen])
    return {"refs": [refs[i] for i in chosen], "labels": labels_a[chosen].tolist(),
            "features": np.asarray(chosen_features, np.float32), "per_class": per_class,
            "selection": est.memory_selection,
            "features_from": "the run's backbone as saved (exact while an extension leaves it as it is)",
            "seconds": time.perf_counter() - start}


def _features(est: ClassifierBase, refs: list, labels) -> np.ndarray:
    from ..models.features import extract_features

    x, _ = extract_features(est.model_.backbone, est._examples(refs, list(labels), augment=False), batch_size=64,
                            hflip=bool(getattr(est, "tta", False)), progress=est.progress, description="memory",
                            collate_fn=est._collate())
    return x


def save_memory(memory: dict | None, path: Path) -> None:
    """memory.json (references, labels, how chosen) and, with features, memory.safetensors."""
    from safetensors.torch import save_file

    if not memory:
        return
    record = {k: v for k, v in memory.items() if k != "features"}
    record["refs"] = [str(r) for r in memory["refs"]]
    if memory.get("features") is not None:
        save_file({"features": torch.as_tensor(memory["features"]).contiguous()}, str(path / MEMORY_FEATURES))
    write_text(path / MEMORY_FILE, json.dumps(record, indent=1))


#: What memory.json holds (`save_memory`); labels are class indices of the run's classes.
MEMORY_SCHEMA = {"refs": list[str], "labels": list[int], "per_class": int, "selection": str}


def load_memory(path: Path, classes: int | None = None) -> dict | None:
    """The memory saved by `save_memory`, or None for a run without one; a memory that does not fit
    the run (labels outside its `classes`, a count that differs from the exemplars, a features file
    that is not one) raises one `RunDirectoryError` line naming the file."""
    if not (path / MEMORY_FILE).is_file():
        return None
    file = path / MEMORY_FILE
    memory = read_json(file, MEMORY_SCHEMA)
    refs, labels = memory["refs"], memory["labels"]
    problem = None
    if len(labels) != len(refs):
        problem = f"{len(labels)} labels for {len(refs)} exemplars"
    elif classes is not None and any(not 0 <= y < classes for y in labels):
        bad = next(y for y in labels if not 0 <= y < classes)
        problem = f"label {bad} is not a class of the run (it has {classes}: 0 to {classes - 1})"
    elif memory["per_class"] < 0:
        problem = f"'per_class' must be at least 0, not {memory['per_class']}"
    if problem:
        raise RunDirectoryError(f"{file}: {problem}; the run is damaged, re-run `transferkit fit`.")
    memory["features"] = None
    if (path / MEMORY_FEATURES).is_file():
        from safetensors.torch import load_file

        from ..rundir import safetensors_header

        tensors = safetensors_header(path / MEMORY_FEATURES)
        entry = tensors.get("features") or {}
        if set(tensors) != {"features"} or len(entry.get("shape") or ()) != 2 or entry.get("dtype") not in ("F32", "F16", "BF16", "F64"):
            raise RunDirectoryError(f"{path / MEMORY_FEATURES}: not an exemplar memory (it should hold one 2-D float "
                                    f"tensor 'features', it holds {len(tensors)} tensor(s), e.g. {next(iter(tensors), 'none')!r}); the run is "
                                    "damaged, re-run `transferkit fit`.")
        memory["features"] = load_file(str(path / MEMORY_FEATURES))["features"].float().numpy()
        if len(memory["features"]) != len(memory["refs"]):
            raise RunDirectoryError(f"{path / MEMORY_FEATURES}: {len(memory['features'])} feature rows for "
                                    f"{len(memory['refs'])} exemplars; the run is damaged, re-run `transferkit fit`.")
    return memory
