"""Growing a trained classifier: `extend`, which adds the classes of new data without forgetting the
old ones (replaying the exemplar memory a run keeps, see `memory`) and records each step in the
run's lineage.

A classification task supplies what is specific to its data through the `GrowthMixin` hooks of
`ClassifierBase` (`_read_extension`, `_examples`, `_collate`, `_refs`, `_resolve_refs`,
`_data_from_splits`); the strategy that trained the model does the growing (`Strategy.extend`).
"""
from __future__ import annotations

import copy
import json
import os
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError, RunDirectoryError, TransferkitError
from ..rundir import SPLIT_FILE, read_json
from ..strategies import STRATEGIES, Strategy, TrainSettings, create_strategy
from ..strategies import ExtendData
from ..strategies.linear_probe import CROSS_VALIDATE_BELOW, CV_FOLDS
from .memory import FEATURE_MEMORY_CAP, build_memory  # noqa: F401  (FEATURE_MEMORY_CAP: re-exported)

#: `est` below is a fitted `tasks.classifier.ClassifierBase` (not imported here: it imports this module).
ClassifierBase = Any

#: Split name → (references: image paths or texts, class names).
Splits = dict[str, tuple[list, list[str]]]


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
    """Grow `est` to the classes of `data` (see `ClassifierBase.extend`); returns the lineage step.

    The grown run is scored as `fit` scores a run: when the parent kept no held-out test split (it was
    cross-validated) and its strategy refits a head on frozen features, every labelled example (the
    parent's and the new data's) trains the shipped model and the extension is estimated by
    cross-validation of that refit (`est.estimate_`, what `evaluate()` scores); otherwise on the
    parent's test split plus the new data's."""
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
    read = time.perf_counter()
    memory = getattr(est, "memory_", None)
    warnings: list[str] = []
    if memory is None and train_backbone:
        warnings.append("no exemplar memory in the parent run: the old classes are kept by distillation alone")
    parent, held_out, gone = _parent_splits(est)
    if gone:
        warnings.append(gone)
    folds = 0 if held_out else _extension_folds(est, strategy, memory, new, len(classes), train_backbone)
    if folds:  # as `fit` below CROSS_VALIDATE_BELOW: every new example trains, none is held out
        new = {"train": tuple(list(a) + list(b) + list(c) for a, b, c in zip(new["train"], new["val"], new["test"])),
               "val": ([], []), "test": ([], [])}
    # features of a trained backbone fit its training examples better than unseen inputs: the grown
    # head is then recalibrated on held-out examples (a frozen backbone's features need no correction)
    calibrate = STRATEGIES.get(est.strategy_).trains_backbone or train_backbone
    old_test = None if folds else _old_class_test(est, parent, new, len(old))
    before = _correct(est, est.model_, old, old_test) if old_test else None
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
    correction = _correct_bias(est, old, classes, new, parent) if calibrate else None
    if correction:
        outcome.settings["bias_correction"] = correction
        outcome.notes.append(f"new classes' logits rescaled by {correction['alpha']:.2f} and shifted by "
                             f"{correction['beta']:+.2f} (bias correction on {correction['examples']} held-out "
                             "examples)")
    grown = time.perf_counter()
    est.classes_ = classes
    est.strategy_settings_ = {**est.strategy_settings_, **outcome.settings}
    new_test = (new["test"][0], new["test"][1])
    estimate, cv = None, None
    if folds:
        cv = _cross_validation(est, strategy, memory, outcome, len(old), folds)
        estimate, metrics = cv["estimate"], cv["metrics"]
    else:
        metrics = _scores(est, est.model_, classes, len(old), old_test, new_test, before)
    scored = time.perf_counter()
    run_path = getattr(est, "run_path_", None)
    step = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parent": os.path.abspath(run_path) if run_path else None,
        "data": os.path.abspath(Path(data).expanduser()) if isinstance(data, (str, Path)) else
        f"{len(new['train'][0])} examples",
        "strategy": est.strategy_, "old_classes": old, "added": classes[len(old):],
        "examples": {name: len(refs) for name, (refs, _) in new.items()},
        "memory_used": len(mem_refs), "how": outcome.settings.get("extension", ""),
        "seconds": grown - start,
        "evaluation": metrics.get("evaluation"),
        "metrics": metrics,
    }
    if compare:
        step["comparison"] = _compare(est, parent_model, old, classes, ext, settings, new, old_test, new_test, before,
                                      step, parent, cv)
    compared = time.perf_counter()
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
    memory_start = time.perf_counter()
    est.memory_ = build_memory(est, candidates, labels, features)
    est.timings_ = {"reading the new data": read - start, **outcome.timings,
                    "scoring (" + (metrics.get("evaluation") or "test split") + ")": scored - grown,
                    **({"comparison (--compare)": compared - scored} if compare else {}),
                    "exemplar memory": time.perf_counter() - memory_start,
                    "total extend": time.perf_counter() - start}
    # an extension's own story: its history (none for a refit head: no epochs), notes and warnings
    est.history_ = outcome.history or []
    est.notes_ = [*outcome.notes, *warnings]
    est.warnings_ = warnings
    est.lineage_ = [*getattr(est, "lineage_", []), step]
    # the run's splits become the parent's plus the new data's: evaluate() scores every class, the run
    # records everything it saw, and the next extension retrains on all of it for its comparison
    merged = {name: (list(parent[name][0]) if parent else []) + list(new[name][0]) for name in ("train", "val", "test")}
    merged_names = {name: (list(parent[name][1]) if parent else []) + [classes[y] for y in new[name][1]]
                    for name in ("train", "val", "test")}
    est.data_ = est._data_from_splits(classes, {n: (merged[n], merged_names[n]) for n in merged})
    if folds:
        n = sum(len(refs) for refs in merged.values())
        est.data_.split.update(cross_validation_folds=folds, description=(
            f"all {n} labelled examples (the parent's and the new data's) train the model, as a fit on fewer than "
            f"{CROSS_VALIDATE_BELOW} would; accuracy estimated by {folds}-fold cross-validation of the extension"))
    est.estimate_ = estimate
    est.run_path_ = None  # a further step in this session grows this model, which no run directory holds yet
    # scored as a fit is (its cross-validated estimate, else the merged test split), so `save` writes
    # metrics.json however the run was grown (CLI or Python)
    est.control_ = None  # the parent's from-scratch control measured the parent's classes, not these
    est.metrics_ = est.evaluate() if estimate is not None or len(est.data_.test) else None
    return step


