"""The training loop of a model that computes its own losses: torchvision's detectors take
`(images, targets)` in training mode and return a dict of losses (classification, box regression,
objectness...), so no head loss is built for them.

`OwnLossModule` is `TransferModule`'s counterpart for such a model: the same discriminative LRs per
backbone layer group (`Schedule`), new layers at the head LR, one-cycle schedule, freezing policy
(`LayerGroupUnfreezing` reads `layer_groups` and `model.backbone`), and the same logged names
(`train_loss`, `val_loss`), so `run_lightning` checkpoints, resumes and early-stops it unchanged.
The model provides `backbone` (the pretrained network), `new_parameters()` and `forward(images,
targets)`, and says so with `computes_losses = True`.
"""
from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torchmetrics import MeanMetric

from .freezing import freeze_batchnorm_stats
from .lightning_module import GroupedLRTraining, Schedule


class OwnLossModule(GroupedLRTraining, L.LightningModule):
    """Trains a model whose `forward(x, targets)` returns its losses; logs their sum as `train_loss`
    and each as `train_loss_<name>`; `val_loss` is the same sum on the validation batches."""

    losses: dict = {}  # no head losses: the model computes its own (read by the strategies' summaries)

    def __init__(self, model: torch.nn.Module, groups: list[list[str]], schedule: Schedule, freezing: Any = None) -> None:
        super().__init__()
        self.model = model
        self.schedule = schedule
        self.freezing = freezing
        params = dict(model.backbone.named_parameters())
        self.layer_groups = [[params[n] for n in names] for names in groups]
        self.trainable_groups = len(groups)
        self.val_mean = MeanMetric()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, targets = batch
        terms = self.model(x, targets)
        total = sum(terms.values())
        size = len(targets)
        self.log("train_loss", total, on_step=False, on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True)
        for name, value in terms.items():
            self.log(f"train_{name}", value, on_step=False, on_epoch=True, batch_size=size, sync_dist=True)
        return total

    def validation_step(self, batch, batch_idx: int) -> None:
        # a torchvision detector gives losses only in training mode: batch-norm statistics stay as they are
        # (every layer's, not only the frozen ones') so validation changes nothing
        x, targets = batch
        self.model.train()
        freeze_batchnorm_stats(self.model.backbone, all_layers=True)
        try:
            total = sum(self.model(x, targets).values())
        finally:
            self.model.eval()
        self.val_mean.update(total.detach(), weight=len(targets))
        self.log("val_loss", self.val_mean, on_epoch=True, prog_bar=True, batch_size=len(targets))

    def _new_parameters(self) -> list:
        backbone = {id(p) for group in self.layer_groups for p in group}
        return [p for p in self.model.parameters() if id(p) not in backbone]
