"""Fine-tuning strategies: head warm-up, gradual unfreezing, discriminative LRs (and `full`)."""
from __future__ import annotations

import signal
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from ..errors import TrainingInterrupted
from .base import FitData, FitOutcome, Strategy, TrainSettings, TransferModel, register_strategy
from .freezing import GradualUnfreeze, set_trainable
from .lightning_module import ClassificationModule, Schedule, discriminative_lrs, steps_per_epoch
from .linear_probe import probe


def default_epochs(num_train: int) -> int:
    """About 12k training images seen in total, within 3-15 epochs: enough to converge from a good
    head on small data sets while keeping a CPU run of a few thousand images under ~10 minutes."""
    return int(min(15, max(3, round(12_000 / max(1, num_train)))))


@dataclass
class FineTuneRecipe:
    """Defaults of a fine-tuning recipe; TrainSettings values override `lr` and `epochs`."""

    lr: float = 3e-4
    head_lr: float | None = None  # None: 10 × lr for a new head, 1 × lr after the head warm-up
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

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        from .. import backbones

        recipe = self.options
        L.seed_everything(settings.seed, workers=True, verbose=False)
        outcome = FitOutcome()
        named_groups = backbones.layer_groups(model.backbone)
        groups = [names for _, names in named_groups]
        lr = settings.lr or recipe.lr
        head_lr = recipe.head_lr or (lr if recipe.head_warmup else 10 * lr)
        epochs = settings.epochs or default_epochs(len(data.train))
        scratch = None if settings.checkpoint_dir else tempfile.TemporaryDirectory(prefix="transferkit-")
        checkpoint_dir = Path(settings.checkpoint_dir or scratch.name)
        last = checkpoint_dir / "last.ckpt"
        resuming = bool(settings.resume and last.is_file())

        if recipe.head_warmup and not resuming:
            set_trainable(model.backbone.parameters(), False)
            probe_history, c, timings = probe(model, data, settings, for_fine_tuning=True)
            outcome.timings.update({f"head warm-up: {k}": v for k, v in timings.items()})
            outcome.settings["head_warmup_C"] = c
            outcome.notes.append(f"head initialised by a linear probe (C={c:g}) before fine-tuning (LP-FT)")

        unfreeze = GradualUnfreeze(len(groups), recipe.start_groups, recipe.unfreeze_epochs)
        total_steps = epochs * steps_per_epoch(len(data.train), settings.batch_size)
        schedule = Schedule(
            group_lrs=discriminative_lrs(len(groups), lr, recipe.layer_decay),
            head_lr=head_lr, weight_decay=settings.weight_decay, total_steps=total_steps,
            warmup_fraction=recipe.warmup_fraction, label_smoothing=settings.label_smoothing,
            freeze_bn_stats=recipe.freeze_bn_stats,
        )
        module = ClassificationModule(model, groups, schedule, unfreeze, data.num_classes)
        history = HistoryRecorder()
        callbacks = [
            history,
            L.pytorch.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience, mode="min"),
        ]
        checkpoint = L.pytorch.callbacks.ModelCheckpoint(
            dirpath=checkpoint_dir, filename="best", monitor="val_loss", mode="min", save_last=True,
            save_top_k=1, enable_version_counter=False,
        )
        callbacks.append(checkpoint)
        trainer = L.Trainer(
            max_epochs=epochs, accelerator="auto", devices=1, logger=False, callbacks=callbacks,
            enable_progress_bar=settings.progress, enable_model_summary=False,
            num_sanity_val_steps=0, log_every_n_steps=10, gradient_clip_val=settings.gradient_clip,
        )
        loader_args = dict(batch_size=settings.batch_size, num_workers=settings.num_workers,
                           persistent_workers=settings.num_workers > 0)
        start = time.perf_counter()
        sigint = signal.getsignal(signal.SIGINT)
        try:
            trainer.fit(
                module,
                DataLoader(data.train, shuffle=True, drop_last=len(data.train) > settings.batch_size, **loader_args),
                DataLoader(data.val, shuffle=False, **loader_args),
                ckpt_path=str(last) if resuming else None,
            )
        except SystemExit:  # Lightning answers Ctrl-C with sys.exit(1)
            if not trainer.interrupted:
                raise
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, sigint)  # Lightning leaves Ctrl-C ignored after an interrupt
        outcome.timings["fine-tuning"] = time.perf_counter() - start
        if trainer.interrupted:  # Lightning swallows Ctrl-C; a half-trained model must not be saved as done
            hint = "; run the same command with --resume to continue" if scratch is None else ""
            raise TrainingInterrupted(f"training interrupted during epoch {trainer.current_epoch + 1}{hint}")
        if checkpoint.best_model_path:
            state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
            module.load_state_dict(state)
            outcome.notes.append(f"weights restored from the epoch with the lowest validation loss "
                                 f"({float(checkpoint.best_model_score):.4f})")
        if scratch is not None:
            scratch.cleanup()
        model.eval()
        set_trainable(model.parameters(), True)
        if resuming:
            outcome.notes.append(f"resumed from checkpoint {last}")
        outcome.history = history.rows
        outcome.settings.update({
            **asdict(recipe), "lr": lr, "head_lr": head_lr, "epochs": epochs,
            "epochs_run": trainer.current_epoch, "group_lrs": schedule.group_lrs,
            "groups": [name for name, _ in named_groups],
            "stopped_early": bool(trainer.current_epoch < epochs),
        })
        return outcome


class HistoryRecorder(L.Callback):
    """One row of metrics per epoch (for history.csv and the learning curves).

    Its rows are part of the checkpoint, so a resumed run keeps the history of the interrupted one.
    """

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self._epoch_start = 0.0

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = list(state.get("rows", []))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        optimizer = trainer.optimizers[0]
        row = {
            "epoch": trainer.current_epoch + 1,
            "train_loss": metrics.get("train_loss"),
            "val_loss": metrics.get("val_loss"),
            "val_accuracy": metrics.get("val_accuracy"),
            "lr": max(g["lr"] for g in optimizer.param_groups),
            "trainable_groups": pl_module.trainable_groups,
            "seconds": time.perf_counter() - self._epoch_start,
        }
        self.rows.append(row)


@register_strategy("fine-tune", "gradual unfreezing top-down with discriminative LRs (LP-FT warm-up optional)")
class FineTune(FineTuneBase):
    """Layer groups unfrozen top-down with lower LRs for earlier layers, head at 10× the LR,
    one-cycle cosine schedule, label smoothing, early stopping on validation loss; with
    `head_warmup`, the head is first fit as a linear probe (LP-FT)."""


@register_strategy("full", "every layer trains from the first step at one low learning rate")
class Full(FineTuneBase):
    """All layers train from the start at a low, uniform learning rate; the head starts random."""

    @dataclass
    class Options(FineTuneRecipe):
        lr: float = 3e-4
        layer_decay: float = 1.0
        start_groups: int = 10**6
        unfreeze_epochs: int = 0
        warmup_fraction: float = 0.1
