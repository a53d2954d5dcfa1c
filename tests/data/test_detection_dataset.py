"""The detection dataset: box-safe augmentation through torchvision v2, collate, and the way back
to original pixels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from transferkit.data.detection import DetectionDataset, collate_detection, detection_transform, to_original
from transferkit.data.detection.base import DetectionItem

from tests.helpers.detection import write_image


@pytest.fixture
def items(tmp_path):
    out = []
    for i, (w, h) in enumerate([(64, 48), (40, 80), (90, 60)]):
        path = write_image(tmp_path / f"{i}.jpg", (w, h))
        boxes = [[2, 3, w / 2, h / 2], [w / 3, h / 3, w - 1, h - 2]] if i != 1 else []
        out.append(DetectionItem(path, np.array(boxes, np.float32), np.arange(len(boxes)), w, h))
    return out


def test_eval_resizes_to_square_and_back_to_original_pixels(items):
    data = DetectionDataset(items, image_size=32)
    for index, item in enumerate(items):
        image, target = data[index]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
        assert target["labels"].tolist() == item.labels.tolist()
        assert target["orig_size"].tolist() == [item.height, item.width]
        back = to_original(target["boxes"], target["orig_size"], 32)
        np.testing.assert_allclose(back.numpy(), item.boxes.reshape(-1, 4), atol=1e-3)


@pytest.mark.parametrize("augment", ["light", "strong"])
def test_training_augmentation_keeps_boxes_valid(items, augment):
    torch.manual_seed(0)
    data = DetectionDataset(items, image_size=48, train=True, augment=augment)
    flipped = False
    for _ in range(30):
        for index in range(len(items)):
            image, target = data[index]
            boxes = target["boxes"]
            assert image.shape == (3, 48, 48) and boxes.shape[1] == 4
            assert len(boxes) == len(target["labels"])
            assert bool(((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all())
            assert bool((boxes >= 0).all() and (boxes <= 48).all())
            if index == 0 and len(boxes) == 2 and boxes[0, 0] > boxes[1, 0]:  # left and right swapped: a flip
                flipped = True
    assert flipped


def test_collate_stacks_images_and_lists_targets(items):
    images, targets = collate_detection([DetectionDataset(items, 32)[i] for i in range(3)])
    assert images.shape == (3, 3, 32, 32) and [len(t["boxes"]) for t in targets] == [2, 0, 2]


def test_unknown_augment_is_refused():
    with pytest.raises(ValueError, match="augment"):
        detection_transform(32, train=True, augment="heavy")
