"""Tests for the standalone HTML run report."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt

from transferkit.reporting import RunReport, write_report
from transferkit.reporting.plots import confusion_matrix_png, learning_curves_png

PNG_MAGIC = b"\x89PNG"
IMG_TAG = '<img src="data:image/png;base64,'


def _full_report(classes: list[str]) -> RunReport:
    cm = [[8, 1, 1], [0, 9, 1], [2, 0, 8]]
    per_class = {
        c: {"precision": 0.8, "recall": 0.8 + 0.05 * i, "f1": 0.82, "support": 10}
        for i, c in enumerate(classes)
    }
    return RunReport(
        title="flowers5 — image classification",
        task="image classification",
        config={"backbone": "resnet18", "train": {"epochs": 3, "lr": 1e-3}},
        metrics={
            "accuracy": 0.8333,
            "macro_f1": 0.82,
            "classes": classes,
            "confusion_matrix": cm,
            "per_class": per_class,
            "n": 30,
            "loss": 0.51,
        },
        history=[
            {"epoch": 1, "train_loss": 1.2, "val_loss": 1.0, "val_accuracy": 0.6, "lr": 1e-3,
             "trainable_groups": ["head"]},
            {"epoch": 2, "train_loss": 0.8, "val_loss": float("nan"), "val_accuracy": 0.75,
             "lr": 5e-4, "trainable_groups": ["head", "layer4"]},
            {"epoch": 3, "train_loss": 0.5, "val_accuracy": 0.83, "lr": 1e-4,
             "trainable_groups": ["head", "layer4"]},
        ],
        decisions=[("strategy: fine-tune", "38 images per class ≥ 10, so the backbone is fine-tuned")],
        data_summary={
            "root": "/data/flowers5",
            "counts": {s: {c: 10 for c in classes} for s in ("train", "val", "test")},
            "skipped": [{"path": "/data/flowers5/daisy/broken.jpg", "reason": "cannot decode image"}],
            "split": "stratified 70/15/15, seed 0",
        },
        timings={"feature extraction": 12.3, "training": 100.0},
        notes=["1 file skipped (see Data)"],
    )


def test_full_report(tmp_path: Path) -> None:
    classes = ["daisy", "rose", "<script>alert(1)</script>"]
    out = write_report(tmp_path / "sub" / "report.html", _full_report(classes))

    assert out.exists()
    text = out.read_text(encoding="utf-8")
    assert "daisy" in text and "rose" in text
    assert "83.3%" in text
    assert text.count(IMG_TAG) >= 2
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "cannot decode image" in text
    assert "<details" in text and "resnet18" in text
    assert "not evaluated" not in text


def test_report_without_metrics_or_history(tmp_path: Path) -> None:
    report = RunReport(
        title="untrained", task="image classification", config={}, metrics={}, history=[],
        decisions=[], data_summary={}, timings={},
    )
    text = write_report(tmp_path / "r.html", report).read_text(encoding="utf-8")
    assert "not evaluated" in text
    assert IMG_TAG not in text


def test_learning_curves_empty_and_sweep() -> None:
    assert learning_curves_png([]) is None
    assert learning_curves_png([{"epoch": 1, "train_loss": math.nan}]) is None

    sweep = [{"C": c, "val_accuracy": a} for c, a in ((0.01, 0.5), (0.1, 0.7), (1.0, 0.8), (10.0, 0.78))]
    png = learning_curves_png(sweep)
    assert isinstance(png, bytes) and png.startswith(PNG_MAGIC)


def test_plots_close_their_figures() -> None:
    before = len(plt.get_fignums())
    assert confusion_matrix_png([[1, 0], [0, 1]], ["a", "b"]).startswith(PNG_MAGIC)
    assert learning_curves_png([{"epoch": 1, "train_loss": 1.0}]).startswith(PNG_MAGIC)
    assert len(plt.get_fignums()) == before
