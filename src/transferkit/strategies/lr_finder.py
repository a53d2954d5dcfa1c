"""The learning-rate range test (Smith 2017; fastai's `lr_find`): train a few steps while the learning
rate grows exponentially from `min_lr` to `max_lr`, record the smoothed loss, and suggest the LR where
it falls fastest. The sweep is Lightning's `Tuner.lr_find` on the module the strategy would train,
which saves the weights first and restores them afterwards.
"""
from __future__ import annotations

import contextlib
import functools
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import TransferkitError

if TYPE_CHECKING:  # the CLI reads the defaults below without importing torch
    from ..models import TransferModel
    from .base import FitData, Strategy, TrainSettings

#: The sweep's range and length when not given: Lightning's length, a range wide enough for any
#: fine-tuning LR (the loss diverges well before 1 and the sweep stops there).
MIN_LR, MAX_LR, STEPS = 1e-7, 1.0, 100
#: The smoothing of Lightning's finder (`_LRCallback`'s default beta): a running mean over ~50 steps.
BETA = 0.98
#: Fewer steps than this leave the suggestion (a slope over the smoothed losses) mostly noise.
MIN_STEPS = 10


@dataclass
class LRRangeTest:
    """What a learning-rate range test measured.

    `lrs` are the top layer group's LR at each step (the other groups and the head keep their ratio to
    it, as in training); `losses` the training loss after each step, smoothed as Lightning smooths it
    (running mean, β = 0.98, bias-corrected: `unbiased`). `suggestion` is the LR of the steepest
    descent of that loss per decade of LR (`steepest_descent`; None when too few finite points remain),
    `default_lr` the top-group LR the strategy trains with when none is given (or the one given).
    `num_training` is the number of steps asked for; fewer ran (`steps_run`) when the loss diverged
    (Lightning stops above 4× its best smoothed loss, which it underestimates at first: in effect at
    about twice the starting loss).
    """

    lrs: list[float]
    losses: list[float]
    suggestion: float | None
    default_lr: float
    seconds: float
    num_training: int
    min_lr: float
    max_lr: float
    strategy: str
    head_lr_ratio: float  # the head's LR over the top group's (10 for a new head on a pretrained body)

    @property
    def steps_run(self) -> int:
        return len(self.lrs)

    @property
    def stopped_early(self) -> bool:
        return self.steps_run < self.num_training

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields, plus `steps_run` and `stopped_early`; non-finite losses become None."""
        out = asdict(self)
        out["losses"] = [value if math.isfinite(value) else None for value in self.losses]
        return {**out, "steps_run": self.steps_run, "stopped_early": self.stopped_early}


def check_range(min_lr: float, max_lr: float, steps: int) -> None:
    """Refuse a sweep that cannot run before any data are read (one line naming the flags)."""
    if not (math.isfinite(min_lr) and min_lr > 0):
        raise TransferkitError(f"min_lr (--min-lr) {min_lr:g}: the sweep is exponential, so it must be a positive "
                               f"number, e.g. {MIN_LR:g}.")
    if not (math.isfinite(max_lr) and max_lr > min_lr):
        raise TransferkitError(f"max_lr (--max-lr) {max_lr:g} must be above min_lr (--min-lr) {min_lr:g}, e.g. "
                               f"--min-lr {MIN_LR:g} --max-lr {MAX_LR:g}.")
    if steps < MIN_STEPS:
        raise TransferkitError(f"steps (--steps) {steps}: the suggestion needs at least {MIN_STEPS} steps "
                               f"({STEPS} is usual).")


def unbiased(losses: list[float], beta: float = BETA) -> list[float]:
    """Lightning's smoothed losses with the bias correction it means to apply.

    Its finder divides the running mean after step k by 1 - β^(k+1) instead of 1 - β^k (it reads the
    step counter after the step), so the first value is about half the first loss and the curve climbs
    at first for no reason (Lightning-AI/pytorch-lightning#14167). The running mean is recovered
    exactly and divided again, so the first value is the first loss itself.
    """
    return [value * (1 - beta ** (k + 1)) / (1 - beta ** k) for k, value in enumerate(losses, 1)]


def steepest_descent(lrs: list[float], losses: list[float], skip_begin: int = 10, skip_end: int = 1) -> float | None:
    """The LR where the loss falls fastest per decade of LR, between the first `skip_begin` and the last
    `skip_end` points (None with fewer than two finite ones).

    Lightning's rule (`_LRFinder.suggestion`), with the derivative taken against log10(LR), the axis an
    exponential sweep samples evenly: Lightning 2.6 takes it against the LR itself, which divides the
    noise of the first, closely spaced LRs by tiny steps and so suggests the lowest LRs of the sweep
    (Lightning-AI/pytorch-lightning#21141; the open fix #21171 does this).
    """
    import numpy as np

    window = [i for i in range(skip_begin, len(lrs) - skip_end) if math.isfinite(losses[i]) and lrs[i] > 0]
    if len(window) < 2:
        return None
    slopes = np.gradient(np.array([losses[i] for i in window]), np.log10([lrs[i] for i in window]))
    return float(lrs[window[int(np.argmin(slopes))]])


@contextlib.contextmanager
def _finder_bar(show: bool) -> Iterator[None]:
    """Lightning's finder always draws its own tqdm bar ("Finding best initial lr"): off when quiet."""
    from lightning.pytorch.tuner import lr_finder

    original = getattr(lr_finder, "tqdm", None)
    if show or original is None:
        yield
        return
    lr_finder.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        lr_finder.tqdm = original


def lr_range_test(strategy: Strategy, model: TransferModel, data: FitData, settings: TrainSettings,
                  min_lr: float = MIN_LR, max_lr: float = MAX_LR, steps: int = STEPS) -> LRRangeTest:
    """Sweep the learning rate of the module `strategy` would train `model` with (`Strategy.range_tested`,
    `training_module`) over `steps` training batches, exponentially from `min_lr` to `max_lr`, with
    Lightning's `Tuner.lr_find`.

    The layers trainable in the first epoch train (gradual unfreezing is not advanced), at their
    discriminative ratios to the swept top-group LR; no validation runs. `model`'s weights and buffers,
    which parameters are trainable and its train/eval mode are as before afterwards (Lightning restores
    the checkpoint it saves first).
    """
    import lightning as L
    from lightning.pytorch.tuner import Tuner

    from .progress import quiet_training

    check_range(min_lr, max_lr, steps)
    L.seed_everything(settings.seed, workers=True, verbose=False)
    strategy = strategy.range_tested(data)
    module = strategy.training_module(model, data, settings)
    train_loader, _ = data.training_loaders(settings)
    trainable, training = [p.requires_grad for p in model.parameters()], model.training
    start = time.perf_counter()
    module.range_test = True
    try:
        with tempfile.TemporaryDirectory(prefix="transferkit-lr-find-") as scratch, quiet_training(), \
                _finder_bar(settings.progress):
            trainer = L.Trainer(
                # enough epochs for `steps` batches; the finder stops after `steps` (or at divergence)
                max_epochs=math.ceil(steps / max(1, len(train_loader))) + 1, accelerator="auto", devices=1,
                logger=False, enable_checkpointing=False, default_root_dir=scratch, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                gradient_clip_val=settings.gradient_clip,
            )
            finder = Tuner(trainer).lr_find(module, train_dataloaders=train_loader, min_lr=min_lr, max_lr=max_lr,
                                            num_training=steps, update_attr=False)
    finally:
        module.range_test = False
        for param, flag in zip(model.parameters(), trainable):
            param.requires_grad_(flag)
        model.train(training)
    seconds = time.perf_counter() - start
    lrs = [float(v) for v in finder.results["lr"]]
    losses = unbiased(finder.results["loss"])
    # Lightning skips the first 10 of its 100 steps (the smoothed loss is still settling): the same share
    suggestion = steepest_descent(lrs, losses, skip_begin=max(1, min(10, steps // 10)))
    schedule = module.schedule
    return LRRangeTest(lrs=lrs, losses=losses, suggestion=float(suggestion) if suggestion else None,
                       default_lr=schedule.lr, seconds=seconds, num_training=steps, min_lr=min_lr, max_lr=max_lr,
                       strategy=strategy.name or type(strategy).__name__,
                       head_lr_ratio=schedule.head_lr / schedule.lr)
