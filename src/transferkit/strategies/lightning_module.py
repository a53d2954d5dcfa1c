"""The training loops: `TransferModule` (a TransferModel's heads on their losses, discriminative LRs, a
freezing policy) and `PairModule` (SetFit's contrastive pairs)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn
from torchmetrics import MeanMetric

from ..models import TransferModel, to_device
from .losses import Loss


@dataclass
class Schedule:
    """Optimiser and learning-rate schedule of one fine-tuning run."""

    group_lrs: list[float]  # peak LR per backbone group, input → output
    head_lr: float
    weight_decay: float
    total_steps: int
    warmup_fraction: float = 0.15

    @property
    def lr(self) -> float:
        """The top backbone group's peak LR (the one `--lr` sets); the head's without backbone groups."""
        return self.group_lrs[-1] if self.group_lrs else self.head_lr

    def ratios(self) -> list[float]:
        """Each group's LR, then the head's, divided by `lr`."""
        return [value / self.lr for value in (*self.group_lrs, self.head_lr)]

    def scaled(self, lr: float) -> "Schedule":
        """The same schedule with top LR `lr`: every group and the head keep their ratio to it."""
        from dataclasses import replace

        factor = lr / self.lr
        return replace(self, group_lrs=[value * factor for value in self.group_lrs], head_lr=self.head_lr * factor)


class GroupedLRTraining:
    """What every training module of a pretrained backbone shares: one optimiser parameter group per
    backbone layer group at its discriminative LR plus the new layers at the head LR (no weight decay
    on biases and norm scales), one-cycle schedule, the freezing policy as a callback, and `lr` as
    the top group's LR for Lightning's range test. Mixed into a `LightningModule` that sets
    `schedule`, `freezing` and `layer_groups`, and returns its new parameters from `_new_parameters`."""

    #: set by `lr_finder.lr_range_test` while Lightning's finder sweeps the learning rate
    range_test: bool = False

    @property
    def lr(self) -> float:
        return self.schedule.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.schedule = self.schedule.scaled(value)

    def configure_callbacks(self):
        return [self.freezing] if self.freezing is not None else []

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if self.range_test and self.freezing is not None:
            # Lightning's finder swaps every callback for its own: the freezing policy's per-batch
            # step (batch-norm statistics) is applied here, so the test trains as a real run does
            self.freezing.on_train_batch_start(self.trainer, self, batch, batch_idx)

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer, optimizer_closure=None) -> None:
        if not self.range_test:
            return super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        # the finder sets one swept LR on every group: it is the top group's, the others keep their ratio
        swept = [group["lr"] for group in optimizer.param_groups]
        for group, ratio in zip(optimizer.param_groups, self.lr_ratios):
            group["lr"] = group["lr"] * ratio
        try:
            optimizer.step(closure=optimizer_closure)
        finally:  # the finder's scheduler computes the next LR from its own base, but leave its value as set
            for group, lr in zip(optimizer.param_groups, swept):
                group["lr"] = lr

    def _new_parameters(self) -> list:
        raise NotImplementedError

    def configure_optimizers(self):
        s = self.schedule
        param_groups, max_lrs = [], []
        for params, lr in [*zip(self.layer_groups, s.group_lrs), (self._new_parameters(), s.head_lr)]:
            # no weight decay on biases and norm scales, as in timm's param_groups_weight_decay
            for subset, wd in (([p for p in params if p.ndim > 1], s.weight_decay),
                               ([p for p in params if p.ndim <= 1], 0.0)):
                if subset:
                    param_groups.append({"params": subset, "lr": lr, "weight_decay": wd})
                    max_lrs.append(lr)
        self.lr_ratios = [lr / s.lr for lr in max_lrs]  # per parameter group, for a range test
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


class TransferModule(GroupedLRTraining, L.LightningModule):
    """Trains `model`'s heads on their losses; backbone groups get their own LRs, a freezing policy
    decides which of them train.

    `losses` maps head names to `Loss` modules (see `losses`: cross-entropy with label smoothing
    and validation accuracy, MSE and validation MAE, or any registered loss); the training loss is
    their sum, weighted by `weights` (default 1). Batches are `(x, y)` with `y` the default head's
    target or a dict head → target. Losses that need unlabelled inputs get the head's outputs on
    batches of `unlabelled` (a loader, cycled through within each epoch); when a loss has
    `views = 2`, the unlabelled items are (strong view, weak view) pairs and the heads' outputs hold
    the weak views' rows, then the strong views'. Logged: `train_loss`
    and `val_loss` (the weighted sums; validation early-stops on `val_loss`), `val_<metric>` of
    the default head, and with several losses each head's `train_loss_<head>`, `val_loss_<head>`
    and `val_<metric>_<head>`.

    `freezing` is a `BaseFinetuning` callback (e.g. `LayerGroupUnfreezing`) that reads
    `layer_groups` (the backbone's parameters in `groups`, input → output). Every group is in the
    optimiser from the first step, frozen ones with `requires_grad=False` (AdamW skips parameters
    without gradients). Unfreezing flips the flag instead of adding parameter groups mid-run, which
    keeps one-cycle schedules and resumed checkpoints consistent.

    `lr` is the schedule's top group LR, the attribute Lightning's `Tuner.lr_find` reads and sets:
    setting it scales every group and the head together. During a range test (`range_test` True,
    see `lr_finder`) the finder's one LR for all parameter groups is taken as the top group's, and
    each group trains at its ratio to it, as in a real run.
    """

    def __init__(
        self,
        model: TransferModel,
        groups: list[list[str]],
        schedule: Schedule,
        losses: Mapping[str, Loss],
        freezing: Callback | None = None,
        weights: Mapping[str, float] | None = None,
        unlabelled: Any = None,
    ) -> None:
        super().__init__()
        unknown = sorted(set(losses) - set(model.heads))
        if not losses or unknown:
            raise ValueError(f"losses for heads {unknown or '(none)'}: the model's heads are {sorted(model.heads)}")
        if unlabelled is None and any(loss.unlabelled for loss in losses.values()):
            raise ValueError("a loss needs unlabelled inputs (FitData.unlabelled), but there are none")
        self.model = model
        self.schedule = schedule
        self.losses = nn.ModuleDict(dict(losses))
        self.loss_weights = {head: float((weights or {}).get(head, 1.0)) for head in losses}
        self.freezing = freezing
        self.unlabelled_loader = unlabelled if any(loss.unlabelled for loss in losses.values()) else None
        self._unlabelled_batches = None
        # a loss that reads two views of each unlabelled input (FixMatch) gets the outputs of both
        self._two_views = any(getattr(loss, "views", 1) == 2 for loss in losses.values())
        params = dict(model.backbone.named_parameters())
        self.layer_groups = [[params[n] for n in names] for names in groups]
        self.trainable_groups = len(groups)  # the freezing policy updates it (a history column)
        metrics = {head: loss.new_metric() for head, loss in losses.items()}
        self.val_metrics = nn.ModuleDict({head: m for head, m in metrics.items() if m is not None})
        self._split = len(losses) > 1  # per-head names are logged besides the sums
        self.channels_last = False  # set by `run_lightning` on a GPU: image batches in NHWC order
        # epoch means of the validation losses (`_log_mean`)
        means = ["val_loss", *([f"val_loss_{head}" for head in losses] if self._split else [])]
        self.val_means = nn.ModuleDict({name: MeanMetric() for name in means})

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        if self.channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _outputs(self, x) -> dict[str, torch.Tensor]:
        """Outputs of the heads that have a loss, on one pass of the backbone."""
        if set(self.losses) == {self.model.default_head}:
            return {self.model.default_head: self.model(x)}  # the model's own forward (e.g. RevIN around it)
        return {head: out for head, out in self.model.forward_heads(x).items() if head in self.losses}

    def _targets(self, y) -> dict[str, torch.Tensor]:
        return dict(y) if isinstance(y, Mapping) else {self.model.default_head: y}

    def _metric_name(self, head: str) -> str:
        name = f"val_{self.losses[head].metric}"
        return name if head == self.model.default_head else f"{name}_{head}"

    def on_train_epoch_start(self) -> None:
        if self.unlabelled_loader is not None:
            self._start_unlabelled()

    def _start_unlabelled(self) -> None:
        # the order of each epoch's unlabelled batches is a function of (seed, epoch), as the
        # labelled ones', so a resumed run draws the same ones
        if hasattr(self.unlabelled_loader.sampler, "set_epoch"):
            self.unlabelled_loader.sampler.set_epoch(self.current_epoch)
        self._unlabelled_batches = iter(self.unlabelled_loader)

    def _next_unlabelled(self):
        try:
            x, other = next(self._unlabelled_batches)
        except StopIteration:  # fewer unlabelled batches than labelled ones: go round again
            self._unlabelled_batches = iter(self.unlabelled_loader)
            x, other = next(self._unlabelled_batches)
        if self._two_views:  # items are (strong view, weak view): the heads see weak then strong, stacked
            x = torch.cat([other, x])
        return to_device(x, self.device)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        targets = self._targets(y)
        outputs = self._outputs(x)
        unlabelled = self._outputs(self._next_unlabelled()) if self.unlabelled_loader is not None else {}
        terms = {}
        for head, loss in self.losses.items():
            target = targets.get(head)
            if loss.labelled and target is None:
                raise ValueError(f"the training batches hold no targets for head {head!r} (got {sorted(targets)})")
            terms[head] = loss(outputs[head], target, unlabelled.get(head) if loss.unlabelled else None)
        total = self._weighted(terms)
        size = _batch_size(targets, x)
        # sync_dist: under several processes the logged epoch values (early stopping, the best checkpoint,
        # the history) are the mean over ranks, the same on every rank; a torchmetrics metric syncs itself
        self.log("train_loss", total, on_step=False, on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True)
        if self._split:
            for head, value in terms.items():
                self.log(f"train_loss_{head}", value, on_step=False, on_epoch=True, batch_size=size, sync_dist=True)
        return total

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        targets = self._targets(y)
        outputs = self._outputs(x)
        size = _batch_size(targets, x)
        terms = {}
        for head, loss in self.losses.items():
            if not loss.labelled or head not in targets:
                continue
            if head in self.val_metrics:
                self.val_metrics[head].update(outputs[head], targets[head])
            terms[head] = loss.validation_loss(outputs[head], targets[head])
        if not terms:
            return
        self._log_mean("val_loss", self._weighted(terms), size, prog_bar=True)
        for head in terms:
            if self._split:
                self._log_mean(f"val_loss_{head}", terms[head], size)
            if head in self.val_metrics:
                self.log(self._metric_name(head), self.val_metrics[head], on_epoch=True, prog_bar=True, batch_size=size)

    def _log_mean(self, name: str, value: torch.Tensor, size: int, prog_bar: bool = False) -> None:
        """Logs the epoch's mean of `value` over examples through a torchmetrics `MeanMetric`: under
        several processes it sums values and weights over the ranks, exact for any shard sizes
        (Lightning's `sync_dist` mean divides the summed batch sizes by the world size in integers)."""
        self.val_means[name].update(value.detach(), weight=size)
        self.log(name, self.val_means[name], on_epoch=True, prog_bar=prog_bar, batch_size=size)

    def _weighted(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        # a weight of 1 multiplies nothing, so one head's loss is logged and minimised bit for bit
        scaled = [value if self.loss_weights[head] == 1.0 else self.loss_weights[head] * value for head, value in terms.items()]
        return sum(scaled[1:], scaled[0])

    def _new_parameters(self) -> list:
        # every head (and any parameters a loss owns, e.g. a discriminator) trains at the head LR
        return [*self.model.heads.parameters(), *self.losses.parameters()]


def _batch_size(targets: dict[str, torch.Tensor], x) -> int:
    for target in targets.values():
        return len(target)
    return len(x)


def discriminative_lrs(num_groups: int, top_lr: float, decay: float) -> list[float]:
    """Peak LR per group, input → output: the top group gets `top_lr`, each one below `decay` times less."""
    return [top_lr * decay ** (num_groups - 1 - i) for i in range(num_groups)]


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    return max(1, math.ceil(num_samples / batch_size))


class PairModule(L.LightningModule):
    """Cosine-similarity loss on embedding pairs (sentence-transformers' CosineSimilarityLoss)."""

    def __init__(self, backbone: torch.nn.Module, lr: float, total_steps: int, warmup_fraction: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.lr, self.total_steps, self.warmup_fraction = lr, total_steps, warmup_fraction

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        (a, b), target = batch
        similarity = F.cosine_similarity(self.backbone(a), self.backbone(b))
        loss = F.mse_loss(similarity, target)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(target),
                 sync_dist=True)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.backbone.parameters(), lr=self.lr, weight_decay=0.01)
        warmup = max(1, int(self.warmup_fraction * self.total_steps))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, max(0.0, (self.total_steps - step) / (self.total_steps - warmup + 1))))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
