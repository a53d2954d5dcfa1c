"""Averages over classes only count the classes the scored data contain."""
from __future__ import annotations

import numpy as np

from transferkit.reporting.html import _metrics_table
from transferkit.tasks.metrics import classification_metrics


def test_macro_f1_leaves_out_classes_without_support() -> None:
    # 8 examples of class 4 of 5; half of them predicted as class 0 (support 0, F1 0)
    labels = np.full(8, 4)
    proba = np.zeros((8, 5))
    proba[:4, 4] = 1.0
    proba[4:, 0] = 1.0
    metrics = classification_metrics(proba, labels, ["a", "b", "c", "d", "e"])
    assert metrics["accuracy"] == 0.5
    assert abs(metrics["macro_f1"] - metrics["per_class"]["e"]["f1"]) < 1e-6  # 0.667, not 0.667 / 5
    assert metrics["per_class"]["a"]["support"] == 0


def test_macro_f1_unchanged_when_every_class_is_present() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    proba = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    metrics = classification_metrics(proba, labels, ["a", "b", "c"])
    f1 = [metrics["per_class"][c]["f1"] for c in "abc"]
    assert abs(metrics["macro_f1"] - sum(f1) / 3) < 1e-6


def test_report_macro_average_row_leaves_out_classes_without_support() -> None:
    per_class = {"a": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
                 "b": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 8}}
    html = _metrics_table({"classes": ["a", "b"], "per_class": per_class})
    foot = html[html.index("macro avg"):]
    assert "1.000" in foot and "0.500" in foot and "0.667" in foot


def test_forgetting_within_its_noise_band_is_not_flagged() -> None:
    from transferkit.reporting.html import lineage_attention

    step = {"added": ["tulip"], "metrics": {"forgetting": 0.025, "forgetting_se": 0.015}}
    assert lineage_attention([step]) == []  # 2.5 ± 3.0 points: not a measured loss
    step["metrics"]["forgetting_se"] = 0.005
    (line,) = lineage_attention([step])
    assert "2.5 ± 1.0 points" in line
    assert len(lineage_attention([{"added": ["x"], "metrics": {"forgetting": 0.05}}])) == 1  # no band recorded