def _parent_splits(est: ClassifierBase) -> tuple[Splits, bool, str | None]:
    """The parent run's recorded splits restricted to the examples still found, whether it held out a test
    split, and one line saying how much of its data is gone (None when all is there)."""
    recorded = recorded_splits(est)
    if not recorded:
        return {}, False, None
    kept = {name: est._existing(*recorded[name]) for name in ("train", "val", "test")}
    total = sum(len(refs) for refs, _ in recorded.values())
    found = sum(len(refs) for refs, _ in kept.values())
    gone = None
    if found < total:
        root = getattr(est, "data_root_", None)
        where = f" (recorded under {root})" if root else ""
        gone = (f"the parent run's data{where} are gone: {total - found} of {total} recorded examples not found, so "
                + ("forgetting is measured on what is left and --compare retrains on what is left" if found else
                   "forgetting on its test split is not measured and --compare cannot retrain on all data")
                + "; restore the data to measure them")
    return kept, bool(recorded["test"][0]), gone


def _extension_folds(est: ClassifierBase, strategy, memory: dict | None, new: dict, num_classes: int,
                     train_backbone: bool) -> int:
    """Folds to cross-validate the extension by (0: score it on held-out test examples): a parent without
    a held-out test split (the caller checks), a strategy whose extension refits a head on the stored
    frozen features (`Strategy.refit_on_features`), and at least 2 examples in every class."""
    if train_backbone or not memory or memory.get("features") is None:
        return 0
    if type(strategy).refit_on_features is Strategy.refit_on_features:
        return 0
    labels = list(memory["labels"]) + [y for name in ("train", "val", "test") for y in new[name][1]]
    smallest = min(labels.count(k) for k in range(num_classes))
    return min(CV_FOLDS, smallest) if smallest >= 2 else 0


