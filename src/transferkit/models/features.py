"""Frozen-backbone feature extraction, done once and reused by heads and scores."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


def to_device(batch, device: torch.device):
    """Tensors, or dicts of tensors (tokenised text), moved to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@torch.inference_mode()
def extract_features(
    backbone: nn.Module,
    dataset: Dataset,
    batch_size: int = 64,
    hflip: bool = True,
    num_workers: int = 0,
    progress: bool = True,
    description: str = "features",
    collate_fn=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features and labels of `dataset`; with `hflip`, image features are averaged over a flip.
    Items whose targets are dicts (one per head) give labels as a dict head → array.

    Averaging over the flip is test-time augmentation folded into the features, so a linear
    head trained on them predicts exactly what the flip-averaged network predicts.
    """
    from tqdm.auto import tqdm

    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_fn)
    feats, labels = [], []
    for x, y in tqdm(loader, desc=description, disable=not progress, leave=False):
        x = to_device(x, device)
        f = backbone(x)
        if hflip and isinstance(x, torch.Tensor) and x.ndim == 4:
            f = (f + backbone(torch.flip(x, dims=[3]))) / 2
        feats.append(f.float().cpu())
        labels.append({k: torch.as_tensor(v) for k, v in y.items()} if isinstance(y, dict) else torch.as_tensor(y))
    backbone.train(was_training)
    if not feats:  # an empty split (few-shot runs have no validation set)
        return np.zeros((0, int(getattr(backbone, "num_features", 0))), np.float32), np.zeros(0, np.int64)
    if isinstance(labels[0], dict):
        return torch.cat(feats).numpy(), {k: torch.cat([y[k] for y in labels]).numpy() for k in labels[0]}
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()
