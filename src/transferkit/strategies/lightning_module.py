"""The one training loop: a LightningModule over a TransferModel with discriminative LRs and unfreezing."""
from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F

from ..models import TransferModel
from .freezing import GradualUnfreeze, freeze_batchnorm_stats


@dataclass
class Schedule:
    """Optimiser and learning-rate schedule of one fine-tuning run."""

    group_lrs: list[float]  # peak LR per backbone group, input → output
    head_lr: float
    weight_decay: float
    total_steps: int
    warmup_fraction: float = 0.15
    label_smoothing: float = 0.1
    freeze_bn_stats: bool = True  # keep every batch-norm layer on its pretrained running statistics


class TransferModule(L.LightningModule):
    """Trains `model` on its objective; backbone groups get their own LRs and unfreeze on a schedule.

    The objective is "classification" (cross-entropy with label smoothing, validation accuracy)
    or "regression" (mean squared error, validation MAE), so every task shares this one loop.

    Every group is in the optimiser from the first step, frozen ones with `requires_grad=False`
    (AdamW skips parameters without gradients). Unfreezing flips the flag instead of adding
    parameter groups mid-run, which keeps one-cycle schedules and resumed checkpoints consistent.
    """

    def __init__(
        self,
        model: TransferModel,
        groups: list[list[str]],
        schedule: Schedule,
        unfreeze: GradualUnfreeze,
        num_classes: int = 0,
        objective: str = "classification",
    ) -> None:
        super().__init__()
        from torchmetrics import MeanAbsoluteError
        from torchmetrics.classification import MulticlassAccuracy

        if objective not in ("classification", "regression"):
            raise ValueError(f"objective {objective!r}: use classification or regression")
        self.model = model
        self.schedule = schedule
        self.unfreeze = unfreeze
        self.objective = objective
        params = dict(model.backbone.named_parameters())
        self._groups = [[params[n] for n in names] for names in groups]
        if objective == "classification":
            self.val_metric_name = "val_accuracy"
            self.val_metric = MulticlassAccuracy(num_classes=num_classes, average="micro")
        else:
            self.val_metric_name = "val_mae"
            self.val_metric = MeanAbsoluteError()
        self.trainable_groups = unfreeze.num_groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def on_train_epoch_start(self) -> None:
        self.trainable_groups = self.unfreeze.apply(self._groups, self.current_epoch)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Lightning puts the module back in train mode after each validation run
        freeze_batchnorm_stats(self.model.backbone, all_layers=self.schedule.freeze_bn_stats)

    def _loss(self, output: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
        if self.objective == "regression":
            return F.mse_loss(output, y)
        return F.cross_entropy(output, y, label_smoothing=smoothing)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self._loss(self(x), y, self.schedule.label_smoothing)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        output = self(x)
        self.val_metric.update(output, y)
        self.log("val_loss", self._loss(output, y), on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log(self.val_metric_name, self.val_metric, on_epoch=True, prog_bar=True, batch_size=len(y))

    def configure_optimizers(self):
        s = self.schedule
        param_groups, max_lrs = [], []
        for params, lr in [*zip(self._groups, s.group_lrs), (list(self.model.head.parameters()), s.head_lr)]:
            # no weight decay on biases and norm scales, as in timm's param_groups_weight_decay
            for subset, wd in (([p for p in params if p.ndim > 1], s.weight_decay),
                               ([p for p in params if p.ndim <= 1], 0.0)):
                if subset:
                    param_groups.append({"params": subset, "lr": lr, "weight_decay": wd})
                    max_lrs.append(lr)
        optimizer = torch.optim.AdamW(param_groups)
        total = max(1, s.total_steps)
        # OneCycleLR divides by (warm-up steps - 1): a warm-up of exactly one step (10 steps at 10 %)
        # raises ZeroDivisionError, so such a warm-up is lengthened by half a step
        warmup = 1.5 / total if total > 1 and math.isclose(s.warmup_fraction * total, 1.0) else s.warmup_fraction
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lrs, total_steps=total,
            pct_start=warmup, anneal_strategy="cos", div_factor=10.0, final_div_factor=100.0,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def discriminative_lrs(num_groups: int, top_lr: float, decay: float) -> list[float]:
    """Peak LR per group, input → output: the top group gets `top_lr`, each one below `decay` times less."""
    return [top_lr * decay ** (num_groups - 1 - i) for i in range(num_groups)]


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    return max(1, math.ceil(num_samples / batch_size))