def _cross_validation(est: ClassifierBase, strategy, memory: dict, outcome, old_count: int, folds: int) -> dict:
    """The cross-validated estimate of an extension (every example scored by the head refit without its
    fold) and its lineage metrics: old-class accuracy before (the parent's refit on its own examples,
    cross-validated the same way) and after on the same examples, forgetting with its standard error,
    new-class and overall accuracy."""
    from ..strategies.incremental import cross_validated_refit

    settings = dict(est.strategy_settings_)
    k = len(est.classes_)
    mem_x, mem_y = np.asarray(memory["features"], np.float32), np.asarray(memory["labels"], np.int64)
    x = np.concatenate([mem_x, np.asarray(outcome.features[0], np.float32)])
    y = np.concatenate([mem_y, np.asarray(outcome.features[1], np.int64)])
    method = f"{folds}-fold cross-validation"

    def refit(classes: int):
        return lambda tx, ty: strategy.refit_on_features(tx, ty, classes, settings, est.seed)

    proba = cross_validated_refit(refit(k), x, y, k, folds, est.seed)
    old_folds = min(folds, int(np.bincount(mem_y, minlength=old_count).min()))
    before_p = cross_validated_refit(refit(old_count), mem_x, mem_y, old_count, old_folds, est.seed) \
        if old_folds >= 2 else None
    correct = proba.argmax(1) == y
    metrics: dict[str, Any] = {"evaluation": method, "old_accuracy_before": None}
    old_rows = slice(0, len(mem_y))
    if before_p is not None:
        before = before_p.argmax(1) == mem_y
        metrics.update(_paired(before, correct[old_rows]))
    else:
        metrics.update(old_accuracy_after=float(correct[old_rows].mean()), old_examples=int(len(mem_y)))
    is_new = y >= old_count
    if is_new.any():
        metrics.update(new_accuracy=float(correct[is_new].mean()), new_examples=int(is_new.sum()))
    metrics.update(all_accuracy=float(correct.mean()), all_examples=int(len(y)))
    return {"estimate": {"method": method, "folds": folds, "proba": proba, "labels": y}, "metrics": metrics,
            "features": x, "labels": y, "old_rows": len(mem_y)}


def _paired(before: np.ndarray, after: np.ndarray) -> dict:
    """Old-class accuracy before and after on the same examples, and the forgetting (points lost) with the
    standard error of that paired difference (its noise band: ±2 SE is about a 95 % interval)."""
    diff = before.astype(float) - after.astype(float)
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None
    return {"old_accuracy_before": float(before.mean()), "old_accuracy_after": float(after.mean()),
            "old_examples": int(len(before)), "forgetting": float(diff.mean()), "forgetting_se": se}


def _correct_bias(est: ClassifierBase, old: list[str], classes: list[str], new: dict, parent: Splits) -> dict | None:
    """BiC's two-parameter correction of the new classes' logits (`incremental.bias_correction`) on
    held-out examples: the parent run's validation split (old classes) and the new data's, none of
    them trained on. For a linear head only (a prototype head's old rows must stay as they are);
    None when there is no such head or the held-out examples lack old or new classes."""
    from torch import nn

    from ..strategies.incremental import bias_correction, head_logits

    head = est.model_.head
    recorded = parent.get("val") or ([], [])
    index = {c: i for i, c in enumerate(classes)}
    kept = [(r, index[c]) for r, c in zip(*recorded) if c in old]
    refs, labels = [r for r, _ in kept] + list(new["val"][0]), [y for _, y in kept] + list(new["val"][1])
    seen = set(labels)
    if not isinstance(head, nn.Linear) or not seen & set(range(len(old))) or not seen - set(range(len(old))):
        return None
    with _as_model(est, est.model_, classes):
        logits = head_logits(est.model_, est._examples(refs, labels, augment=False), est._collate(),
                             hflip=bool(getattr(est, "tta", False)))
    alpha, beta = bias_correction(head, logits, torch.as_tensor(labels), len(old))
    return {"alpha": alpha, "beta": beta, "examples": len(labels), "method": "BiC (Wu et al. 2019)"}


def _old_class_test(est: ClassifierBase, parent: Splits, new: dict, old_count: int) -> tuple[list, list[int]] | None:
    """Test examples of the old classes: the parent run's test split (those still found) plus the new
    data's test examples of old classes (scored before and after, so forgetting is measured on the same
    examples)."""
    index = {c: i for i, c in enumerate(est.classes_)}
    refs, labels = [], []
    if parent.get("test") and parent["test"][0]:
        kept = [(r, index[c]) for r, c in zip(*parent["test"]) if c in index]
        refs, labels = [r for r, _ in kept], [y for _, y in kept]
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


