"""The one Lightning run every trained strategy goes through: checkpoints, resume, Ctrl-C, best epoch."""
from __future__ import annotations

import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch

from ..errors import TrainingInterrupted
from .base import TrainSettings
from .progress import EpochProgressBar, quiet_training


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
        row = {"epoch": trainer.current_epoch + 1, "train_loss": metrics.get("train_loss")}
        row.update({k: v for k, v in sorted(metrics.items()) if k.startswith("val_")})
        row.update({
            "lr": max(g["lr"] for g in optimizer.param_groups),
            "trainable_groups": getattr(pl_module, "trainable_groups", None),
            "seconds": time.perf_counter() - self._epoch_start,
        })
        self.rows.append(row)


@dataclass
class RunResult:
    """What a Lightning run did: history rows, epochs run, wall time and notes for the report."""

    history: list[dict]
    epochs_run: int
    seconds: float
    notes: list[str] = field(default_factory=list)


@quiet_training()  # no Lightning banners or library warnings, from the CLI or the Python API
def run_lightning(module: L.LightningModule, train_loader, val_loader, epochs: int, settings: TrainSettings,
                  monitor: str | None = "val_loss") -> RunResult:
    """Train `module` with checkpoints in `settings.checkpoint_dir` (a temporary folder without one).

    With validation data, training stops early on `monitor` and the best epoch's weights are
    restored; without (`val_loader` None, e.g. few-shot runs), every epoch runs and the last one is
    kept. `settings.resume` continues from `last.ckpt`. Ctrl-C raises `TrainingInterrupted`
    instead of returning a half-trained model.
    """
    if val_loader is None:
        monitor = None
    scratch = None if settings.checkpoint_dir else tempfile.TemporaryDirectory(prefix="transferkit-")
    checkpoint_dir = Path(settings.checkpoint_dir or scratch.name)
    last = checkpoint_dir / "last.ckpt"
    resuming = bool(settings.resume and last.is_file())
    history = HistoryRecorder()
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=checkpoint_dir, filename="best", monitor=monitor, mode="min", save_last=True,
        save_top_k=1 if monitor else 0, enable_version_counter=False,
    )
    callbacks = [history, checkpoint] + ([EpochProgressBar()] if settings.progress else [])
    if monitor:
        callbacks.append(L.pytorch.callbacks.EarlyStopping(monitor=monitor, patience=settings.patience, mode="min"))
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="auto", devices=1, logger=False, callbacks=callbacks,
        enable_progress_bar=settings.progress, enable_model_summary=False,
        num_sanity_val_steps=0, log_every_n_steps=10, gradient_clip_val=settings.gradient_clip,
        limit_val_batches=1.0 if val_loader is not None else 0,
        max_time={"seconds": settings.max_seconds} if settings.max_seconds else None,
    )
    start = time.perf_counter()
    sigint = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resuming else None)
    except SystemExit:  # Lightning answers Ctrl-C with sys.exit(1)
        if not trainer.interrupted:
            raise
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, sigint)  # Lightning leaves Ctrl-C ignored after an interrupt
    seconds = time.perf_counter() - start
    if trainer.interrupted:  # Lightning swallows Ctrl-C; a half-trained model must not be saved as done
        hint = "; run the same command with --resume to continue" if scratch is None else ""
        raise TrainingInterrupted(f"training interrupted during epoch {trainer.current_epoch + 1}{hint}")
    notes = []
    if monitor and checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
        notes.append(f"weights restored from the epoch with the lowest {monitor.replace('_', ' ')} "
                     f"({float(checkpoint.best_model_score):.4f})")
    if resuming:
        notes.append(f"resumed from checkpoint {last}")
    if scratch is not None:
        scratch.cleanup()
    return RunResult(history.rows, trainer.current_epoch, seconds, notes)
