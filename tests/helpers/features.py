"""A counting network and an image data set with a stable transform, for the feature-cache tests
(also imported by the subprocess a killed-run test starts)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from transferkit.data import ImageDataset


class CountingNet(nn.Module):
    """A tiny CNN that counts the images it has really been run on."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.num_features = 8
        self._images = 0  # private: public scalar attributes are part of the cache key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._images += len(x)
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


class Tensorize:
    """Resize and scale to [0, 1]: a transform with a stable repr (and no timm import in subprocesses)."""

    def __init__(self, side: int) -> None:
        self.side = side

    def __call__(self, image) -> torch.Tensor:
        pixels = np.asarray(image.resize((self.side, self.side)), np.float32) / 255
        return torch.from_numpy(pixels).permute(2, 0, 1)

    def __repr__(self) -> str:
        return f"Tensorize({self.side})"


def dataset(paths) -> ImageDataset:
    paths = sorted(paths)
    return ImageDataset(paths, list(range(len(paths))), Tensorize(32), cache_side=32)
