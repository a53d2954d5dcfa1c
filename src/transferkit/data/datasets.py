"""Torch datasets over image paths, with decoded images cached in memory."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from .images import open_rgb, to_rgb


class ImageDataset(Dataset):
    """(image tensor, label) pairs; decoded images are kept, shrunk near `cache_side`, across epochs.

    Decoding dominates a CPU epoch for small images, so each file is decoded once. Labels default
    to -1 for unlabelled prediction inputs. Items may also be decoded `PIL.Image.Image`s (e.g. a
    server's uploads), prepared as a file would be and not cached.
    """

    def __init__(
        self,
        paths: Sequence[Path | Image.Image],
        labels: Sequence[int] | None = None,
        transform: Callable | None = None,
        cache_side: int | None = None,
        cache: dict | None = None,
    ) -> None:
        self.paths = [p if isinstance(p, Image.Image) else Path(p) for p in paths]
        self.labels = list(labels) if labels is not None else [-1] * len(self.paths)
        self.transform = transform
        self.cache_side = cache_side
        self._cache = cache if cache is not None else {}

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int):
        path = self.paths[index]
        if isinstance(path, Image.Image):  # decoded already (and unhashable: no cache)
            return to_rgb(path, max_side=self.cache_side)
        image = self._cache.get(path)
        if image is None:
            image = open_rgb(path, max_side=self.cache_side)
            self._cache[path] = image
        return image

    def with_transform(self, transform: Callable) -> "ImageDataset":
        """The same samples (and shared image cache) under another transform."""
        return ImageDataset(self.paths, self.labels, transform, self.cache_side, self._cache)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.image(index)
        return (self.transform(image) if self.transform else image), self.labels[index]
