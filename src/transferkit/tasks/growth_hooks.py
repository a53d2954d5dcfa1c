"""The hooks that let a classifier grow: `extend` and what a classification task supplies to it
(`GrowthMixin`, part of `ClassifierBase`), and the exemplar memory a fit keeps for it.

`growth.extend` does the work; a task implements the hooks below for its kind of data.
"""
from __future__ import annotations

import time
from typing import Any, Self

import numpy as np

from ..errors import TransferkitError
from ..strategies import STRATEGIES, TrainSettings
from .memory import build_memory


class GrowthMixin:
    """`extend` and its hooks (see `ClassifierBase`): a classification task implements the hooks for
    its data; the strategy that trained the model does the growing."""

    def extend(self, data: Any, compare: bool = False, train_backbone: bool = False) -> Self:
        """Add the classes found in `data` (labelled like `fit`'s data) to this fitted classifier without
        forgetting the old ones; examples of old classes in `data` are learned too. The strategy that
        trained the model grows it: a prototype head gets new centroids (old ones unchanged); otherwise
        the head is refit on the stored exemplar features plus the new ones, the backbone unchanged.
        `train_backbone` (fine-tuned runs) trains the whole model instead, on exemplar memory + new
        data with distillation of the old classes' logits and weight aligning. With `compare`, also
        measures naive fine-tuning on the new data alone and retraining on all data. The step
        (old-class accuracy before/after, forgetting, new-class accuracy) is appended to `lineage_`;
        returns self."""
        from .growth import extend, extension_decisions

        step = extend(self, data, compare=compare, train_backbone=train_backbone)
        self.decisions_ = extension_decisions(step, self.strategy_)  # the parent's are in the parent's report
        return self

    def _adapt(self, strategy, model, fit_data, settings, started, loaded):
        """Training as `TransferEstimator._adapt` does it, then the exemplar memory `extend` replays."""
        outcome = super()._adapt(strategy, model, fit_data, settings, started, loaded)
        self.lineage_ = []
        self.memory_ = None
        if self.memory and self.strategy_ in STRATEGIES and not self._multi_head():  # extend grows one head
            start = time.perf_counter()
            plain = fit_data.train_plain
            refs, labels = self._dataset_refs(plain), list(plain.labels)
            features = outcome.features[0] if outcome.features is not None else None
            if features is not None and len(fit_data.val):  # a frozen backbone: validation examples join
                from ..models.features import extract_features

                val_x, _ = extract_features(model.backbone, fit_data.val, batch_size=64, hflip=settings.tta,
                                            progress=False, collate_fn=fit_data.collate_fn)
                refs, labels = refs + self._dataset_refs(fit_data.val), labels + list(fit_data.val.labels)
                features = np.concatenate([features, val_x])
            self.memory_ = build_memory(self, refs, labels, features)
            self.timings_["exemplar memory"] = time.perf_counter() - start
            self.timings_["total fit"] += self.timings_["exemplar memory"]
        return outcome

    def _read_extension(self, data: Any) -> tuple[list[str], dict[str, tuple[list, list[str]]]]:
        """New labelled data for `extend`, read and split like `fit`'s: (its class names, split name →
        (references, class names))."""
        raise TransferkitError(f"{self.task} cannot be extended to new classes.")

    def _examples(self, refs: list, labels: list[int], augment: bool):
        """A dataset of `(input, label)` items for references (image paths, texts); `augment` applies the
        training augmentation."""
        raise NotImplementedError

    def _collate(self):
        """The collation of this task's batches (None: the default)."""
        return None

    def _refs(self, samples) -> list:
        """References (image paths, texts) of a split of `data_`."""
        raise NotImplementedError

    def _dataset_refs(self, dataset) -> list:
        """References of a dataset made by `_fit_data` (in its order)."""
        raise NotImplementedError

    def _resolve_refs(self, refs: list, root: str | None) -> list:
        """References recorded in split.json made usable (relative image paths joined to the data root)."""
        return refs

    def _existing(self, refs: list, labels: list) -> tuple[list, list]:
        """The references (and their labels) whose inputs still exist."""
        return list(refs), list(labels)

    def _inputs(self, refs: list) -> Any:
        """What `_proba` takes for these references."""
        return refs

    def _data_from_splits(self, classes: list[str], splits: dict[str, tuple[list, list[str]]]) -> Any:
        """The task's data object (as `_load_data` accepts) for given splits and class order."""
        raise NotImplementedError

    def _extension_settings(self) -> TrainSettings:
        """Training settings of an extension: the fit's, without checkpoints (an extension is short)."""
        from dataclasses import replace

        return replace(self._train_settings(None), checkpoint_dir=None, resume=False)
