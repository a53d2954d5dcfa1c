"""Saving a fitted task estimator as a run directory and loading it back: config.json, safetensors
weights, history, split, metrics, exemplar memory (no pickle).

`PersistenceMixin` is the part of `TransferEstimator` that does it; a task adds its own config.json
entries through the `_task_config` / `_restore_task` hooks and `config_keys`.
"""
from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Self

import torch

from .. import __version__
from ..backbones.run_dir import restore_preprocessing
from ..errors import RunDirectoryError
from ..models import DEFAULT_HEAD
from ..rundir import (CONFIG_FILE, CONFIG_SCHEMA, HISTORY_FILE, METRICS_FILE, ONNX_FILE, ONNX_INT8_FILE, RUN_FORMAT,
                      SPLIT_FILE, TOKENIZER_DIR, WEIGHTS_FILE, metrics_record, read_config, read_history, read_lineage,
                      read_metrics, read_weights, record_data_location, resolve_data_root, upgrade_weights,
                      write_history, write_text)
from ..strategies import STRATEGIES, Strategy
from .memory import load_memory, save_memory
from .params import COMPUTE_PARAMS


class PersistenceMixin:
    """`config`, `save` and `load` of a task estimator (see `TransferEstimator`)."""

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
    def load(cls, path: str | Path) -> Self:
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
