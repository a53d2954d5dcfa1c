"""Freezing policy: helpers that work without a trainer, and a gradual-unfreezing schedule."""
from __future__ import annotations

from typing import Iterable

from torch import nn


def set_trainable(params: Iterable[nn.Parameter], trainable: bool) -> None:
    for p in params:
        p.requires_grad_(trainable)


def freeze_batchnorm_stats(model: nn.Module, all_layers: bool = False) -> None:
    """Put batch-norm layers in eval mode so their running statistics stay put.

    By default only layers whose weights are frozen; with `all_layers`, every one (their scale and
    shift still train). Small data sets give noisy batch statistics, and TF-ported backbones
    update running statistics slowly (momentum 0.01), so normalising with batch statistics in
    training but running ones in evaluation makes validation drift away from training.
    `model.train()` switches every layer back to training mode, so re-apply this after it.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if all_layers or (params and not any(p.requires_grad for p in params)):
                module.eval()


class GradualUnfreeze:
    """Which backbone layer groups train at each epoch: the top `start` groups first, then all.

    Groups are ordered input → output. With `unfreeze_epochs = k`, the number of trainable groups
    grows linearly from `start` at epoch 0 to all groups at epoch k (ULMFiT-style, but several
    groups per epoch because small-data runs last only a few epochs). The head always trains.
    """

    def __init__(self, num_groups: int, start: int = 1, unfreeze_epochs: int = 2) -> None:
        self.num_groups = num_groups
        self.start = max(0, min(start, num_groups))
        self.unfreeze_epochs = max(0, unfreeze_epochs)

    def trainable_groups(self, epoch: int) -> int:
        if self.unfreeze_epochs == 0 or epoch >= self.unfreeze_epochs:
            return self.num_groups
        step = (self.num_groups - self.start) / self.unfreeze_epochs
        return min(self.num_groups, self.start + round(step * epoch))

    def apply(self, groups: list[list[nn.Parameter]], epoch: int) -> int:
        """Set requires_grad for `groups` at `epoch`; returns the number of trainable groups."""
        n = self.trainable_groups(epoch)
        for index, params in enumerate(groups):
            set_trainable(params, index >= len(groups) - n)
        return n