def _correct(est: ClassifierBase, model, classes: list[str], test) -> np.ndarray:
    """Whether `model` (over `classes`) predicts each of the (references, labels) `test` right."""
    refs, labels = test
    with _as_model(est, model, classes):
        proba = est._proba(est._inputs(refs))
    return proba.argmax(1) == np.asarray(labels)


def _scores(est: ClassifierBase, model, classes: list[str], old_count: int, old_test, new_test,
            before: np.ndarray | None) -> dict:
    """Old-class accuracy before and after on the same test examples, forgetting (points lost, with its
    standard error), new-class and overall accuracy, all on held-out test examples."""
    out: dict[str, Any] = {"evaluation": "test split", "old_accuracy_before": None}
    new_refs = [r for r, y in zip(*new_test) if y >= old_count]
    new_labels = [y for y in new_test[1] if y >= old_count]
    if old_test:
        after = _correct(est, model, classes, old_test)
        out.update(_paired(before, after) if before is not None else
                   {"old_accuracy_after": float(after.mean()), "old_examples": len(after)})
    if new_refs:
        out["new_accuracy"] = float(_correct(est, model, classes, (new_refs, new_labels)).mean())
        out["new_examples"] = len(new_refs)
    if "old_accuracy_after" in out and "new_accuracy" in out:
        n_old, n_new = out["old_examples"], out["new_examples"]
        out["all_accuracy"] = (out["old_accuracy_after"] * n_old + out["new_accuracy"] * n_new) / (n_old + n_new)
        out["all_examples"] = n_old + n_new
    return out


def _compare(est, parent_model, old, classes, ext: ExtendData, settings: TrainSettings, new: dict, old_test, new_test,
             before, step, parent: Splits, cv: dict | None) -> dict:
    """The two references of an extension: naive fine-tuning on the new data only (no memory, no
    distillation, no aligning) and retraining on all the data (the run's splits + the new ones), each
    scored as the extension is (`cv`: its cross-validation, else the held-out test examples)."""
    strategy = create_strategy(est.strategy_)
    start = time.perf_counter()
    if cv is not None:
        naive = {**_naive_cross_validated(est, strategy, parent_model, old, classes, ext, settings, new, step, cv),
                 "seconds": (time.perf_counter() - start) / cv["estimate"]["folds"]}
    else:
        naive_data = replace(ext, train=est._examples(*new["train"], augment=True),
                             train_plain=est._examples(*new["train"], augment=False), memory_size=0,
                             memory_features=None, replay=False, distill=False, align=False)
        strategy.extend(parent_model, naive_data, replace(settings, checkpoint_dir=None))
        parent_model.eval()
        naive = {**_scores(est, parent_model, classes, len(old), old_test, new_test, before),
                 "seconds": time.perf_counter() - start}
    joint: dict[str, Any] = {}
    if parent and parent["train"][0]:
        start = time.perf_counter()
        splits = {name: (list(parent[name][0]) + list(new[name][0]),
                         list(parent[name][1]) + [classes[y] for y in new[name][1]]) for name in ("train", "val", "test")}
        params = {**est.get_params(), "strategy": est.strategy_, "run_dir": None, "resume": False, "baseline": False,
                  "memory": 0, "progress": est.progress}
        retrained = type(est)(**{k: v for k, v in params.items() if k in type(est)._get_param_names()})
        if cv is not None:  # scored as `fit` scores it: its own cross-validation on every example
            pooled = est._data_from_splits(classes, {"train": _pooled(splits), "val": ([], []), "test": ([], [])})
            pooled.split["from_folders"] = False  # a split of ours: the fit may cross-validate on it
            retrained.fit(pooled)
            joint = _fit_scores(retrained, classes, len(old), cv["metrics"])
        else:
            retrained.fit(est._data_from_splits(classes, splits))
            order = [retrained.classes_.index(c) for c in classes]  # its classes in our order
            retrained.model_.head = _reordered(retrained.model_.head, order)
            joint = _scores(est, retrained.model_, classes, len(old), old_test, new_test, before)
        joint["seconds"] = time.perf_counter() - start
    else:
        joint = {"skipped": "the parent run's training data are not recorded or no longer found"}
    return {"naive": naive, "joint": joint, "extend_seconds": step["seconds"]}


