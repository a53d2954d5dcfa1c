"""What a training run shows: one progress bar style on stderr, epochs counted from 1, and none of
Lightning's banners, tips or library deprecation notices (scoped to the run, not process-wide)."""
from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from typing import Iterator

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm, convert_inf

#: Loggers whose INFO lines ("GPU available: False", "💡 Tip: ...", "`Trainer.fit` stopped") are
#: Lightning talking about itself, not about the user's run.
LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")
#: Modules whose deprecation and "possible user" advice warnings are about library internals
#: (`LeafSpec` deprecation, "does not have many workers", "modules in eval mode"), not the user's code.
LIBRARY_MODULES = r"(lightning|pytorch_lightning|lightning_fabric|lightning_utilities|torch|torchmetrics)(\.|$)"


def epoch_label(index: int, max_epochs: int | None) -> str:
    """`Epoch 1/3` for the first of three epochs (Lightning counts from 0: `Epoch 0/2`)."""
    return f"Epoch {index + 1}/{max_epochs}" if max_epochs and max_epochs > 0 else f"Epoch {index + 1}"


class EpochProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar on stderr, where transferkit's feature and prediction bars are, with
    1-based epoch counts."""

    def _bar(self, description: str, position: int, leave: bool, **options) -> Tqdm:
        return Tqdm(desc=description, position=position, disable=self.is_disabled, leave=leave, dynamic_ncols=True,
                    file=sys.stderr, bar_format=self.BAR_FORMAT, **options)

    def init_sanity_tqdm(self) -> Tqdm:
        return self._bar(self.sanity_check_description, 2 * self.process_position, leave=False)

    def init_train_tqdm(self) -> Tqdm:
        return self._bar(self.train_description, 2 * self.process_position, leave=True, smoothing=0)

    def init_validation_tqdm(self) -> Tqdm:
        has_main_bar = self.trainer.state.fn != "validate"
        return self._bar(self.validation_description, 2 * self.process_position + has_main_bar,
                         leave=not has_main_bar)

    def on_train_epoch_start(self, trainer, *args) -> None:
        # Lightning's own version, with our label: calling it first would flash its 0-based one
        if getattr(self, "_leave", False):
            self.train_progress_bar = self.init_train_tqdm()
        self.train_progress_bar.reset(total=convert_inf(self.total_train_batches))
        self.train_progress_bar.initial = 0
        self.train_progress_bar.set_description(epoch_label(trainer.current_epoch, trainer.max_epochs))


@contextlib.contextmanager
def quiet_training() -> Iterator[None]:
    """Silence Lightning's INFO banners and library-internal warnings for the duration of a run.

    Only warnings raised from library modules are filtered, and the filters and logger levels are
    restored afterwards, so the user's own warnings and logging are untouched.
    """
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
                warnings.filterwarnings("ignore", category=category, module=LIBRARY_MODULES)
            try:
                from lightning.fabric.utilities.warnings import PossibleUserWarning

                warnings.filterwarnings("ignore", category=PossibleUserWarning)
            except ImportError:  # older Lightning: no such category
                pass
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
