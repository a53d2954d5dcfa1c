"""Detection metrics: COCO mAP through torchmetrics' `MeanAveragePrecision` (pycocotools backend).

Nothing here counts matches by hand: the COCO evaluation gives mAP@[.5:.95], mAP@.5, per-class
AP and recall, and the precision at COCO's 101 recall points, from which the report draws each
class's precision-recall curve.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ...errors import MissingDependencyError

#: COCO's recall points (0, 0.01, …, 1): the x axis of the precision arrays it returns
RECALL_POINTS = 101


def _mean_average_precision(**kwargs):
    try:
        from torchmetrics.detection import MeanAveragePrecision

        return MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools", **kwargs)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            f"detection metrics need the COCO evaluator ({exc.name} is missing); pip install pycocotools.") from None


def _plain(boxes: Sequence[dict], keys: tuple[str, ...]) -> list[dict]:
    return [{k: torch.as_tensor(d[k]).detach().cpu() for k in keys} for d in boxes]


def _evaluate(predictions: Sequence[dict], targets: Sequence[dict]) -> dict:
    metric = _mean_average_precision(class_metrics=True, extended_summary=True)
    metric.update(_plain(predictions, ("boxes", "scores", "labels")), _plain(targets, ("boxes", "labels")))
    return metric.compute()


def _ap_at(precision: torch.Tensor, class_index: int, iou_index: int) -> float:
    """COCO AP of one class at one IoU threshold: the mean precision over the 101 recall points
    (all areas, 100 detections); -1 where the class has no true box."""
    curve = precision[iou_index, :, class_index, 0, -1]
    return float(curve.clamp(min=0).mean()) if bool((curve > -1).any()) else -1.0


def detection_metrics(predictions: Sequence[dict], targets: Sequence[dict], classes: Sequence[str]) -> dict:
    """COCO metrics of `predictions` ({"boxes" (n, 4) xyxy, "scores", "labels"} per image) against
    `targets` ({"boxes", "labels"} per image), boxes in the same pixels for both.

    Returns {"map" (mAP@[.5:.95]), "map_50", "map_75", "mar_100", "per_class": {class: {"ap",
    "ap_50", "recall"}}}; a class without true boxes gets -1, as COCO reports it.
    """
    result = _evaluate(predictions, targets)
    present = [int(c) for c in torch.atleast_1d(result["classes"])]
    ap = torch.atleast_1d(result["map_per_class"])
    recall = torch.atleast_1d(result["mar_100_per_class"])
    per_class = {}
    for position, label in enumerate(present):
        if 0 <= label < len(classes):
            per_class[classes[label]] = {"ap": float(ap[position]), "ap_50": _ap_at(result["precision"], position, 0),
                                         "recall": float(recall[position])}
    for name in classes:
        per_class.setdefault(name, {"ap": -1.0, "ap_50": -1.0, "recall": -1.0})
    return {"map": float(result["map"]), "map_50": float(result["map_50"]), "map_75": float(result["map_75"]),
            "mar_100": float(result["mar_100"]), "per_class": {c: per_class[c] for c in classes}}


def precision_recall_curves(predictions: Sequence[dict], targets: Sequence[dict], classes: Sequence[str],
                            iou: float = 0.5) -> dict[str, dict[str, list[float]]]:
    """Per class, COCO's interpolated precision at the 101 recall points at IoU `iou` (0.5-0.95 in
    steps of 0.05): {class: {"recall": [...], "precision": [...]}}; classes without true boxes
    are left out."""
    result = _evaluate(predictions, targets)
    thresholds = [round(0.5 + 0.05 * i, 2) for i in range(10)]
    if round(iou, 2) not in thresholds:
        raise ValueError(f"iou must be one of COCO's thresholds {thresholds}, not {iou}")
    iou_index = thresholds.index(round(iou, 2))
    recall = [i / (RECALL_POINTS - 1) for i in range(RECALL_POINTS)]
    curves = {}
    for position, label in enumerate(int(c) for c in torch.atleast_1d(result["classes"])):
        curve = result["precision"][iou_index, :, position, 0, -1]
        if 0 <= label < len(classes) and bool((curve > -1).any()):
            curves[classes[label]] = {"recall": recall, "precision": [max(0.0, float(p)) for p in curve]}
    return curves
