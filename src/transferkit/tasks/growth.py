"""Growing a trained classifier: the exemplar memory a run keeps, and `extend`, which adds the classes
of new data without forgetting the old ones and records each step in the run's lineage.

A classification task supplies what is specific to its data through `ClassifierBase` hooks
(`_read_extension`, `_examples`, `_collate`, `_refs`, `_resolve_refs`, `_data_from_splits`); the
strategy that trained the model does the growing (`Strategy.extend`).
"""
from __future__ import annotations

import copy
import json
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError, RunDirectoryError, TransferkitError
from ..rundir import MEMORY_FEATURES, MEMORY_FILE, SPLIT_FILE, read_json, write_text
from ..strategies import STRATEGIES, TrainSettings, create_strategy
from ..strategies import ExtendData
from ..strategies.incremental import select_exemplars

#: `est` below is a fitted `tasks.base.ClassifierBase` (not imported here: base imports this module).
ClassifierBase = Any

#: Split name → (references: image paths or texts, class names).
Splits = dict[str, tuple[list, list[str]]]


# ------------------------------------------------------------------ the exemplar memory
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


# ------------------------------------------------------------------ recorded splits
def recorded_splits(est: ClassifierBase) -> Splits:
    """The run's own train/val/test splits as (references, class names): from the data in memory after
    `fit`, else from split.json of the run directory `load` read (image paths made absolute)."""
    data = getattr(est, "data_", None)
    if data is not None:
        return {name: (est._refs(getattr(data, name)), [data.classes[y] for y in getattr(data, name).labels])
                for name in ("train", "val", "test")}
    run = getattr(est, "run_path_", None)
    if run is None or not (Path(run) / SPLIT_FILE).is_file():
        return {}
    file = Path(run) / SPLIT_FILE
    record = read_json(file, {"train": list, "val": list, "test": list})
    classes = set(getattr(est, "classes_", None) or [])
    for name in ("train", "val", "test"):
        for n, entry in enumerate(record[name]):
            # [reference, class] (a multi-task run: [reference, {head: class}])
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                    and isinstance(entry[1], (str, dict))):
                problem = f"'{name}[{n}]' must be a pair (reference, class name), not {json.dumps(entry)[:40]}"
            elif isinstance(entry[1], str) and classes and entry[1] not in classes:
                problem = f"'{name}[{n}]' names class {entry[1]!r}, which the run does not have"
            else:
                continue
            raise RunDirectoryError(f"{file}: not a valid transferkit {SPLIT_FILE}: {problem}; re-run "
                                    "`transferkit fit`.")
    root = getattr(est, "data_root_", None)
    return {name: (est._resolve_refs([r for r, _ in record[name]], root), [c for _, c in record[name]])
            for name in ("train", "val", "test")}