def _pooled(splits: dict) -> tuple[list, list]:
    """Every example of `splits` (references, class names) in one list."""
    return ([r for name in ("train", "val", "test") for r in splits[name][0]],
            [c for name in ("train", "val", "test") for c in splits[name][1]])


def _naive_cross_validated(est, strategy, parent_model, old, classes, ext: ExtendData, settings: TrainSettings,
                           new: dict, step: dict, cv: dict) -> dict:
    """Naive fine-tuning scored on the extension's folds: for each fold, the parent's model grown on the
    new examples outside it (no memory), applied to the fold's features (the backbone is frozen, so
    stored features are exact). Its old classes keep the parent's head, fitted on every old example."""
    from sklearn.model_selection import StratifiedKFold

    x, y, first_new = cv["features"], cv["labels"], cv["old_rows"]
    folds = int(cv["estimate"]["folds"])
    proba = np.zeros((len(y), len(classes)))
    new_refs, new_labels = new["train"]
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=est.seed).split(np.zeros(len(y)), y):
        chosen = [i - first_new for i in train if i >= first_new]
        refs, labels = [new_refs[i] for i in chosen], [new_labels[i] for i in chosen]
        model = copy.deepcopy(parent_model)
        naive_data = replace(ext, train=est._examples(refs, labels, augment=True),
                             train_plain=est._examples(refs, labels, augment=False), memory_size=0,
                             memory_features=None, replay=False, distill=False, align=False)
        strategy.extend(model, naive_data, replace(settings, checkpoint_dir=None, progress=False))
        with torch.no_grad():
            proba[test] = torch.softmax(model.eval().head(torch.as_tensor(x[test], dtype=torch.float32)), 1).numpy()
    scores = _split_scores(proba.argmax(1) == y, y, len(old), cv["metrics"], first_new)
    # the old classes' head saw every old example, so its old-class accuracy is in-sample: no forgetting
    # is computed against the out-of-fold "before", and the table says so
    scores.pop("forgetting", None)
    return {**scores, "old_in_sample": True}


def _split_scores(correct: np.ndarray, y: np.ndarray, old_count: int, extension: dict,
                  old_rows: int | None = None) -> dict:
    """Lineage metrics of per-example correctness `correct` (labels `y`): old-class accuracy after on the
    parent's examples (the first `old_rows`; else every old-class example), its before from `extension`
    (forgetting then without a paired standard error when the examples differ), new-class and overall."""
    out: dict[str, Any] = {"evaluation": extension.get("evaluation"),
                           "old_accuracy_before": extension.get("old_accuracy_before")}
    old_mask = np.zeros(len(y), bool)
    if old_rows is not None:
        old_mask[:old_rows] = True
    else:
        old_mask = y < old_count
    if old_mask.any():
        out.update(old_accuracy_after=float(correct[old_mask].mean()), old_examples=int(old_mask.sum()))
        if out["old_accuracy_before"] is not None:
            out["forgetting"] = out["old_accuracy_before"] - out["old_accuracy_after"]
    is_new = y >= old_count
    if is_new.any():
        out.update(new_accuracy=float(correct[is_new].mean()), new_examples=int(is_new.sum()))
    out.update(all_accuracy=float(correct.mean()), all_examples=int(len(y)))
    return out


