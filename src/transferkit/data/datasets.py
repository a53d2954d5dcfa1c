"""Torch datasets over image paths, with decoded images cached in memory up to a byte budget."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import DataError
from .images import open_rgb, to_rgb

#: Default budget of the decoded-image cache, in MiB (env TRANSFERKIT_IMAGE_CACHE_MB overrides; 0: off).
IMAGE_CACHE_MB = 1024


def image_cache_bytes() -> int:
    """The decoded-image cache budget in bytes: TRANSFERKIT_IMAGE_CACHE_MB, else `IMAGE_CACHE_MB`."""
    value = os.environ.get("TRANSFERKIT_IMAGE_CACHE_MB", "").strip()
    try:
        mb = float(value) if value else IMAGE_CACHE_MB
    except ValueError:
        mb = float("nan")
    if not 0 <= mb < float("inf"):  # NaN fails too
        raise DataError(f"TRANSFERKIT_IMAGE_CACHE_MB={value!r}: expected the decoded-image cache's size in MiB, a "
                        f"number of at least 0 (0 turns it off; default {IMAGE_CACHE_MB}); fix or unset it.")
    return int(mb * 2**20)


class ImageCache:
    """Decoded images by path, filled until `max_bytes` and then frozen (no eviction).

    Training reads every image once per epoch, a cyclic scan: an LRU smaller than the data then
    evicts each image just before it is needed again and never hits, while a cache that keeps
    what it holds hits on `max_bytes / data size` of the reads. Small data sets fit whole (the
    multi-epoch speed-up); large ones cost at most `max_bytes` of memory whatever their size.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = image_cache_bytes() if max_bytes is None else max(0, int(max_bytes))
        self.bytes = 0
        self._items: dict[Path, Image.Image] = {}
        self._lock = threading.Lock()  # data-loader threads may fill it together

    def __len__(self) -> int:
        return len(self._items)

    def __getstate__(self) -> dict:  # data-loader workers started by spawn get a copy, without the lock
        return {k: v for k, v in vars(self).items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self._lock = threading.Lock()

    def get(self, path: Path) -> Image.Image | None:
        return self._items.get(path)

    def put(self, path: Path, image: Image.Image) -> None:
        size = image.width * image.height * len(image.getbands())
        with self._lock:
            if path in self._items or self.bytes + size > self.max_bytes:
                return
            self._items[path] = image
            self.bytes += size


class ImageDataset(Dataset):
    """(image tensor, label) pairs; decoded images are kept, shrunk near `cache_side`, across epochs.

    Decoding dominates a CPU epoch for small images, so each file is decoded once while the
    shared `ImageCache` has room (`cache_bytes`, default TRANSFERKIT_IMAGE_CACHE_MB = 1 GiB; 0
    turns it off, as one-pass readers such as prediction do). Labels default to -1 for unlabelled
    prediction inputs. Items may also be decoded `PIL.Image.Image`s (e.g. a server's uploads),
    prepared as a file would be and not cached.
    """

    def __init__(
        self,
        paths: Sequence[Path | Image.Image],
        labels: Sequence[int] | None = None,
        transform: Callable | None = None,
        cache_side: int | None = None,
        cache: ImageCache | None = None,
        cache_bytes: int | None = None,
    ) -> None:
        self.paths = [p if isinstance(p, Image.Image) else Path(p) for p in paths]
        self.labels = list(labels) if labels is not None else [-1] * len(self.paths)
        self.transform = transform
        self.cache_side = cache_side
        self._cache = cache if cache is not None else ImageCache(cache_bytes)

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int):
        path = self.paths[index]
        if isinstance(path, Image.Image):  # decoded already (and unhashable: no cache)
            return to_rgb(path, max_side=self.cache_side)
        image = self._cache.get(path)
        if image is None:
            image = open_rgb(path, max_side=self.cache_side)
            self._cache.put(path, image)
        return image

    # ---- what the on-disk feature cache (models.feature_cache) keys an item's features by
    def source_files(self) -> list[Path | None]:
        """The file each item is read from (None for a decoded image given as it is)."""
        return [None if isinstance(p, Image.Image) else p for p in self.paths]

    def preprocessing_key(self) -> str:
        """How a file becomes the tensor the model sees: the decoder's shrink and the transform.
        A transform whose repr holds a memory address (a lambda) gives a key that never repeats:
        such features are cached for no later run, never wrongly reused."""
        import PIL

        return f"pillow={PIL.__version__};cache_side={self.cache_side};transform={self.transform!r}"

    def target(self, index: int) -> int:
        """The label of item `index`, without reading its image."""
        return self.labels[index]

    def with_transform(self, transform: Callable) -> "ImageDataset":
        """The same samples (and shared image cache) under another transform."""
        return ImageDataset(self.paths, self.labels, transform, self.cache_side, self._cache)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.image(index)
        return (self.transform(image) if self.transform else image), self.labels[index]
