"""Detection metrics through torchmetrics' COCO evaluation, on cases checked by hand."""
from __future__ import annotations

import pytest
import torch

from transferkit.data.detection import detection_metrics, precision_recall_curves


def boxes(*rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


TARGETS = [{"boxes": boxes([10, 10, 50, 50], [60, 60, 90, 90]), "labels": torch.tensor([0, 0])},
           {"boxes": boxes([20, 20, 80, 90]), "labels": torch.tensor([1])}]


def test_perfect_predictions_score_one():
    preds = [{**t, "scores": torch.linspace(0.9, 0.5, len(t["labels"]))} for t in TARGETS]
    result = detection_metrics(preds, TARGETS, ["cat", "dog"])
    assert result["map"] == pytest.approx(1.0) and result["map_50"] == pytest.approx(1.0)
    assert result["per_class"] == {c: {"ap": pytest.approx(1.0), "ap_50": pytest.approx(1.0), "recall": 1.0}
                                   for c in ("cat", "dog")}


def test_one_missed_box_halves_recall():
    """cat: one of two boxes found at precision 1, so COCO's 101-point AP is 51/101 (recall 0 to
    0.5 at precision 1, nothing beyond); dog perfect; mAP is their mean."""
    preds = [{"boxes": boxes([10, 10, 50, 50]), "scores": torch.tensor([0.9]), "labels": torch.tensor([0])},
             {"boxes": boxes([20, 20, 80, 90]), "scores": torch.tensor([0.8]), "labels": torch.tensor([1])}]
    result = detection_metrics(preds, TARGETS, ["cat", "dog"])
    cat = result["per_class"]["cat"]
    assert cat["ap"] == pytest.approx(51 / 101, abs=1e-6) and cat["ap_50"] == pytest.approx(51 / 101, abs=1e-6)
    assert cat["recall"] == pytest.approx(0.5)
    assert result["map_50"] == pytest.approx((51 / 101 + 1) / 2, abs=1e-6)
    curves = precision_recall_curves(preds, TARGETS, ["cat", "dog"])
    assert len(curves["cat"]["recall"]) == 101 and curves["cat"]["recall"][50] == pytest.approx(0.5)
    assert curves["cat"]["precision"][:51] == pytest.approx([1.0] * 51)
    assert curves["cat"]["precision"][51:] == [0.0] * 50


def test_a_loose_box_counts_at_iou_half_only():
    """A box of IoU 0.6 with its target is a hit at 0.5 and 0.55, a miss above: AP@[.5:.95] = 2/10."""
    target = [{"boxes": boxes([0, 0, 100, 100]), "labels": torch.tensor([0])}]
    pred = [{"boxes": boxes([0, 0, 100, 60]), "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}]
    result = detection_metrics(pred, target, ["cat", "dog"])
    assert result["map_50"] == pytest.approx(1.0) and result["map"] == pytest.approx(0.2)
    assert result["per_class"]["dog"] == {"ap": -1.0, "ap_50": -1.0, "recall": -1.0}  # no true dog box
    with pytest.raises(ValueError, match="thresholds"):
        precision_recall_curves(pred, target, ["cat"], iou=0.42)
