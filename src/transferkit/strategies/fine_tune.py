"""Fine-tuning strategies: head warm-up, gradual unfreezing, discriminative LRs (and `full`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import TransferkitError
from ..models import TransferModel
from .base import ExtendData, FitData, FitOutcome, Strategy, TrainSettings
from .freezing import GradualUnfreeze, set_trainable


def default_epochs(num_train: int) -> int:
    """About 12k training images seen in total, within 3-15 epochs: enough to converge from a good
    head on small data sets while keeping a CPU run of a few thousand images under ~10 minutes."""
    return int(min(15, max(3, round(12_000 / max(1, num_train)))))


#: Peak LR of the top group when neither --lr nor the lr option is set. Images: 1e-3 diverged on
#: the demo set, 3e-4 did not. Text: transformer encoders forget pretraining above ~1e-4 (BERT's
#: recommended range is 2e-5 to 1e-4; small MiniLM-style models sit at the top of it).
#: Detection: the new layers (10× this) are many and deep (proposals, box head), and AdamW at 1e-3
#: on them is the usual fine-tuning rate of torchvision's detectors with a pretrained body.
DEFAULT_LR = {"image": 3e-4, "text": 1e-4, "timeseries": 1e-3, "detection": 1e-4}


@dataclass
class FineTuneRecipe:
    """Defaults of a fine-tuning recipe; TrainSettings values override `lr` and `epochs`."""

    lr: float | None = None  # None: by modality (DEFAULT_LR)
    head_lr: float | None = None  # None: 10 × lr for a new head on a pretrained body, else 1 × lr
    layer_decay: float = 0.8  # LR ratio between neighbouring groups, lower for earlier layers
    # LP-FT (fit the head as a linear probe first): off by default, since on flowers5 it cost
    # ~110 s and bought nothing (benchmarks/results/flowers5_ablations.json)
    head_warmup: bool = False
    start_groups: int = 3  # groups trainable at epoch 0 (counting from the top)
    unfreeze_epochs: int = 2  # epochs until every group trains
    warmup_fraction: float = 0.15
    freeze_bn_stats: bool = True  # batch-norm layers keep their pretrained running statistics


class FineTuneBase(Strategy):
    Options = FineTuneRecipe
    multi_head = True  # `TransferModule` trains every head of `FitData.objectives` on one backbone pass

    def plan(self, data: FitData, settings: TrainSettings) -> list[tuple[str, str]]:
        lines = super().plan(data, settings)
        if not settings.epochs:
            lines[1] = (f"epochs: up to {default_epochs(len(data.train))}",
                        f"chosen from the data size ({len(data.train)} training examples: about 12,000 seen in "
                        "total, 3-15 epochs)")
        return lines

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        # Lightning is imported here, not at the top, so that loading a saved run never imports it
        import lightning as L

        from .linear_probe import probe
        from .training import run_lightning

        recipe = self.options
        L.seed_everything(settings.seed, workers=True, verbose=False)
        outcome = FitOutcome()
        epochs = settings.epochs or default_epochs(len(data.train))
        last = Path(settings.checkpoint_dir) / "last.ckpt" if settings.checkpoint_dir else None
        resuming = bool(settings.resume and last and last.is_file())

        if recipe.head_warmup and len(data.objectives) > 1:
            raise TransferkitError("head_warmup (LP-FT) fits one head; with several label columns leave it off, or "
                                   "use strategy linear-probe for a probe per head.")
        if recipe.head_warmup and not resuming:
            set_trainable(model.backbone.parameters(), False)
            probe_history, c, timings = probe(model, data, settings, for_fine_tuning=True)
            outcome.timings.update({f"head warm-up: {k}": v for k, v in timings.items()})
            outcome.settings["head_warmup_C"] = c
            outcome.notes.append(f"head initialised by a linear probe (C={c:g}) before fine-tuning (LP-FT)")

        module, named_groups = self._module(model, data, settings, epochs)
        schedule, losses = module.schedule, dict(module.losses)
        run = run_lightning(module, *data.training_loaders(settings), epochs, settings)
        # without pretrained weights nothing is fine-tuned: the stage is named for what it did
        outcome.timings["fine-tuning" if data.pretrained else "training from scratch"] = run.seconds
        outcome.notes.extend(run.notes)
        model.eval()
        set_trainable(model.parameters(), True)
        outcome.history = run.history
        learned = {head: values for head, loss in losses.items() if (values := loss.learned())}
        if learned:  # e.g. uncertainty weighting's log-variance and weight per head
            outcome.settings["learned_loss_weights"] = learned
        outcome.settings.update({
            **asdict(recipe), "lr": self._top_lr(data, settings), "head_lr": schedule.head_lr, "epochs": epochs,
            "epochs_run": run.epochs_run, "group_lrs": schedule.group_lrs,
            "groups": [name for name, _ in named_groups],
            "stopped_early": bool(run.epochs_run < epochs),
        })
        return outcome

    def _module(self, model: TransferModel, data: FitData, settings: TrainSettings, epochs: int):
        """(the `TransferModule` that trains `model`, the backbone's named layer groups): discriminative
        LRs, head LR, one-cycle schedule over `epochs`, losses and the gradual-unfreezing policy."""
        from .. import backbones
        from .finetuning import LayerGroupUnfreezing
        from .lightning_module import Schedule, TransferModule, discriminative_lrs, steps_per_epoch
        from .losses import build_losses

        recipe = self.options
        named_groups = backbones.layer_groups(model.backbone)
        groups = [names for _, names in named_groups]
        lr = self._top_lr(data, settings)
        # a new head on a pretrained body learns 10× faster; a warmed-up head, or a model that is all
        # new (no pretrained weights), learns at the body's rate
        head_lr = recipe.head_lr or (lr if recipe.head_warmup or not data.pretrained else 10 * lr)
        unfreeze = GradualUnfreeze(len(groups), recipe.start_groups, recipe.unfreeze_epochs)
        schedule = Schedule(
            group_lrs=discriminative_lrs(len(groups), lr, recipe.layer_decay),
            head_lr=head_lr, weight_decay=settings.weight_decay,
            total_steps=epochs * steps_per_epoch(len(data.train), settings.batch_size * settings.processes),
            warmup_fraction=recipe.warmup_fraction,
        )
        freezing = LayerGroupUnfreezing(unfreeze, recipe.freeze_bn_stats)
        if getattr(model, "computes_losses", False):  # a detector: its own losses, no head loss to build
            from .own_loss import OwnLossModule

            return OwnLossModule(model, groups, schedule, freezing), named_groups
        losses, weights = build_losses(data, settings)
        module = TransferModule(model, groups, schedule, losses, freezing, weights,
                                unlabelled=data.unlabelled_loader(settings))
        return module, named_groups

    def _top_lr(self, data, settings: TrainSettings) -> float:
        """Peak LR of the top layer group: --lr, else the recipe's, else the modality's default."""
        return settings.lr or self.options.lr or DEFAULT_LR.get(data.modality, 3e-4)

    def training_module(self, model: TransferModel, data: FitData, settings: TrainSettings):
        """The module `fit` trains (its first epoch's layers trainable; with `head_warmup` the head is not
        warmed up first)."""
        return self._module(model, data, settings, settings.epochs or default_epochs(len(data.train)))[0]


    def extend(self, model: TransferModel, data: ExtendData, settings: TrainSettings) -> FitOutcome:
        """By default the fine-tuned backbone stays as it is and the head is refit on the stored exemplar
        features plus the new examples' (as a linear probe grows: `LinearProbe.extend`). With
        `data.train_backbone`, this recipe fine-tunes the whole model on exemplar memory + new data
        with distillation of the old classes' logits, then weight aligning
        (`incremental.extend_by_training`)."""
        from .incremental import extend_by_training
        from .linear_probe import LinearProbe

        if not data.train_backbone:
            return LinearProbe.extend(self, model, data, settings)
        outcome = extend_by_training(self, model, data, settings, self._top_lr(data, settings))
        outcome.settings["backbone_trained"] = True
        return outcome


class FineTune(FineTuneBase):
    """Layer groups unfrozen top-down with lower LRs for earlier layers, head at 10× the LR,
    one-cycle cosine schedule, label smoothing, early stopping on validation loss; with
    `head_warmup`, the head is first fit as a linear probe (LP-FT)."""

    name = "fine-tune"

    @classmethod
    def search_options(cls, trial: Any) -> dict[str, Any]:
        """How deep the backbone starts unfrozen and over how many epochs the rest follows."""
        return {"start_groups": trial.suggest_int("start_groups", 1, 6),
                "unfreeze_epochs": trial.suggest_int("unfreeze_epochs", 0, 4)}


class Full(FineTuneBase):
    """All layers train from the start at a low, uniform learning rate; the head starts random."""

    name = "full"

    @dataclass
    class Options(FineTuneRecipe):
        layer_decay: float = 1.0
        start_groups: int = 10**6
        unfreeze_epochs: int = 0
        warmup_fraction: float = 0.1


class HeadOnly(FineTuneBase):
    """The backbone stays frozen (its batch-norm statistics too); only the new layers train, by
    gradient: a detector's feature adapter, proposals and box head."""

    name = "head-only"
    trains_backbone = False

    @dataclass
    class Options(FineTuneRecipe):
        start_groups: int = 0
        unfreeze_epochs: int = 10**6  # never: no backbone group becomes trainable
