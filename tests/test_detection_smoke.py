"""Smoke check: the default detector learns on a few raccoon photos, and answers in their pixels."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from transferkit.backbones.detectors import DEFAULT_DETECTOR, build_detector, detect_items, evaluate_detector
from transferkit.data.detection import DetectionDataset, collate_detection, load_detection

from tests.helpers import shared_dataset

SIZE = 128


@pytest.mark.slow
def test_default_detector_loss_falls_and_predictions_are_in_original_pixels():
    torch.manual_seed(0)
    data = load_detection(shared_dataset("detection", "raccoon"))
    items = data.subset("train")[:8]
    model = build_detector("mobilenetv2_100", num_classes=len(data.classes), architecture=DEFAULT_DETECTOR,
                           image_size=SIZE, frozen_stages=4)
    loader = DataLoader(DetectionDataset(items, SIZE, train=True), batch_size=4, shuffle=True,
                        collate_fn=collate_detection)
    optimizer = torch.optim.SGD(model.param_groups(lr=0.01, backbone_lr=0.01), momentum=0.9, weight_decay=1e-4)
    model.train()
    losses = []
    for _ in range(6):
        for images, targets in loader:
            loss = sum(model(images, targets).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses

    predictions = detect_items(model, items[:4], batch_size=3)
    assert any(len(p["boxes"]) for p in predictions)
    for item, pred in zip(items, predictions):
        boxes = pred["boxes"]
        assert bool((boxes[:, 0::2] <= item.width).all() and (boxes[:, 1::2] <= item.height).all())
        assert bool((boxes >= 0).all())
    # the largest box reaches past the square input: it is in the photo's pixels, not the model's
    widest = max(float(p["boxes"][:, 2].max()) for p in predictions if len(p["boxes"]))
    assert widest > SIZE
    metrics = evaluate_detector(model, items, data.classes)
    assert 0 <= metrics["map"] <= metrics["map_50"] <= 1 and set(metrics["per_class"]) == {"raccoon"}
