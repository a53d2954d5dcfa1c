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

import math
from typing import Any

import lightning as L
import torch
from torchmetrics import MeanMetric

from .freezing import freeze_batchnorm_stats
from .lightning_module import Schedule


class OwnLossModule(L.LightningModule):
    """Trains a model whose `forward(x, targets)` returns its losses; logs their sum as `train_loss`
    and each as `train_loss_<name>`; `val_loss` is the same sum on the validation batches."""

    #: set by `lr_finder.lr_range_test` while Lightning's finder sweeps the learning rate
    range_test: bool = False
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

    @property
    def lr(self) -> float:
        return self.schedule.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.schedule = self.schedule.scaled(value)

    def configure_callbacks(self):
        return [self.freezing] if self.freezing is not None else []

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if self.range_test and self.freezing is not None:  # the finder swaps the callbacks for its own
            self.freezing.on_train_batch_start(self.trainer, self, batch, batch_idx)

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer, optimizer_closure=None) -> None:
        if not self.range_test:
            return super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        # as `TransferModule`: the finder's one swept LR is the top group's, the others keep their ratio
        swept = [group["lr"] for group in optimizer.param_groups]
        for group, ratio in zip(optimizer.param_groups, self.lr_ratios):
            group["lr"] = group["lr"] * ratio
        try:
            optimizer.step(closure=optimizer_closure)
        finally:
            for group, lr in zip(optimizer.param_groups, swept):
                group["lr"] = lr

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

    def configure_optimizers(self):
        s = self.schedule
        backbone = {id(p) for group in self.layer_groups for p in group}
        new = [p for p in self.model.parameters() if id(p) not in backbone]
        param_groups, max_lrs = [], []
        for params, lr in [*zip(self.layer_groups, s.group_lrs), (new, s.head_lr)]:
            for subset, wd in (([p for p in params if p.ndim > 1], s.weight_decay),
                               ([p for p in params if p.ndim <= 1], 0.0)):
                if subset:
                    param_groups.append({"params": subset, "lr": lr, "weight_decay": wd})
                    max_lrs.append(lr)
        self.lr_ratios = [lr / s.lr for lr in max_lrs]
        optimizer = torch.optim.AdamW(param_groups)
        total = max(1, s.total_steps)
        warmup = 1.5 / total if total > 1 and math.isclose(s.warmup_fraction * total, 1.0) else s.warmup_fraction
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lrs, total_steps=total,
            pct_start=warmup, anneal_strategy="cos", div_factor=10.0, final_div_factor=100.0,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