# ------------------------------------------------------------------ extend
def extend(est: ClassifierBase, data: Any, compare: bool = False, train_backbone: bool = False) -> dict:
    """Grow `est` to the classes of `data` (see `ClassifierBase.extend`); returns the lineage step."""
    est._check_fitted()
    if est._multi_head():
        raise TransferkitError("a multi-task run (several label columns) cannot be extended with new classes yet; "
                               "extend a single-head run.")
    start = time.perf_counter()
    strategy = create_strategy(est.strategy_)
    old = list(est.classes_)
    new_classes, splits = est._read_extension(data)
    classes = old + [c for c in new_classes if c not in old]
    index = {c: i for i, c in enumerate(classes)}
    new = {name: (refs, [index[c] for c in names]) for name, (refs, names) in splits.items()}
    if not new["train"][0]:
        raise DataError(f"{data}: no training examples in the new data.")
    memory = getattr(est, "memory_", None)
    warnings: list[str] = []
    if memory is None and train_backbone:
        warnings.append("no exemplar memory in the parent run: the old classes are kept by distillation alone")
    # features of a trained backbone fit its training examples better than unseen inputs: the grown
    # head is then recalibrated on held-out examples (a frozen backbone's features need no correction)
    calibrate = STRATEGIES.get(est.strategy_).trains_backbone or train_backbone
    old_test = _old_class_test(est, new, len(old))
    before = _accuracy(est, est.model_, old, old_test) if old_test else None
    parent_model = copy.deepcopy(est.model_) if compare else None
    mem_refs = list(memory["refs"]) if memory else []
    mem_labels = list(memory["labels"]) if memory else []
    ext = ExtendData(
        train=est._examples(mem_refs + new["train"][0], mem_labels + new["train"][1], augment=True),
        train_plain=est._examples(mem_refs + new["train"][0], mem_labels + new["train"][1], augment=False),
        val=est._examples(*new["val"], augment=False), num_classes=len(classes), old_classes=len(old),
        memory_size=len(mem_refs), memory_features=memory["features"] if memory else None,
        collate_fn=est._collate(), modality=est.modality, options=dict(est.strategy_settings_),
        train_backbone=train_backbone, calibrate=calibrate)
    settings = est._extension_settings()
    outcome = strategy.extend(est.model_, ext, settings)
    est.model_.eval()
    correction = _correct_bias(est, old, classes, new) if calibrate else None
    if correction:
        outcome.settings["bias_correction"] = correction
        outcome.notes.append(f"new classes' logits rescaled by {correction['alpha']:.2f} and shifted by "
                             f"{correction['beta']:+.2f} (bias correction on {correction['examples']} held-out "
                             "examples)")
    grown = time.perf_counter()
    est.classes_ = classes
    est.strategy_settings_ = {**est.strategy_settings_, **outcome.settings}
    est.history_ = outcome.history or est.history_
    new_test = (new["test"][0], new["test"][1])
    step = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parent": str(getattr(est, "run_path_", "") or "") or None,
        "data": str(data) if isinstance(data, (str, Path)) else f"{len(new['train'][0])} examples",
        "strategy": est.strategy_, "old_classes": old, "added": classes[len(old):],
        "examples": {name: len(refs) for name, (refs, _) in new.items()},
        "memory_used": len(mem_refs), "how": outcome.settings.get("extension", ""),
        "seconds": grown - start,
        "metrics": _scores(est, est.model_, classes, len(old), old_test, new_test, before),
    }
    if compare:
        step["comparison"] = _compare(est, parent_model, old, classes, ext, settings, new, old_test, new_test, before,
                                      step)
    # the memory grows by the new classes' exemplars; their features (and the old exemplars', when the
    # backbone was trained) come from the model as it is now
    candidates = mem_refs + new["train"][0]
    labels = mem_labels + new["train"][1]
    features = None
    if not outcome.settings.get("backbone_trained") and outcome.features is not None:
        old_features = memory["features"] if memory else np.zeros((0, outcome.features[0].shape[1]), np.float32)
        features = np.concatenate([old_features, outcome.features[0]])
        if len(features) > len(candidates):  # the strategy's features cover the new validation split too
            candidates, labels = candidates + new["val"][0], labels + new["val"][1]
    est.memory_ = build_memory(est, candidates, labels, features)
    est.timings_ = {**outcome.timings, "total extend": time.perf_counter() - start}
    est.notes_ = [*outcome.notes, *warnings]
    est.warnings_ = warnings
    est.lineage_ = [*getattr(est, "lineage_", []), step]
    est.metrics_ = None
    # the run's splits become the parent's plus the new data's: evaluate() scores every class, the run
    # records everything it saw, and the next extension retrains on all of it for its comparison
    recorded = recorded_splits(est)
    merged = {name: (list(recorded[name][0]) if recorded else []) + new[name][0] for name in ("train", "val", "test")}
    merged_names = {name: (list(recorded[name][1]) if recorded else []) + [classes[y] for y in new[name][1]]
                    for name in ("train", "val", "test")}
    est.data_ = est._data_from_splits(classes, {n: (merged[n], merged_names[n]) for n in merged})
    est.estimate_ = None
    est.run_path_ = None  # a further step in this session grows this model, which no run directory holds yet
    return step


