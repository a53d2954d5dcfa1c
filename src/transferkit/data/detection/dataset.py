"""Detection batches for torch: images resized to the model's square input, boxes moved with them.

Every geometric step (flip, zoom out, IoU-safe crop, resize) goes through `torchvision.transforms.v2`
with the boxes as `tv_tensors.BoundingBoxes`, so boxes follow the pixels without hand-written
arithmetic, and `SanitizeBoundingBoxes` drops the ones a crop left degenerate. Images come out as
float 0-1 tensors: torchvision's detectors normalise inside the model (with the backbone's mean
and std). Predictions on the square input go back to the original image's pixels with `to_original`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..images import open_rgb
from .base import DetectionItem

#: augmentation levels: "none" (resize only), "light" (flip, colour, mild zoom), "strong" (+ crops)
AUGMENTS = ("none", "light", "strong")


def detection_transform(image_size: int, train: bool = False, augment: str = "light") -> Callable:
    """The v2 pipeline (image, {"boxes", "labels"}) → same, resized to `image_size` square.

    Training ("light"): photometric distortion, zoom-out (scale jitter down to 1/1.5) and
    horizontal flip; "strong" adds torchvision's IoU-safe random crop (SSD's sampler: every crop
    keeps a minimum IoU with some box), which zooms in. Evaluation only resizes.
    """
    from torchvision.transforms import v2

    if augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {AUGMENTS}, not {augment!r}")
    steps: list = [v2.ToImage()]
    if train and augment != "none":
        steps += [v2.RandomPhotometricDistort(p=0.5),
                  v2.RandomApply([v2.RandomZoomOut(fill=124, side_range=(1.0, 1.5))], p=0.3)]
        if augment == "strong":
            steps.append(v2.RandomApply([v2.RandomIoUCrop()], p=0.5))
        steps.append(v2.RandomHorizontalFlip(0.5))
    steps += [v2.Resize((image_size, image_size), antialias=True), v2.SanitizeBoundingBoxes(min_size=1.0),
              v2.ToDtype(torch.float32, scale=True)]
    return v2.Compose(steps)


class DetectionDataset(Dataset):
    """`(image, target)` pairs: image (3, S, S) float 0-1; target {"boxes" (n, 4) float32 pixel
    x1, y1, x2, y2 on the S×S input, "labels" (n,) int64, "image_id", "orig_size" (height, width)}."""

    def __init__(self, items: Sequence[DetectionItem], image_size: int, train: bool = False,
                 augment: str = "light", transform: Callable | None = None) -> None:
        self.items = list(items)
        self.image_size = int(image_size)
        self.transform = transform or detection_transform(self.image_size, train, augment)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        from torchvision import tv_tensors

        item = self.items[index]
        # decoded near the input size (large photos shrink while decoding), boxes scaled to match
        image = open_rgb(item.image, max_side=self.image_size)
        scale = np.array([image.width / item.width, image.height / item.height] * 2, dtype=np.float32)
        boxes = tv_tensors.BoundingBoxes(torch.from_numpy(item.boxes * scale), format="XYXY",
                                         canvas_size=(image.height, image.width))
        image, target = self.transform(image, {"boxes": boxes, "labels": torch.from_numpy(item.labels)})
        return image.as_subclass(torch.Tensor), {
            "boxes": target["boxes"].as_subclass(torch.Tensor).float().reshape(-1, 4),
            "labels": target["labels"],
            "image_id": index,
            "orig_size": torch.tensor([item.height, item.width]),
        }


def collate_detection(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """A batch: images stacked (all are S×S) and the targets as a list (box counts differ)."""
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def to_original(boxes: torch.Tensor, orig_size: Sequence[int] | torch.Tensor, image_size: int) -> torch.Tensor:
    """Boxes predicted on the S×S input (`image_size`) in the original image's pixels, clipped to it."""
    height, width = (int(v) for v in orig_size)
    scale = torch.tensor([width / image_size, height / image_size] * 2, dtype=boxes.dtype, device=boxes.device)
    out = boxes * scale
    limit = torch.tensor([width, height] * 2, dtype=boxes.dtype, device=boxes.device)
    return torch.minimum(out.clamp(min=0), limit)
