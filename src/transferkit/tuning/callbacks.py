"""The Lightning callback through which a search trial reports its validation metric each epoch."""
from __future__ import annotations

import math

import lightning as L

from .study import Reporter


class EpochReporter(L.Callback):
    """After each validation pass, hands `monitor` (e.g. "val_accuracy") to `reporter`, which raises
    to stop a trial the pruner judges hopeless (Optuna's `TrialPruned`); Lightning re-raises it out of
    `fit`, so the trial ends there. Steps count validation passes across every Lightning run of the
    trial (a strategy may train in stages), so no step is reported twice.

    Does what optuna-integration's `PyTorchLightningPruningCallback` does, without the extra
    package, and for any backend (`Reporter`)."""

    def __init__(self, monitor: str, reporter: Reporter) -> None:
        self.monitor = monitor
        self.reporter = reporter
        self.step = 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:  # this stage validates something else (or nothing)
            return
        value = float(value)
        if not math.isfinite(value):
            return
        self.step += 1
        self.reporter.report(value, self.step)


def pruning_callback(monitor: str, reporter: Reporter) -> EpochReporter:
    """An `EpochReporter` for `TrainSettings.callbacks`."""
    return EpochReporter(monitor, reporter)
