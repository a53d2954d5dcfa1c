"""What every strategy receives and returns (the registry is in `registry`, re-exported here)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from ..errors import TransferkitError, UnknownNameError
from ..models import DEFAULT_HEAD, TransferModel
from ..rundir import check_tensor_shapes
from .registry import STRATEGIES, create_strategy, register_strategy  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from .losses import Objective
    from .summary import StrategySummary


@dataclass
class TrainSettings:
    """Knobs shared by all strategies; `None` means the strategy's own default (recorded in the run)."""

    epochs: int | None = None
    batch_size: int = 32
    lr: float | None = None  # peak learning rate of the top backbone group
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    gradient_clip: float = 1.0  # max gradient norm: one bad batch must not wreck pretrained weights
    patience: int = 3  # early-stopping patience in epochs, on validation loss
    seed: int = 0
    num_workers: int = 0
    tta: bool = True  # average predictions over a horizontal flip
    checkpoint_dir: Path | None = None
    resume: bool = False
    progress: bool = True
    max_seconds: float | None = None  # wall-time budget of the training loop (from-scratch baselines)
    # distributed training and speed: handed to Lightning's Trainer (`distributed.resolve_compute`)
    devices: int = 1  # processes (GPUs, or CPU processes) per node; batch_size is per process
    num_nodes: int = 1
    accelerator: str = "auto"
    precision: str = "auto"  # "auto": bf16-mixed on GPUs that support it, 16-mixed on older ones, 32 on CPU
    compile: bool = False  # torch.compile the model being trained
    dist_strategy: str = "auto"  # "auto": DDP for several processes; "ddp" or "fsdp"

    @property
    def processes(self) -> int:
        """Processes training one model together: an optimiser step sees `processes * batch_size` examples."""
        return self.devices * self.num_nodes
    # search
    callbacks: list = field(default_factory=list)  # extra Lightning callbacks (a search trial's pruning reporter)


class EpochShuffle(DistributedSampler):
    """A random order of `size` indices that is a function of (seed, epoch) alone.

    Lightning calls `set_epoch` before each epoch; without a trainer the epoch advances by one per
    pass. The order depends on no global random state, so a run resumed at epoch k sees the same
    batches as the run that was not interrupted.

    Under several processes (a process group is initialised, by Lightning's DDP or FSDP strategy)
    rank r of W takes items r, r + W, r + 2W... of the epoch's order, padded by its first items to a
    multiple of W as `DistributedSampler` pads: the ranks see disjoint data (but for the padding)
    and the same number of batches, and step k's W batches are together the k-th batch of one
    process with W times the batch size. Being a `DistributedSampler`, Lightning leaves it in place
    (instead of wrapping it in a sampler that would shuffle its order again) and calls its
    `set_epoch`. Rank and world size are read at each pass, since the loader is built before
    Lightning's launcher starts the processes.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        # not DistributedSampler.__init__: it asks an initialised process group for rank and world size
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.shuffle, self.drop_last = True, False

    @property
    def num_replicas(self) -> int:
        import torch.distributed as dist

        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    @property
    def rank(self) -> int:
        import torch.distributed as dist

        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        order = torch.randperm(self.size, generator=generator).tolist()
        world = self.num_replicas
        if world == 1:
            return iter(order)
        order += order[:len(self) * world - self.size]  # every rank gets len(self) items
        return iter(order[self.rank::world])

    def __len__(self) -> int:
        return -(-self.size // self.num_replicas)


class EvaluationShard(EpochShuffle):
    """Indices 0..size-1 in order; under several processes rank r takes r, r + W, r + 2W... without
    padding, so each example is scored once: Lightning sums the logged values and batch sizes over
    the ranks (`sync_dist`) and torchmetrics its counts, which makes validation metrics those of one
    process (a padded `DistributedSampler` would count some examples twice). With fewer examples
    than processes every process scores them all (the sums over ranks are then W times one
    process's, their ratio the same), since a process without batches would skip the metrics' sync.

    The ranks may differ by one batch: fine for DDP, whose validation step has no collective; FSDP
    gathers weights in each forward pass, so its runs keep Lightning's padded sampler."""

    def _indices(self) -> range:
        world = self.num_replicas
        return range(self.size) if self.size < world else range(self.rank, self.size, world)

    def __iter__(self):
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())


