"""What detection's evaluation adds to the COCO metrics: each test image scored on its own (for the
report's grid, worst first) and the bootstrap noise band of the transfer verdict."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

#: How many test images the report draws (worst first), and the bootstrap's resamples
SHOWN_IMAGES = 12
BOOTSTRAP_RESAMPLES = 100


def per_image_f1(item, prediction: dict, conf: float, iou: float = 0.5) -> float:
    """F1 of one image's boxes scoring at least `conf` against its true boxes (greedy matching by
    score, same class, IoU ≥ `iou`); 1 for a background image with no box predicted."""
    from torchvision.ops import box_iou

    keep = prediction["scores"] >= conf
    boxes, labels = prediction["boxes"][keep], prediction["labels"][keep]
    true_boxes, true_labels = torch.from_numpy(item.boxes), torch.from_numpy(item.labels)
    if not len(boxes) and not len(true_boxes):
        return 1.0
    if not len(boxes) or not len(true_boxes):
        return 0.0
    overlap = box_iou(boxes, true_boxes)
    taken, hits = set(), 0
    for i in torch.argsort(prediction["scores"][keep], descending=True).tolist():
        candidates = [(float(overlap[i, j]), j) for j in range(len(true_boxes))
                      if j not in taken and int(true_labels[j]) == int(labels[i]) and float(overlap[i, j]) >= iou]
        if candidates:
            taken.add(max(candidates)[1])
            hits += 1
    return 2 * hits / (len(boxes) + len(true_boxes))


def image_records(items: Sequence, predictions: Sequence[dict], classes: Sequence[str], conf: float,
                  shown: int = SHOWN_IMAGES) -> list[dict]:
    """The `shown` test images with the lowest per-image F1 (`per_image_f1`), worst first: path, size,
    true boxes and the boxes predicted at `conf` (original pixels), for the report's grid."""
    scored = sorted(((per_image_f1(it, p, conf), i) for i, (it, p) in enumerate(zip(items, predictions))))
    out = []
    for f1, i in scored[:shown]:
        item, prediction = items[i], predictions[i]
        keep = prediction["scores"] >= conf

        def boxes(values, labels, scores=None):
            return [{"x1": round(float(b[0]), 1), "y1": round(float(b[1]), 1), "x2": round(float(b[2]), 1),
                     "y2": round(float(b[3]), 1), "label": classes[int(c)],
                     **({"score": round(float(scores[k]), 3)} if scores is not None else {})}
                    for k, (b, c) in enumerate(zip(values.tolist(), labels.tolist()))]

        out.append({"path": str(item.image), "width": item.width, "height": item.height, "f1": round(f1, 4),
                    "true": boxes(item.boxes, item.labels),
                    "predicted": boxes(prediction["boxes"][keep], prediction["labels"][keep],
                                       prediction["scores"][keep])})
    return out


def bootstrap_band(items: Sequence, ours: Sequence[dict], theirs: Sequence[dict], classes: Sequence[str],
                   seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """Noise band of the mAP@.5 difference between two models on the same test images: two standard
    deviations of the difference over `resamples` bootstrap resamples of the images (both models
    scored on each resample), with the seed and count to reproduce it."""
    from ..data.detection.metrics import detection_metrics

    targets = [{"boxes": torch.from_numpy(it.boxes), "labels": torch.from_numpy(it.labels)} for it in items]
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(resamples):
        picked = rng.integers(0, len(items), len(items)).tolist()
        if not any(len(items[i].labels) for i in picked):
            continue
        chosen = [targets[i] for i in picked]
        a = detection_metrics([ours[i] for i in picked], chosen, classes)["map_50"]
        b = detection_metrics([theirs[i] for i in picked], chosen, classes)["map_50"]
        differences.append(a - b)
    noise = 2 * float(np.std(differences, ddof=1)) if len(differences) > 1 else float("nan")
    return {"noise": noise, "method": f"two standard deviations of the mAP@.5 difference over {len(differences)} "
                                      f"bootstrap resamples of the {len(items)} test images (seed {seed})",
            "resamples": len(differences), "seed": seed}
