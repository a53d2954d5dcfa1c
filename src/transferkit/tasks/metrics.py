"""Classification metrics (torchmetrics), returned as plain JSON-ready dicts."""
from __future__ import annotations

import numpy as np
import torch


def supported_mean(values: list[float], support: list[int]) -> float:
    """The mean of per-class `values` over the classes with examples (support > 0): a class absent
    from the scored data has no recall to measure, and averaging its 0 in would only say which classes
    were left out (8 test images of one class of 5 gave a "macro-F1" of 0.18). NaN when none has any."""
    kept = [float(v) for v, n in zip(values, support) if n > 0]
    return sum(kept) / len(kept) if kept else float("nan")


def classification_metrics(proba: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, macro-F1 (over the classes present in `labels`), log-loss, per-class precision/recall/F1/support and the confusion matrix."""
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    k = len(classes)
    p = torch.as_tensor(proba, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.long)
    args = dict(num_classes=k)
    per_class = {
        "precision": multiclass_precision(p, y, average="none", **args),
        "recall": multiclass_recall(p, y, average="none", **args),
        "f1": multiclass_f1_score(p, y, average="none", **args),
    }
    support = torch.bincount(y, minlength=k)
    metrics = {
        "n": int(len(y)),
        "accuracy": float(multiclass_accuracy(p, y, average="micro", **args)),
        "macro_f1": supported_mean(per_class["f1"].tolist(), support.tolist()),
        "loss": float(torch.nn.functional.nll_loss(torch.log(p.clamp_min(1e-12)), y)),
        "classes": list(classes),
        "per_class": {
            c: {**{m: float(v[i]) for m, v in per_class.items()}, "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "confusion_matrix": multiclass_confusion_matrix(p, y, **args).tolist(),
    }
    if k > 5:
        metrics["top5_accuracy"] = float(multiclass_accuracy(p, y, top_k=5, average="micro", **args))
    return metrics