#: The loss of the default head for each `FitData.objective`, when `objectives` is not given.
DEFAULT_LOSSES = {"classification": "cross-entropy", "regression": "mse"}
#: The `FitData.objective` of a model that computes its own losses from its targets (a detector:
#: `strategies.own_loss`): no head loss is built.
OWN_LOSSES = "own"


@dataclass
class FitData:
    """Datasets a strategy trains on: augmented train, un-augmented train (for features), validation,
    and optionally unlabelled inputs.

    Items of `train`, `train_plain` and `val` are `(x, y)` pairs: `y` is the target of the default
    head (a class index, a regression target), or a dict head name → target when the model trains
    several heads. `objectives` says how each head is trained: head name → registered loss name
    (`losses.LOSSES`) or `losses.Objective` (loss, weight, options); when empty it is derived from
    `objective`, which is "classification" (cross-entropy, `num_classes` outputs) or "regression"
    (MSE). `unlabelled` holds inputs without labels (e.g. target-domain images for domain
    adaptation or self-training): its items are `(x, ignored)` pairs like the labelled splits', so
    the same dataset classes and `collate_fn` serve both; only `x` is used. `target_eval` holds
    labelled examples of that target domain, used only to report accuracy (never to train or choose).
    `unlabelled_views` are a weakly and a strongly augmented version of `unlabelled` (same order),
    for self-training as FixMatch does it (None where the task has no augmentation, e.g. text).

    `collate_fn` batches items the default collation cannot (texts → padded token ids).
    `labels` are the training class indices when known (used by `auto` and few-shot strategies).
    `pretrained` is False for a backbone without pretrained weights (it must learn everything,
    batch-norm statistics included). `folds` > 0 means the data are too few to hold out: `train`
    holds every labelled example, `val` is empty, and a strategy that supports it estimates its
    accuracy by `folds`-fold stratified cross-validation (returned in `FitOutcome.estimate`).
    """

    train: Dataset
    train_plain: Dataset
    val: Dataset
    num_classes: int = 0
    collate_fn: Callable | None = None
    objective: str = "classification"
    modality: str = "image"
    pretrained: bool = True
    folds: int = 0
    unlabelled: Dataset | None = None
    target_eval: Dataset | None = None
    unlabelled_views: "tuple[Dataset, Dataset] | None" = None
    objectives: dict[str, "str | Objective"] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.objectives and self.objective != OWN_LOSSES:
            if self.objective not in DEFAULT_LOSSES:
                raise ValueError(f"objective {self.objective!r}: use {' or '.join(DEFAULT_LOSSES)}, "
                                 "or name each head's loss in `objectives`")
            self.objectives = {DEFAULT_HEAD: DEFAULT_LOSSES[self.objective]}

    @property
    def labels(self) -> list[int]:
        return list(getattr(self.train_plain, "labels", None) or [])

    def loader(self, dataset: Dataset, batch_size: int, shuffle: bool = False, num_workers: int = 0,
               drop_last: bool = False, seed: int = 0, pin_memory: bool = False, sampler: Sampler | None = None):
        """A DataLoader over `dataset` with this data's collation; `shuffle` draws each epoch's
        order from (seed, epoch) (`EpochShuffle`), so resumed runs see the same batches, and several
        processes share each epoch's order; otherwise `sampler` (default: in order)."""
        from torch.utils.data import DataLoader

        if shuffle:
            sampler = EpochShuffle(len(dataset), seed)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                          num_workers=num_workers, persistent_workers=num_workers > 0, drop_last=drop_last,
                          collate_fn=self.collate_fn, pin_memory=pin_memory)

    def training_loaders(self, settings: "TrainSettings"):
        """(shuffled train loader, validation loader or None when nothing was held out)."""
        from .distributed import settings_compute

        compute = settings_compute(settings)
        pin = compute.pin_memory  # page-locked batches copy to a CUDA GPU asynchronously
        # each of W processes takes about 1/W of the items: a last partial batch is dropped as in one process
        share = -(-len(self.train) // settings.processes)
        train = self.loader(self.train, settings.batch_size, shuffle=True, num_workers=settings.num_workers,
                            drop_last=share > settings.batch_size, seed=settings.seed, pin_memory=pin)
        # validation in order; under several processes each scores its share once (`EvaluationShard`)
        val = self.loader(self.val, settings.batch_size, num_workers=settings.num_workers, pin_memory=pin,
                          sampler=None if compute.strategy == "fsdp" else EvaluationShard(len(self.val))) \
            if len(self.val) else None
        return train, val

    def unlabelled_loader(self, settings: "TrainSettings"):
        """A shuffled loader over `unlabelled` (batches of `(x, ignored)`), or None without one.

        Its order is its own function of (seed, epoch) (`EpochShuffle`, seed + 1 so it does not
        mirror the training order), so a resumed run draws the same unlabelled batches.
        """
        if self.unlabelled is None or not len(self.unlabelled):
            return None
        return self.loader(self.unlabelled, settings.batch_size, shuffle=True, num_workers=settings.num_workers,
                           drop_last=len(self.unlabelled) > settings.batch_size, seed=settings.seed + 1)


@dataclass
class FitOutcome:
    """What a strategy did: per-epoch (or per-setting) history, resolved settings and timings.

    `estimate` is set when the strategy estimated accuracy by cross-validation (`FitData.folds`):
    {"method": "5-fold cross-validation", "folds": 5, "proba": out-of-fold probabilities (one row
    per training example), "labels": their labels}.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    estimate: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)  # what needs the user's attention
    #: (features, labels) of `FitData.train_plain` in its order, when the strategy extracted them from
    #: a backbone it left unchanged (the task reuses them for the exemplar memory); from `extend`: of
    #: the new training examples, then the new validation examples
    features: "tuple[Any, Any] | None" = None


@dataclass
class ExtendData:
    """What a strategy's `extend` trains on: the exemplar memory of the old classes followed by the new
    examples, in one labelled set over the grown class list.

    `train` (augmented) and `train_plain` hold the same items in the same order: the first
    `memory_size` are the memory's exemplars (labels < `old_classes`), the rest the new data's
    training examples (any class). `memory_features` are the memory's stored features, computed by
    the backbone as the run saved it (exact while `extend` leaves the backbone as it is), or None.
    `val` is the new data's validation split. `replay`, `distill` and `align` switch the three
    defences off for the naive baseline. `train_backbone` asks a strategy that fine-tunes to train
    the backbone too, not only the head. `calibrate`: `val` will calibrate the grown head afterwards
    (bias correction), so the strategy must not train on it.
    """

    train: Dataset
    train_plain: Dataset
    val: Dataset
    num_classes: int
    old_classes: int
    memory_size: int = 0
    memory_features: np.ndarray | None = None
    collate_fn: Callable | None = None
    modality: str = "image"
    replay: bool = True
    distill: bool = True
    align: bool = True
    train_backbone: bool = False
    calibrate: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(getattr(self.train_plain, "labels", None) or [], dtype=np.int64)

    def fit_data(self, **changes: Any) -> FitData:
        """These data as the `FitData` a strategy's `fit` trains on."""
        fields = dict(train=self.train, train_plain=self.train_plain, val=self.val, num_classes=self.num_classes,
                      collate_fn=self.collate_fn, modality=self.modality)
        return FitData(**{**fields, **changes})


class Strategy(ABC):
    """A way of adapting a pretrained backbone: `fit` trains `model` in place.

    A strategy with tunable knobs declares them as a dataclass in `Options`; `create_strategy`
    checks option names against it, so a typo fails with the list of valid names.
    """

    name: str = ""
    Options: type | None = None
    #: whether `fit` honours `FitData.folds` (cross-validated estimate, model fitted on all data)
    cross_validates: bool = False
    #: whether `fit` trains the backbone: its features of the training examples are then fitted to
    #: them (cleaner than those of unseen inputs), so a run keeps a bounded exemplar memory and a grown
    #: head is recalibrated on held-out examples; a frozen backbone's features are exact for any input
    trains_backbone: bool = True
    #: whether `fit` trains every head named in `FitData.objectives` (multi-task heads), not only the default one
    multi_head: bool = False
    #: the head `fit` fits on frozen features, in words that name no strategy ("logistic", "centroid"),
    #: so a task can build the matching no-transfer control; None for a strategy that trains by gradient
    feature_head: str | None = None
    #: what the validation split or the folds choose for that head, in the decisions' words ("C")
    head_selection: str = ""
    #: the shared training params (`TrainSettings` fields, estimator params) `fit` reads: what a
    #: hyper-parameter search draws for it (a strategy that ignores them is not searched over them)
    searched_params: tuple[str, ...] = ("lr", "epochs", "weight_decay")

    def __init__(self, **options: Any) -> None:
        known = [f.name for f in fields(self.Options)] if self.Options else []
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise UnknownNameError(
                f"unknown option(s) {', '.join(unknown)} for strategy {self.name!r}; "
                f"valid: {', '.join(known) or 'none'}."
            )
        if self.Options:
            check_option_types(self.Options, options, self.name)
        self.options = self.Options(**options) if self.Options else None

    @abstractmethod
    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        ...

    @classmethod
    def search_options(cls, trial: Any) -> dict[str, Any]:
        """This strategy's own options drawn for one search trial from `trial` (an `optuna.Trial`; may
        only suggest); none by default."""
        return {}

    def plan(self, data: FitData, settings: TrainSettings) -> list[tuple[str, str]]:
        """What `fit` will do on `data`, as (decision, why) lines shown before training starts."""
        epochs = (f"epochs: up to {settings.epochs}", "as given") if settings.epochs else \
            ("epochs: chosen from the data size", f"by the {self.name} strategy")
        return [(f"strategy: {self.name}", f"requested with --strategy {self.name}"), epochs]

    def extend(self, model: TransferModel, data: ExtendData, settings: TrainSettings) -> FitOutcome:
        """Grow `model` (trained by this strategy) to `data.num_classes` classes in place, learning the new
        classes from `data` without forgetting the old (see `strategies.incremental`). Strategies
        that can grow their models override this; the others refuse in one line."""
        raise TransferkitError(f"a run of strategy {self.name!r} cannot be extended to new classes; fit with "
                               "--strategy fine-tune, linear-probe or prototypes to extend the run later.")

    def refit_on_features(self, x: np.ndarray, y: np.ndarray, num_classes: int, settings: dict[str, Any],
                          seed: int = 0) -> "Callable[[np.ndarray], np.ndarray] | None":
        """The head this strategy's `extend` fits on frozen features `x, y` (at the run's recorded
        `settings`), as a function from features to class probabilities: what `extend` cross-validates
        to score a grown run whose data are too few to hold out. None (the default): the extension is
        not a refit on fixed features, and the grown run is scored on held-out test examples."""
        return None

    def range_tested(self, data: FitData) -> "Strategy":
        """The strategy whose `training_module` a learning-rate range test sweeps on `data`: itself,
        unless it delegates training to another (`auto`)."""
        return self

    def training_module(self, model: TransferModel, data: FitData, settings: TrainSettings) -> Any:
        """The Lightning module `fit` would train `model` with, untrained, whose `lr` attribute (the top
        layer group's peak LR) scales every LR it uses: what a learning-rate range test sweeps
        (`lr_finder.lr_range_test`). Strategies that train by gradient on one schedule implement it."""
        raise TransferkitError(f"the learning-rate range test covers strategies fine-tune, full and auto (its "
                               f"fine-tuning), not {self.name!r}; pass --strategy fine-tune.")

    @classmethod
    def summarise(cls, settings: dict[str, Any], target: dict | None = None,
                  metrics: dict | None = None) -> "StrategySummary | None":
        """This strategy's own account of a run from its recorded `settings` (config.json's strategy
        settings), the run's target-data summary and test metrics, as plain blocks the CLI and the
        report draw without naming the strategy (`strategies.summary`); None (the default): nothing
        beyond the task's own figures."""
        return None

    # ---- what a run saves and how it is rebuilt (training)
    @classmethod
    def saved_weights(cls, settings: dict[str, Any]) -> str:
        """What `weights_to_save` keeps for a run with these recorded strategy settings, written as
        config.json's "weights": "full" (the whole model, the default) or "adapter" (weights on top
        of a base backbone that `restore` rebuilds by name)."""
        return "full"

    @classmethod
    def weights_to_save(cls, model: TransferModel, settings: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The tensors a run of this strategy writes to model.safetensors (`settings`: the run's
        recorded strategy settings); the whole state dict by default."""
        return model.state_dict()

    @classmethod
    def restore(cls, info: dict[str, Any], settings: dict[str, Any], state: dict[str, torch.Tensor],
                build_model: Callable[[nn.Module, int], TransferModel], run_dir: Path) -> TransferModel:
        """The model of a saved run, filled from `state` (the tensors `weights_to_save` kept).

        `info` is config.json's backbone entry, `settings` the recorded strategy settings, and
        `build_model(body, num_features)` the task's model around a feature extractor. By default
        the architecture is rebuilt from the run's own files and every tensor is loaded.
        """
        from ..backbones.run_dir import build_architecture

        model = build_model(build_architecture(info, run_dir), int(info["num_features"]))
        check_tensor_shapes(model.state_dict(), state, run_dir)
        model.load_state_dict(state, strict=True)
        return model


def strategy_class(name: str) -> type[Strategy]:
    """The class of a run's strategy `name`, whose traits say what it did; `Strategy` (the default
    traits) for a name not registered here (a run saved by a strategy defined elsewhere)."""
    return STRATEGIES.get(name) if name in STRATEGIES else Strategy


def _option_problem(value: Any, hint: Any) -> str | None:
    """Why `value` cannot be an option of type `hint` ("must be a number"), or None."""
    import math
    import types
    import typing

    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and args:
        if value is None:
            return None
        problems = [_option_problem(value, a) for a in args]
        return None if any(p is None for p in problems) else problems[0]
    if hint is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if hint is str:
        return None if isinstance(value, str) else "must be text"
    return None  # a structured option (a tuple, a nested recipe): its own code checks it


def check_option_types(options_class: type, options: dict[str, Any], strategy: str) -> None:
    """Raise one line for a strategy option whose value does not have its declared type (a word
    where a number belongs, NaN or infinity), before the strategy starts any work."""
    import typing

    hints = typing.get_type_hints(options_class)
    for name, value in options.items():
        problem = _option_problem(value, hints.get(name, Any))
        if problem:
            default = next((f.default for f in fields(options_class) if f.name == name), None)
            example = f"; e.g. --option {name}={json_value(default)}" if default is not None and \
                not callable(default) and _option_problem(default, hints.get(name, Any)) is None else ""
            raise TransferkitError(f"--option {name}={json_value(value)}: {problem} (strategy {strategy!r}){example}.")


def json_value(value: Any) -> str:
    """A value as it is written after --option KEY= (JSON for numbers, true/false and null)."""
    import json

    return value if isinstance(value, str) else json.dumps(value)
