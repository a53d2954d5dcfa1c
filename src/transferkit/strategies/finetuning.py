"""Freezing policies as Lightning `BaseFinetuning` callbacks, so a strategy passes its policy to the one
`TransferModule` instead of writing its own LightningModule.

A policy has the two hooks of Lightning's callback: `freeze_before_training(pl_module)` (at set-up,
before the optimiser exists) and `finetune_function(pl_module, epoch, optimizer)` (at each epoch's
start). Unlike Lightning's examples, ours never add parameter groups mid-run: `TransferModule` puts
every group in the optimiser from the first step and unfreezing flips `requires_grad` (AdamW skips
parameters without gradients), which keeps one-cycle schedules and resumed checkpoints consistent.
The callback state `BaseFinetuning` saves (the optimiser's groups by parameter name) is restored on
resume; since the groups never change, it restores the same groups.
"""
from __future__ import annotations

from lightning.pytorch.callbacks import BaseFinetuning

from .freezing import GradualUnfreeze, freeze_batchnorm_stats


class LayerGroupUnfreezing(BaseFinetuning):
    """Backbone layer groups (`TransferModule.layer_groups`, input → output) train from the top down
    on the `GradualUnfreeze` schedule; the heads always train. Batch-norm layers keep their running
    statistics: frozen layers always, every layer with `freeze_bn_stats` (their scale and shift
    still train), re-applied before each batch since Lightning sets train mode after validation.

    The number of trainable groups is written to `pl_module.trainable_groups` (a history column).
    """

    def __init__(self, schedule: GradualUnfreeze, freeze_bn_stats: bool = True) -> None:
        super().__init__()
        self.schedule = schedule
        self.freeze_bn_stats = freeze_bn_stats

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.world_size > 1:
            # DDP and FSDP register only the parameters that require gradients when they wrap the model,
            # after this hook: every group stays trainable until then (or a layer unfrozen later would
            # never be synchronised), and the first epoch's `finetune_function`, before any batch,
            # freezes what the schedule says
            for params in pl_module.layer_groups:
                for param in params:
                    param.requires_grad_(True)
            return
        super().setup(trainer, pl_module, stage)

    def freeze_before_training(self, pl_module) -> None:
        pl_module.trainable_groups = self.schedule.apply(pl_module.layer_groups, 0)

    def finetune_function(self, pl_module, epoch: int, optimizer) -> None:
        pl_module.trainable_groups = self.schedule.apply(pl_module.layer_groups, epoch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        freeze_batchnorm_stats(pl_module.model.backbone, all_layers=self.freeze_bn_stats)
