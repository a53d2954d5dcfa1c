"""The one Lightning run every trained strategy goes through: checkpoints, resume, Ctrl-C, best epoch.

A resumed run reproduces the uninterrupted one: `last.ckpt` is written whole at the end of every
epoch, and holds, besides weights, optimiser and loop state, every random number generator
(`RandomState`), while the data order is a function of (seed, epoch) (`EpochShuffle`).
"""
from __future__ import annotations

import os
import random
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from .._format import counted
from ..errors import TrainingInterrupted
from ..rundir import LAST_CHECKPOINT, read_checkpoint
from .base import TrainSettings
from .distributed import Compute, settings_compute
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
        row.update({k: v for k, v in sorted(metrics.items()) if k.startswith("train_loss_")})  # per head, if several
        row.update({k: v for k, v in sorted(metrics.items()) if k.startswith("val_")})
        row.update({
            "lr": max(g["lr"] for g in optimizer.param_groups),
            "trainable_groups": getattr(pl_module, "trainable_groups", None),
            "seconds": time.perf_counter() - self._epoch_start,
        })
        self.rows.append(row)


def capture_rng() -> dict:
    """The state of every random generator training draws from (python, numpy, torch CPU and CUDA),
    as plain lists and tensors, so a `weights_only` checkpoint load can read it back."""
    version, mt, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "python": [version, list(mt), gauss],
        "numpy": {"key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                  "pos": int(numpy_state["state"]["pos"]), "has_gauss": int(numpy_state["has_gauss"]),
                  "gauss": float(numpy_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Inverse of `capture_rng`."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": n["key"].numpy().astype(np.uint32),
                                                                "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomState(L.Callback):
    """Saves the random generators and the data order's epoch in each checkpoint, and puts them
    back when a resumed run starts, so data order, augmentation and dropout continue exactly where
    the interrupted run left them.

    Both are restored at `on_fit_start`: after Lightning has loaded the checkpoint, and before it
    builds the first training iterator (which already draws a worker seed and prefetches an
    augmented batch, before `set_epoch` and `on_train_epoch_start`).
    """

    def __init__(self, sampler: Any = None) -> None:
        self.sampler = sampler  # the training loader's sampler, if it orders by epoch (`EpochShuffle`)
        self.next_epoch = 0
        self._pending: dict | None = None

    def state_dict(self) -> dict:
        return {"rng": capture_rng(), "next_epoch": self.next_epoch}

    def load_state_dict(self, state: dict) -> None:
        self._pending = state

    def on_fit_start(self, trainer, pl_module) -> None:
        if self._pending is None:
            return
        restore_rng(self._pending["rng"])
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(int(self._pending["next_epoch"]))
        self._pending = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.next_epoch = trainer.current_epoch + 1


class LastEpochCheckpoint(L.pytorch.callbacks.Checkpoint):
    """Writes `last.ckpt` at the end of every training epoch, after validation, early stopping and
    the history have recorded the epoch, so `--resume` continues from the epoch that last ended.

    The file is written aside and renamed into place: a kill while saving leaves the previous
    checkpoint intact. (Lightning's `ModelCheckpoint(save_last=True)` with a monitor writes
    `last.ckpt` only when the monitored value improves.)
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.stopped = False  # early stopping ended the run at this epoch: a resume must not train on

    def state_dict(self) -> dict:
        return {"stopped": self.stopped}

    def load_state_dict(self, state: dict) -> None:
        self.stopped = bool(state.get("stopped", False))

    def on_train_start(self, trainer, pl_module) -> None:
        if self.stopped:
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.stopped = bool(trainer.should_stop)
        partial = self.path.with_name(self.path.name + ".partial")
        trainer.save_checkpoint(partial)
        if trainer.is_global_zero:
            os.replace(partial, self.path)


class _SpeedUp:
    """Speed-ups applied to the trained model for one run: channels_last memory order for
    convolutional networks on a GPU (kept: the weights are the same numbers), and `torch.compile`
    (`Module.compile`: in place, so state-dict keys and checkpoints stay those of the plain model;
    undone after the run)."""

    def __init__(self, model: torch.nn.Module | None, compiled: bool) -> None:
        self.model, self.compiled = model, compiled

    def undo(self) -> None:
        if self.compiled and self.model is not None:
            # the trained model predicts and exports as a plain module (a saved run never compiles)
            self.model._compiled_call_impl = None


def _speed_up(module: L.LightningModule, compute: Compute) -> _SpeedUp:
    model = next((m for m in (getattr(module, "model", None), getattr(module, "backbone", None))
                  if isinstance(m, torch.nn.Module)), None)
    if model is None:
        return _SpeedUp(None, False)
    if compute.channels_last and any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
        module.channels_last = True  # `TransferModule` converts image batches too
    if compute.compile:
        model.compile()
    return _SpeedUp(model, compute.compile)


@dataclass
class RunResult:
    """What a Lightning run did: history rows, epochs run, wall time and notes for the report."""

    history: list[dict]
    epochs_run: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    trainer: dict = field(default_factory=dict)  # what the Trainer ran with: accelerator, devices, strategy, precision


@quiet_training()  # no Lightning banners or library warnings, from the CLI or the Python API
def run_lightning(module: L.LightningModule, train_loader, val_loader, epochs: int, settings: TrainSettings,
                  monitor: str | None = "val_loss") -> RunResult:
    """Train `module` with checkpoints in `settings.checkpoint_dir` (a temporary folder without one).

    With validation data, training stops early on `monitor` and the best epoch's weights are
    restored; without (`val_loader` None, e.g. few-shot runs), every epoch runs and the last one is
    kept. `settings.resume` continues from `last.ckpt` (written every epoch, with the random
    generators), so the resumed history equals the uninterrupted one. Ctrl-C raises
    `TrainingInterrupted` instead of returning a half-trained model. A damaged or foreign
    `last.ckpt` raises one `RunDirectoryError` line; checkpoints load with `weights_only=True`.
    """
    if val_loader is None:
        monitor = None
    scratch = None if settings.checkpoint_dir else tempfile.TemporaryDirectory(prefix="transferkit-")
    checkpoint_dir = Path(settings.checkpoint_dir or scratch.name)
    last = checkpoint_dir / LAST_CHECKPOINT
    resuming = bool(settings.resume and last.is_file())
    if resuming:
        read_checkpoint(last)  # one line for a truncated or pickled file, before Lightning's traceback
    history = HistoryRecorder()
    # a temporary folder cannot be resumed from: no per-epoch checkpoint there
    callbacks = [history] if scratch else [history, RandomState(getattr(train_loader, "sampler", None)),
                                                     LastEpochCheckpoint(last)]
    callbacks += [EpochProgressBar()] if settings.progress else []
    callbacks += list(settings.callbacks)  # e.g. a search trial's pruning reporter
    checkpoint = None
    if monitor:
        checkpoint = L.pytorch.callbacks.ModelCheckpoint(
            dirpath=checkpoint_dir, filename="best", monitor=monitor, mode="min", save_top_k=1,
            enable_version_counter=False,
        )
        callbacks += [checkpoint, L.pytorch.callbacks.EarlyStopping(monitor=monitor, patience=settings.patience,
                                                                    mode="min")]
    compute = settings_compute(settings)
    speed = _speed_up(module, compute)
    trainer = L.Trainer(
        max_epochs=epochs, logger=False, callbacks=callbacks, **compute.trainer_kwargs(),
        # only our checkpoints: Lightning's default one would write into the working directory
        enable_checkpointing=any(isinstance(c, L.pytorch.callbacks.Checkpoint) for c in callbacks),
        default_root_dir=checkpoint_dir,
        enable_progress_bar=settings.progress, enable_model_summary=False,
        num_sanity_val_steps=0, log_every_n_steps=10, gradient_clip_val=settings.gradient_clip,
        limit_val_batches=1.0 if val_loader is not None else 0,
        max_time={"seconds": settings.max_seconds} if settings.max_seconds else None,
    )
    start = time.perf_counter()
    sigint = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resuming else None, weights_only=True)
    except SystemExit:  # Lightning answers Ctrl-C with sys.exit(1)
        if not trainer.interrupted:
            raise
    finally:
        speed.undo()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, sigint)  # Lightning leaves Ctrl-C ignored after an interrupt
    seconds = time.perf_counter() - start
    if trainer.interrupted:  # Lightning swallows Ctrl-C; a half-trained model must not be saved as done
        hint = "; run the same command with --resume to continue" if scratch is None else ""
        raise TrainingInterrupted(f"training interrupted during epoch {trainer.current_epoch + 1}{hint}")
    notes = []
    if checkpoint is not None and checkpoint.best_model_path:
        # rank 0 wrote the best checkpoint (in its folder, maybe on its node only): it reads it and
        # Lightning's strategy hands the weights to the other ranks, so every rank goes on with them
        state = read_checkpoint(checkpoint.best_model_path)["state_dict"] if trainer.is_global_zero else None
        if trainer.world_size > 1:
            state = trainer.strategy.broadcast(state, src=0)
        module.load_state_dict(state)
        notes.append(f"weights restored from the epoch with the lowest {monitor.replace('_', ' ')} "
                     f"({float(checkpoint.best_model_score):.4f})")
    if resuming:
        notes.append(f"resumed from checkpoint {last}")
    timer = next((c for c in trainer.callbacks if isinstance(c, L.pytorch.callbacks.Timer)), None)
    remaining = timer.time_remaining() if timer is not None else None
    if remaining is not None and remaining <= 0 and trainer.current_epoch < epochs:
        notes.append(f"training stopped at its time cap ({settings.max_seconds:g} s) after "
                     f"{counted(trainer.current_epoch, 'epoch')} of {epochs}")
    if scratch is not None:
        scratch.cleanup()
    setup = {"accelerator": type(trainer.accelerator).__name__, "devices": trainer.num_devices,
             "world_size": trainer.world_size, "strategy": type(trainer.strategy).__name__,
             "precision": str(trainer.precision)}
    return RunResult(history.rows, trainer.current_epoch, seconds, notes, setup)