def _correct_bias(est: ClassifierBase, old: list[str], classes: list[str], new: dict) -> dict | None:
    """BiC's two-parameter correction of the new classes' logits (`incremental.bias_correction`) on
    held-out examples: the parent run's validation split (old classes) and the new data's, none of
    them trained on. For a linear head only (a prototype head's old rows must stay as they are);
    None when there is no such head or the held-out examples lack old or new classes."""
    from torch import nn

    from ..strategies.incremental import bias_correction, head_logits

    head = est.model_.head
    recorded = recorded_splits(est).get("val") or ([], [])
    index = {c: i for i, c in enumerate(classes)}
    refs, labels = est._existing([r for r, c in zip(*recorded) if c in old], [index[c] for c in recorded[1] if c in old])
    refs, labels = refs + list(new["val"][0]), labels + list(new["val"][1])
    seen = set(labels)
    if not isinstance(head, nn.Linear) or not seen & set(range(len(old))) or not seen - set(range(len(old))):
        return None
    with _as_model(est, est.model_, classes):
        logits = head_logits(est.model_, est._examples(refs, labels, augment=False), est._collate(),
                             hflip=bool(getattr(est, "tta", False)))
    alpha, beta = bias_correction(head, logits, torch.as_tensor(labels), len(old))
    return {"alpha": alpha, "beta": beta, "examples": len(labels), "method": "BiC (Wu et al. 2019)"}


def _old_class_test(est: ClassifierBase, new: dict, old_count: int) -> tuple[list, list[int]] | None:
    """Test examples of the old classes: the parent run's test split plus the new data's test examples
    of old classes (scored before and after, so forgetting is measured on the same examples)."""
    recorded = recorded_splits(est)
    index = {c: i for i, c in enumerate(est.classes_)}
    refs, labels = [], []
    if recorded.get("test") and recorded["test"][0]:
        refs, names = recorded["test"]
        keep = [i for i, c in enumerate(names) if c in index]
        refs, labels = [refs[i] for i in keep], [index[names[i]] for i in keep]
        refs, labels = est._existing(refs, labels)
    extra = [(r, y) for r, y in zip(*new["test"]) if y < old_count]
    refs += [r for r, _ in extra]
    labels += [y for _, y in extra]
    return (refs, labels) if refs else None


@contextmanager
def _as_model(est: ClassifierBase, model, classes: list[str]):
    saved = est.model_, est.classes_
    est.model_, est.classes_ = model, classes
    try:
        yield
    finally:
        est.model_, est.classes_ = saved


def _accuracy(est: ClassifierBase, model, classes: list[str], test) -> float:
    refs, labels = test
    with _as_model(est, model, classes):
        proba = est._proba(est._inputs(refs))
    return float((proba.argmax(1) == np.asarray(labels)).mean())


def _scores(est: ClassifierBase, model, classes: list[str], old_count: int, old_test, new_test,
            before: float | None) -> dict:
    """Old-class accuracy before and after, forgetting (points lost), new-class and overall accuracy."""
    out: dict[str, Any] = {"old_accuracy_before": before}
    with _as_model(est, model, classes):
        if old_test:
            out["old_accuracy_after"] = float((est._proba(est._inputs(old_test[0])).argmax(1)
                                               == np.asarray(old_test[1])).mean())
            out["old_examples"] = len(old_test[1])
            out["forgetting"] = before - out["old_accuracy_after"]
        new_refs = [r for r, y in zip(*new_test) if y >= old_count]
        new_labels = [y for y in new_test[1] if y >= old_count]
        if new_refs:
            out["new_accuracy"] = float((est._proba(est._inputs(new_refs)).argmax(1) == np.asarray(new_labels)).mean())
            out["new_examples"] = len(new_refs)
    if "old_accuracy_after" in out and "new_accuracy" in out:
        n_old, n_new = out["old_examples"], out["new_examples"]
        out["all_accuracy"] = (out["old_accuracy_after"] * n_old + out["new_accuracy"] * n_new) / (n_old + n_new)
    return out


