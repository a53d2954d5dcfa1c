"""What the server predicts with: a run directory (PyTorch) or an exported `.onnx` file (onnxruntime).

Both answer the same calls with the same JSON records (`predict --json`'s), so the app, the
micro-batcher and the page never ask which one they hold.
"""
from __future__ import annotations

import json
import numbers
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from ..errors import TransferkitError
from ..rundir import CONFIG_FILE, REPORT_FILE

#: The input each task's modality reads (`TaskInfo.modality`): how `/predict` parses a request.
MODALITIES = ("image", "text", "timeseries")


class Backend(ABC):
    """A loaded model behind the server: its task, classes and summary, and one batched call."""

    kind: ClassVar[str]  # "torch" | "onnx"
    task: str
    modality: str  # image | text | timeseries
    classes: list[str] | None
    #: Images are decoded with their shorter side shrunk near this (JPEG draft decoding, as the
    #: run's own `predict` reads files), so an upload predicts as the same file would.
    decode_side: int | None = None
    #: The run directory (its report is served at /report), or None for an exported file.
    run_dir: Path | None = None

    @abstractmethod
    def predict(self, items: list, top_k: int) -> list:
        """One result per item, in order: a record {"label", "top_k", ...} per image or text, or
        the forecast (a list of step records) per history CSV path. Runs in a worker thread."""

    @abstractmethod
    def summary(self) -> dict[str, Any]:
        """JSON-ready facts about the model for /info and the page: task, classes, backbone,
        strategy, test metrics (scalars), run name, backend."""

    def warm_up(self) -> None:
        """One prediction on a made-up input, so the first request does not pay for lazy set-up
        (kernels, allocator, tokenizer); forecasts need a CSV of the run's columns and skip it."""
        if self.modality == "image":
            from PIL import Image

            self.predict([Image.new("RGB", (64, 64), (128, 128, 128))], 1)
        elif self.modality == "text":
            self.predict(["warm up"], 1)


def _evaluation(metrics: dict | None, task: str) -> dict[str, Any] | None:
    """How the metrics were measured, for /info: {"kind": "test" or "cross_validation", "n", "folds",
    "label": "cross-validated accuracy (5-fold, n=200)"} (the label names the task's first key
    metric); None for a run never evaluated."""
    from ..rundir import evaluation_of
    from ..tasks.registry import TASKS

    if not metrics:
        return None
    evaluation = evaluation_of(metrics)
    key_metrics = TASKS.entry(task).info.key_metrics
    return {**evaluation.to_json(), "label": evaluation.label(key_metrics[0].label if key_metrics else "metrics")}


def _scalars(metrics: dict | None) -> dict[str, float]:
    """The top-level numeric test metrics (accuracy, macro_f1, loss, n; mse, mae, mase...)."""
    return {k: v for k, v in (metrics or {}).items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}


def _modality(task: str) -> str:
    """The input the task reads (image, text, timeseries); an unknown task raises one line."""
    from ..tasks.registry import TASKS

    return TASKS.entry(task).info.modality


class TorchBackend(Backend):
    """A run directory of `transferkit fit`, loaded with `load_run` (PyTorch)."""

    kind = "torch"

    def __init__(self, run_dir: str | Path) -> None:
        from ..tasks import load_run

        self.run_dir = Path(run_dir).expanduser()
        self.model = load_run(self.run_dir)
        self.task = self.model.task
        self.modality = _modality(self.task)
        self.classes = list(getattr(self.model, "classes_", None) or []) or None
        self.decode_side = getattr(self.model, "image_size_", None)
        self.config = json.loads((self.run_dir / CONFIG_FILE).read_text(encoding="utf-8"))

    def predict(self, items: list, top_k: int) -> list:
        if self.modality == "timeseries":
            return [self.model.prediction_records(path, top_k) for path in items]
        return self.model.prediction_records(items, top_k)

    def summary(self) -> dict[str, Any]:
        config, model = self.config, self.model
        facts = {
            "task": self.task, "modality": self.modality, "run": self.run_dir.resolve().name, "backend": self.kind,
            "classes": self.classes,
            "backbone": (config.get("backbone") or {}).get("name"), "strategy": config["strategy"]["used"],
            "metrics": _scalars(model.metrics_), "estimate": (model.metrics_ or {}).get("estimate"),
            "evaluation": _evaluation(model.metrics_, self.task),
            "created": config.get("created"), "report": (self.run_dir / REPORT_FILE).is_file(),
        }
        if self.modality == "image":
            facts["image_size"] = self.decode_side
        if self.modality == "timeseries":
            facts.update(series=model.channels_, lookback=model.lookback_, horizon=model.horizon_,
                         time_column=model.time_column)
        return facts