def _fit_scores(retrained, classes: list[str], old_count: int, extension: dict) -> dict:
    """The lineage metrics of a model retrained on all data, scored as its fit scored it (its
    cross-validated estimate, or its own test split), over `classes` (its class order may differ)."""
    if not getattr(retrained, "estimate_", None) and not len(retrained.data_.test):
        return {"skipped": "the retrained model kept no test split and was not cross-validated"}
    metrics = retrained.evaluate()
    if getattr(retrained, "estimate_", None):
        to_ours = np.asarray([classes.index(c) for c in retrained.classes_])
        y = to_ours[np.asarray(retrained.estimate_["labels"], np.int64)]
        predicted = to_ours[np.asarray(retrained.estimate_["proba"]).argmax(1)]
        return {**_split_scores(predicted == y, y, old_count, extension), "evaluation": retrained.estimate_["method"]}
    per_class = metrics["per_class"]

    def accuracy(names: list[str]) -> tuple[float | None, int]:
        n = sum(per_class[c]["support"] for c in names)
        return (sum(per_class[c]["recall"] * per_class[c]["support"] for c in names) / n if n else None), n

    (old_acc, n_old), (new_acc, n_new) = accuracy(classes[:old_count]), accuracy(classes[old_count:])
    out = {"evaluation": "its test split", "old_accuracy_before": extension.get("old_accuracy_before"),
           "old_accuracy_after": old_acc, "old_examples": n_old, "new_accuracy": new_acc, "new_examples": n_new,
           "all_accuracy": metrics["accuracy"], "all_examples": metrics["n"]}
    if old_acc is not None and out["old_accuracy_before"] is not None:
        out["forgetting"] = out["old_accuracy_before"] - old_acc
    return out


def _reordered(head, order: list[int]):
    """`head` with its output rows permuted to `order` (linear and prototype heads)."""
    linear = head if isinstance(head, torch.nn.Linear) else head.linear
    with torch.no_grad():
        linear.weight.copy_(linear.weight[order].clone())
        linear.bias.copy_(linear.bias[order].clone())
    return head


# ------------------------------------------------------------------ presentation
def extension_decisions(step: dict, strategy: str) -> list[tuple[str, str]]:
    """What an extension decided, as (decision, why) lines for its run's report: the parent, the classes
    added and how, how it was scored, the exemplar memory used."""
    added = ", ".join(step["added"]) or "none"
    m = step.get("metrics") or {}
    evaluation = step.get("evaluation") or "test split"
    if evaluation == "test split":
        why = ("held-out test examples: the parent's test split (old classes, scored before and after) and the new "
               "data's test split")
    else:
        why = (f"the parent kept no held-out test split (it was cross-validated), so the grown run is scored as a fit "
               f"on its {m.get('all_examples', 'labelled')} examples is: every example trains the shipped model and "
               f"the head refit is estimated by {evaluation}; old-class accuracy before is the parent's head refit on "
               "its own examples, cross-validated the same way")
    return [
        (f"extended from run {step.get('parent') or '(not saved)'}",
         "this run grows that one; the parent's own decisions (backbone, strategy, input size) are in its report"),
        (f"classes added: {added}", step.get("how") or f"by strategy {strategy}"),
        (f"evaluation: {evaluation}", why),
        (f"exemplar memory: {step.get('memory_used', 0)} examples of the old classes",
         "replayed with the new examples so the old classes are not forgotten"),
    ]


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
        naive = comparison["naive"]
        name = "naive: new data only" + (" (old classes scored in-sample)" if naive.get("old_in_sample") else "")
        rows.append((name, naive, naive.get("seconds")))
    if comparison.get("joint") and "skipped" not in comparison["joint"]:
        rows.append(("retrain on all data", comparison["joint"], comparison["joint"].get("seconds")))
    columns = ("model", "old acc before", "old acc after", "forgetting", "new-class acc", "all acc", "seconds")

    def forgetting(m: dict) -> str:
        if m.get("forgetting") is None:
            return "n/a"
        band = f" ± {200 * m['forgetting_se']:.1f}" if m.get("forgetting_se") else ""  # ±2 SE, paired
        return f"{100 * m['forgetting']:.1f}{band} pts"

    added = ", ".join(step["added"]) or "no new class"
    m = step["metrics"]
    scored = m.get("evaluation") or "test split"
    counts = ", ".join(f"{m[k]} {what}" for k, what in (("old_examples", "old-class"), ("new_examples", "new-class"))
                       if m.get(k))
    return Table(columns=columns, right=columns[1:],
                 title=f"extended with {added} ({step['examples'].get('train', 0)} training examples, "
                       f"{step['memory_used']} from the exemplar memory); scored by {scored}"
                       + (f" on {counts} examples" if counts else ""),
                 rows=[(name, _pct(m.get("old_accuracy_before")), _pct(m.get("old_accuracy_after")), forgetting(m),
                        _pct(m.get("new_accuracy")), _pct(m.get("all_accuracy")),
                        "-" if seconds is None else f"{seconds:.1f}") for name, m, seconds in rows])
