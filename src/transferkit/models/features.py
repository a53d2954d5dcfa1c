"""Frozen-backbone feature extraction, done once and reused by heads and scores (and across runs:
image features are cached on disk by content hash, see `feature_cache`)."""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

log = logging.getLogger(__name__)


def to_device(batch, device: torch.device):
    """Tensors, or dicts of tensors (tokenised text), moved to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class _CacheView:
    """How the feature cache sees a dataset: each item's file, the preprocessing key and labels
    read without decoding. Datasets opt in by defining `source_files()`, `preprocessing_key()` and
    `target(i)` (`ImageDataset`, `MultiTargetDataset`); a `Subset` of one is seen through."""

    def __init__(self, dataset: Dataset) -> None:
        base, index = dataset, None
        while isinstance(base, Subset):
            index = np.asarray(base.indices) if index is None else np.asarray(base.indices)[index]
            base = base.dataset
        self.base, self.index = base, index
        self.files = [base.source_files()[i] for i in index] if index is not None else list(base.source_files())
        self.preprocessing = base.preprocessing_key()

    @classmethod
    def of(cls, dataset: Dataset) -> "_CacheView | None":
        base = dataset
        while isinstance(base, Subset):
            base = base.dataset
        if not all(hasattr(base, name) for name in ("source_files", "preprocessing_key", "target")):
            return None
        view = cls(dataset)
        return view if view.preprocessing and view.files and all(f is not None for f in view.files) else None

    def targets(self, indices: np.ndarray) -> Any:
        """Labels of `indices` (an array, or a dict head → array)."""
        where = indices if self.index is None else self.index[indices]
        values = [self.base.target(int(i)) for i in where]
        if values and isinstance(values[0], dict):
            return {k: np.asarray([v[k] for v in values]) for k in values[0]}
        return np.asarray(values, dtype=np.int64)


def _labels_np(y) -> Any:
    if isinstance(y, dict):
        return {k: torch.as_tensor(v).numpy() for k, v in y.items()}
    return torch.as_tensor(y).numpy()


@torch.inference_mode()
def iter_features(
    backbone: nn.Module,
    dataset: Dataset,
    batch_size: int = 64,
    hflip: bool = True,
    num_workers: int = 0,
    progress: bool = True,
    description: str = "features",
    collate_fn=None,
    cache: "str | os.PathLike | bool | None" = None,
    stats: dict | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, Any]]:
    """Stream (dataset indices, pooled features, labels) chunk by chunk, in bounded memory.

    Image datasets (those defining `source_files`) are looked up in the on-disk feature cache
    (`cache`: a folder, False for none, None for TRANSFERKIT_CACHE or its default): cached rows come
    first, read memory-mapped shard by shard, then the others are computed in dataset order and
    written to the cache as they come. `stats`, if given, receives {"items", "cached", "computed",
    "seconds_per_item"} (a forward pass per item, measured now or when the rows were cached).
    """
    from .feature_cache import cache_root

    stats = {} if stats is None else stats
    stats.update(items=len(dataset), cached=0, computed=0, seconds_per_item=0.0)
    was_training = backbone.training
    backbone.eval()
    try:
        yield from _features(backbone, dataset, batch_size, hflip, num_workers, progress, description, collate_fn,
                             cache_root(cache), stats)
    finally:
        backbone.train(was_training)


def _features(backbone, dataset, batch_size, hflip, num_workers, progress, description, collate_fn, root, stats):
    from tqdm.auto import tqdm

    from .feature_cache import FeatureStore, FileDigests, model_key

    device = next(backbone.parameters()).device
    view = _CacheView.of(dataset) if root is not None else None
    store = keys = None
    todo = np.arange(len(dataset))
    if view is not None:
        key, describe = model_key(backbone, view.preprocessing, hflip)
        store = FeatureStore(root, key, describe)
        try:
            keys = FileDigests(root).digests(view.files)
        except OSError as exc:  # a file gone or unreadable: the dataset reports it, in its own words
            log.debug("feature cache not used: %s", exc)
            keys = None
    if keys is not None:
        lookup = store.lookup(keys)
        hit = lookup.shard >= 0
        todo = np.flatnonzero(~hit)
        stats["cached"] = int(hit.sum())
        if hit.any():
            stats["seconds_per_item"] = float(_stored_seconds(store) or 0.0)
            for indices, feats in store.read(lookup, np.flatnonzero(hit), chunk=max(batch_size, 1024)):
                yield indices, feats, view.targets(indices)
    if not len(todo):
        return
    subset = dataset if len(todo) == len(dataset) else Subset(dataset, todo.tolist())
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_fn)
    start, done = time.perf_counter(), 0
    for x, y in tqdm(loader, desc=description, disable=not progress, leave=False):
        x = to_device(x, device)
        f = backbone(x)
        if hflip and isinstance(x, torch.Tensor) and x.ndim == 4:
            f = (f + backbone(torch.flip(x, dims=[3]))) / 2
        feats = f.float().cpu().numpy()
        indices = todo[done:done + len(feats)]
        done += len(feats)
        if keys is not None:
            store.add(keys[indices], feats)
        yield indices, feats, _labels_np(y)
    if keys is not None:
        store.flush()
    stats["computed"] = done
    stats["seconds_per_item"] = (time.perf_counter() - start) / max(done, 1)
    if keys is not None and store.written:
        _record_seconds(store, stats["seconds_per_item"])


def _stored_seconds(store) -> float | None:
    try:
        return float((store.dir / "seconds_per_item").read_text())
    except (OSError, ValueError):
        return None


def _record_seconds(store, seconds: float) -> None:
    """The measured forward time per item, kept beside the shards: a run served from the cache
    still plans its training time from the real cost of a forward pass."""
    try:
        (store.dir / "seconds_per_item").write_text(f"{seconds:.6g}")
    except OSError:
        pass


def extract_features(
    backbone: nn.Module,
    dataset: Dataset,
    batch_size: int = 64,
    hflip: bool = True,
    num_workers: int = 0,
    progress: bool = True,
    description: str = "features",
    collate_fn=None,
    cache: "str | os.PathLike | bool | None" = None,
    stats: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features and labels of `dataset`; with `hflip`, image features are averaged over a flip.
    Items whose targets are dicts (one per head) give labels as a dict head → array.

    Averaging over the flip is test-time augmentation folded into the features, so a linear
    head trained on them predicts exactly what the flip-averaged network predicts. Image features
    come from, and go to, the on-disk cache (`iter_features`); the result is one preallocated
    [n, d] array (memory: the features themselves plus one batch).
    """
    n = len(dataset)
    feats = labels = None
    for indices, f, y in iter_features(backbone, dataset, batch_size, hflip, num_workers, progress, description,
                                       collate_fn, cache, stats):
        if feats is None:
            feats = np.empty((n, f.shape[1]), np.float32)
            labels = {k: np.empty(n, v.dtype) for k, v in y.items()} if isinstance(y, dict) else np.empty(n, y.dtype)
        feats[indices] = f
        if isinstance(labels, dict):
            for k in labels:
                labels[k][indices] = y[k]
        else:
            labels[indices] = y
    if feats is None:  # an empty split (few-shot runs have no validation set)
        return np.zeros((0, int(getattr(backbone, "num_features", 0))), np.float32), np.zeros(0, np.int64)
    return feats, labels