def _compare(est, parent_model, old, classes, ext: ExtendData, settings: TrainSettings, new: dict, old_test, new_test,
             before, step) -> dict:
    """The two references of an extension: naive fine-tuning on the new data only (no memory, no
    distillation, no aligning) and retraining on all the data (the run's splits + the new ones)."""
    strategy = create_strategy(est.strategy_)
    start = time.perf_counter()
    naive_data = replace(ext, train=est._examples(*new["train"], augment=True),
                         train_plain=est._examples(*new["train"], augment=False), memory_size=0, memory_features=None,
                         replay=False, distill=False, align=False)
    strategy.extend(parent_model, naive_data, replace(settings, checkpoint_dir=None))
    parent_model.eval()
    naive = {**_scores(est, parent_model, classes, len(old), old_test, new_test, before),
             "seconds": time.perf_counter() - start}
    joint: dict[str, Any] = {}
    recorded = recorded_splits(est)
    if recorded and recorded["train"][0]:
        start = time.perf_counter()
        splits = {name: (est._existing(recorded[name][0], recorded[name][1])[0] + new[name][0],
                         est._existing(recorded[name][0], recorded[name][1])[1]
                         + [classes[y] for y in new[name][1]]) for name in ("train", "val", "test")}
        params = {**est.get_params(), "strategy": est.strategy_, "run_dir": None, "resume": False, "baseline": False,
                  "memory": 0, "progress": est.progress}
        retrained = type(est)(**{k: v for k, v in params.items() if k in type(est)._get_param_names()})
        retrained.fit(est._data_from_splits(classes, splits))
        order = [retrained.classes_.index(c) for c in classes]  # its classes in our order
        retrained.model_.head = _reordered(retrained.model_.head, order)
        joint = {**_scores(est, retrained.model_, classes, len(old), old_test, new_test, before),
                 "seconds": time.perf_counter() - start}
    else:
        joint = {"skipped": "the parent run's training data are not recorded or no longer found"}
    return {"naive": naive, "joint": joint, "extend_seconds": step["seconds"]}


def _reordered(head, order: list[int]):
    """`head` with its output rows permuted to `order` (linear and prototype heads)."""
    linear = head if isinstance(head, torch.nn.Linear) else head.linear
    with torch.no_grad():
        linear.weight.copy_(linear.weight[order].clone())
        linear.bias.copy_(linear.bias[order].clone())
    return head


# ------------------------------------------------------------------ presentation
def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def growth_table(step: dict):
    """One lineage step as a `presentation.Table`: old-class accuracy before → after, forgetting (points
    lost), new-class and overall accuracy and time, for the extension and, when compared, naive
    fine-tuning on the new data alone and retraining on all data (the upper bound)."""
    from .presentation import Table

    rows = [("extend (this run)", step["metrics"], step["seconds"])]
    comparison = step.get("comparison") or {}
    if comparison.get("naive"):
        rows.append(("naive: new data only", comparison["naive"], comparison["naive"].get("seconds")))
    if comparison.get("joint") and "skipped" not in comparison["joint"]:
        rows.append(("retrain on all data", comparison["joint"], comparison["joint"].get("seconds")))
    columns = ("model", "old acc before", "old acc after", "forgetting", "new-class acc", "all acc", "seconds")

    def forgetting(m: dict) -> str:
        return "n/a" if m.get("forgetting") is None else f"{100 * m['forgetting']:.1f} pts"

    added = ", ".join(step["added"]) or "no new class"
    return Table(columns=columns, right=columns[1:],
                 title=f"extended with {added} ({step['examples'].get('train', 0)} training examples, "
                       f"{step['memory_used']} from the exemplar memory)",
                 rows=[(name, _pct(m.get("old_accuracy_before")), _pct(m.get("old_accuracy_after")), forgetting(m),
                        _pct(m.get("new_accuracy")), _pct(m.get("all_accuracy")),
                        "-" if seconds is None else f"{seconds:.1f}") for name, m, seconds in rows])
