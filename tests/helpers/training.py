"""A tiny backbone of three layer groups and small labelled tensors, to train strategies on in
seconds (the training contract, domain adaptation and distributed tests)."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from transferkit.models import TransferModel
from transferkit.strategies import FitData, TrainSettings
from transferkit.strategies.finetuning import LayerGroupUnfreezing
from transferkit.strategies.lightning_module import Schedule, TransferModule, steps_per_epoch
from transferkit.strategies.losses import build_losses

FEATURES = 6


def tiny_backbone() -> nn.Module:
    """Three layer groups (input → output), each with a batch-norm layer."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU(),
                         nn.Linear(8, FEATURES), nn.BatchNorm1d(FEATURES))


GROUPS = [["0.weight", "0.bias", "1.weight", "1.bias"], ["3.weight", "3.bias", "4.weight", "4.bias"],
          ["6.weight", "6.bias", "7.weight", "7.bias"]]


def classified(n: int, seed: int = 0, shift: float = 0.0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g) + shift
    return TensorDataset(x, (x[:, 0] > shift).long())


def settings(**kw) -> TrainSettings:
    return TrainSettings(batch_size=8, label_smoothing=0.1, progress=False, **kw)


def module_for(model: TransferModel, data: FitData, s: TrainSettings, epochs: int,
               policy: LayerGroupUnfreezing | None = None) -> TransferModule:
    schedule = Schedule(group_lrs=[1e-2] * len(GROUPS), head_lr=1e-2, weight_decay=0.0,
                        total_steps=epochs * steps_per_epoch(len(data.train), s.batch_size))
    losses, weights = build_losses(data, s)
    return TransferModule(model, GROUPS, schedule, losses, policy, weights, unlabelled=data.unlabelled_loader(s))