class OnnxBackend(Backend):
    """An exported model (`transferkit export`), run by `transferkit.runtime.OnnxPredictor`; a run
    directory's ONNX twin is passed loaded (`predictor`) with its `run_dir` (whose report is served)."""

    kind = "onnx"

    def __init__(self, path: str | Path, predictor: Any = None, run_dir: Path | None = None) -> None:
        self.run_dir = run_dir
        if predictor is not None:
            self.path, self.model = Path(path), predictor
            self._describe()
            return
        try:
            from ..runtime import OnnxPredictor
        except ImportError as exc:  # onnxruntime (or tokenizers) is not installed
            raise TransferkitError(f"{path}: serving an .onnx file needs transferkit's ONNX runtime "
                                   f"(pip install 'transferkit[runtime]'): {exc}") from None
        self.path = Path(path).expanduser()
        try:
            self.model = OnnxPredictor.load(self.path)
        except TransferkitError:
            raise
        except Exception as exc:  # onnxruntime's own errors for a file it cannot read
            raise TransferkitError(f"{self.path}: not a model exported by `transferkit export` ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}); export the run again.") from None
        self._describe()

    def _describe(self) -> None:
        self.task = self.model.task
        self.modality = _modality(self.task)
        self.classes = list(self.model.classes or []) or None
        self.info = dict(self.model.info or {})
        self.decode_side = getattr(self.model, "image_size", None) or self.info.get("image_size")
        # a file exported into its run (RUN/model.onnx) serves that run's report at /report
        if self.run_dir is None:  # a run directory passed by `load_backend` stays, report or not
            beside = self.path.parent
            self.run_dir = beside if (beside / CONFIG_FILE).is_file() and (beside / REPORT_FILE).is_file() else None

    def predict(self, items: list, top_k: int) -> list:
        if self.modality == "timeseries":
            return [self.model.prediction_records(path, top_k) for path in items]
        return self.model.prediction_records(items, top_k)

    def summary(self) -> dict[str, Any]:
        info = self.info
        facts = {
            "task": self.task, "modality": self.modality, "run": info.get("run") or self.path.stem, "backend": self.kind,
            "classes": self.classes,
            "backbone": info.get("backbone"), "strategy": info.get("strategy"), "metrics": _scalars(info.get("metrics")),
            "estimate": (info.get("metrics") or {}).get("estimate"),
            "evaluation": _evaluation(info.get("metrics"), self.task),
            "report": self.run_dir is not None and (self.run_dir / REPORT_FILE).is_file(),
            "precision": info.get("precision"), "file": self.path.name,
        }
        if self.modality == "image":
            facts["image_size"] = self.decode_side
        if self.modality == "timeseries":  # the export's forecast spec (series, lookback, horizon, time column)
            spec = {**((getattr(self.model, "meta", None) or {}).get("forecast") or {}), **info}
            facts.update({key: spec.get(key) for key in ("series", "lookback", "horizon", "time_column")})
        if info.get("parity") is not None:
            facts["parity"] = info["parity"]
        return facts


def load_backend(source: str | Path, engine: str = "auto") -> Backend:
    """The backend for `source`: a run directory (its ONNX twin when present and valid, else PyTorch;
    `engine` "onnx" or "torch" forces either) or an `.onnx` file (onnxruntime); anything else raises
    one line naming it and what the server takes."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise TransferkitError(f"{path}: not a transferkit run (no {CONFIG_FILE}); pass a run directory of "
                                   "`transferkit fit` or an .onnx file of `transferkit export`.")
        from ..tasks.twin import choose_engine

        choice = choose_engine(path, engine)
        if choice.predictor is not None:
            return OnnxBackend(choice.predictor.path, choice.predictor, run_dir=path)
        return TorchBackend(path)
    if path.is_file() and path.suffix.lower() == ".onnx":
        if engine == "torch":
            raise TransferkitError(f"--engine torch: {path} is an exported model, which runs with onnxruntime only; "
                                   "pass its run directory for PyTorch.")
        return OnnxBackend(path)
    if not path.exists():
        raise TransferkitError(f"{path}: no such run directory or .onnx file; check the path.")
    raise TransferkitError(f"{path}: not a run directory or an .onnx file; pass a run directory of `transferkit fit` "
                           "or a model exported by `transferkit export`.")


__all__ = ["Backend", "MODALITIES", "OnnxBackend", "TorchBackend", "load_backend"]
