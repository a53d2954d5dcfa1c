"""`ImageClassifier`: a scikit-learn-style estimator over image folders, built on a pretrained backbone."""
from __future__ import annotations

import csv
import json
import logging
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn
from torch.utils.data import DataLoader

from .. import __version__
from ..backbones import DEFAULT_BACKBONE, Backbone, Preprocessing, create_backbone
from ..backbones.run_dir import CONFIG_FILE, WEIGHTS_FILE, build_architecture, is_run_dir
from ..data import ImageDataset, ImageFolderData, eval_transform, load_image_folder, scan_class_folders, train_transform
from ..data.images import IMAGE_EXTENSIONS, is_image_file
from ..errors import DataError, RunDirectoryError, TransferkitError
from ..strategies import FitData, TrainSettings, TransferModel, create_strategy
from .metrics import classification_metrics

log = logging.getLogger(__name__)

TASK = "image-classification"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
SPLIT_FILE = "split.json"


def resolve_image_size(requested: int | None, native: int, median_side: int) -> tuple[int, str]:
    """Input size and the reason: the requested one, else the backbone's native size capped at the
    data's median shorter side (rounded to 32), since upsampling small photos costs compute
    without adding detail."""
    if requested:
        return int(requested), f"{requested} px as requested"
    if median_side and median_side < native:
        size = max(64, int(round(median_side / 32)) * 32)
        return size, (f"{size} px: the images' median shorter side is {median_side} px, below the "
                      f"backbone's native {native} px, and upsampling adds compute, not detail")
    return native, f"{native} px: the backbone's native input size"


class ImageClassifier(BaseEstimator):
    """Image classifier fine-tuned from a pretrained backbone.

    `fit(path)` takes a folder with one sub-folder per class (or train/val/test sub-folders);
    `predict`, `predict_proba` and `evaluate` take image paths or folders. Learned state ends in `_`.
    `strategy_options` sets a strategy's own knobs (e.g. {"layer_decay": 0.7} for fine-tune).
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        strategy: str = "auto",
        strategy_options: dict | None = None,
        epochs: int | None = None,
        image_size: int | None = None,
        batch_size: int = 32,
        lr: float | None = None,
        augment: str = "light",
        tta: bool = True,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        num_workers: int = 0,
        run_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.strategy_options = strategy_options
        self.epochs = epochs
        self.image_size = image_size
        self.batch_size = batch_size
        self.lr = lr
        self.augment = augment
        self.tta = tta
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.num_workers = num_workers
        self.run_dir = run_dir
        self.resume = resume
        self.progress = progress

    # ------------------------------------------------------------------ fit
    def fit(self, data: str | Path | ImageFolderData) -> "ImageClassifier":
        """Split `data`, load the backbone, adapt it with the chosen strategy; returns self."""
        if self.augment not in ("none", "light", "strong"):
            raise TransferkitError(f"augment={self.augment!r}: use one of none, light, strong.")
        strategy = create_strategy(self.strategy, **(self.strategy_options or {}))  # fail before slow work
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        self.data_ = data if isinstance(data, ImageFolderData) else load_image_folder(
            data, self.val_fraction, self.test_fraction, self.seed)
        self.classes_ = list(self.data_.classes)
        loaded = time.perf_counter()
        backbone = create_backbone(self.backbone)
        self.backbone_info_ = backbone.to_config()
        self.preprocessing_ = backbone.preprocessing
        self.image_size_, size_reason = resolve_image_size(
            self.image_size, backbone.preprocessing.image_size, self.data_.median_side)
        model = TransferModel(backbone.model, nn.Linear(backbone.num_features, len(self.classes_)))

        d = self.data_
        plain = eval_transform(backbone.preprocessing, self.image_size_)
        train_plain = ImageDataset(d.train.paths, d.train.labels, plain, cache_side=self.image_size_)
        fit_data = FitData(
            train=train_plain.with_transform(train_transform(backbone.preprocessing, self.image_size_, self.augment)),
            train_plain=train_plain,
            val=ImageDataset(d.val.paths, d.val.labels, plain, cache_side=self.image_size_),
            num_classes=len(self.classes_),
        )
        settings = TrainSettings(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
            num_workers=self.num_workers, tta=self.tta, resume=self.resume, progress=self.progress,
            checkpoint_dir=Path(self.run_dir) / "checkpoints" if self.run_dir else None,
        )
        outcome = strategy.fit(model, fit_data, settings)
        self.model_ = model.eval()
        self.history_ = outcome.history
        self.strategy_ = outcome.settings.get("chosen", self.strategy)
        self.strategy_settings_ = outcome.settings
        self.timings_ = {"data scan": loaded - start, **outcome.timings, "total fit": time.perf_counter() - start}
        self.notes_ = list(outcome.notes)
        if d.skipped:
            self.notes_.insert(0, f"{len(d.skipped)} file(s) skipped (not images or unreadable); see Data")
        self.decisions_ = [
            ("backbone: " + backbone.name, backbone.source),
            (f"strategy: {self.strategy_}", outcome.settings.get("reason", f"requested with --strategy {self.strategy}")),
            (f"input size: {self.image_size_} px", size_reason),
            ("split", d.split["description"]),
            ("test-time augmentation: " + ("flip average" if self.tta else "off"),
             "predictions average the image and its mirror image" if self.tta else "disabled"),
        ]
        self.metrics_ = None
        return self

    # -------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("this ImageClassifier is not fitted yet: call fit(path) or ImageClassifier.load(run_dir)")

    @torch.inference_mode()
    def _proba(self, dataset: ImageDataset) -> np.ndarray:
        from tqdm.auto import tqdm

        self._check_fitted()
        model = self.model_.eval()
        device = next(model.parameters()).device
        out = []
        loader = DataLoader(dataset, batch_size=64, shuffle=False, num_workers=self.num_workers)
        for x, _ in tqdm(loader, desc="predict", disable=not self.progress or len(dataset) < 256, leave=False):
            x = x.to(device)
            logits = model(x)
            if self.tta:
                logits = (logits + model(torch.flip(x, dims=[3]))) / 2
            out.append(torch.softmax(logits.float(), dim=1).cpu())
        if not out:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        return torch.cat(out).numpy()

    def _dataset(self, paths: Sequence[Path], labels: Sequence[int] | None = None) -> ImageDataset:
        return ImageDataset(paths, labels, eval_transform(self.preprocessing_, self.image_size_), self.image_size_)

    def predict_proba(self, paths: Iterable[str | Path]) -> np.ndarray:
        """Class probabilities, one row per image (columns follow `classes_`)."""
        self._check_fitted()
        return self._proba(self._dataset(expand_image_paths(paths)))

    def predict(self, paths: Iterable[str | Path]) -> list[str]:
        """Predicted class name of each image (folders are expanded to the images inside)."""
        proba = self.predict_proba(paths)
        return [self.classes_[i] for i in proba.argmax(1)]

    def evaluate(self, data: str | Path | None = None) -> dict:
        """Metrics on the held-out test split from `fit` (data=None) or on a labelled folder.

        A folder is read as `data/test/<class>/` when it has a test split, else `data/<class>/`.
        """
        self._check_fitted()
        if data is None:
            if not hasattr(self, "data_"):
                raise RuntimeError("no test split to evaluate: this model was loaded; pass a labelled folder")
            samples, skipped = self.data_.test, []
        else:
            root = Path(data).expanduser()
            if (root / "test").is_dir():
                root = root / "test"
            _, samples, skipped, _ = scan_class_folders(root, self.classes_)
            if len(samples) == 0:
                raise DataError(f"{root}: no readable images in class folders named like {self.classes_}.")
        proba = self._proba(self._dataset(samples.paths, samples.labels))
        metrics = classification_metrics(proba, np.asarray(samples.labels), self.classes_)
        metrics["skipped_files"] = len(skipped)
        if data is None:
            self.metrics_ = metrics
        return metrics

    # ------------------------------------------------------------ save/load
    def config(self) -> dict:
        """Everything needed to reload and reproduce this model (written as config.json)."""
        self._check_fitted()
        import lightning
        import timm

        return {
            "transferkit_version": __version__,
            "task": TASK,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "classes": self.classes_,
            "backbone": self.backbone_info_,
            "image_size": self.image_size_,
            "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in self.get_params().items()},
            "strategy": {"requested": self.strategy, "used": self.strategy_, "settings": self.strategy_settings_},
            "split": getattr(self, "data_", None) and self.data_.split,
            "run": {
                "decisions": self.decisions_,
                "data": self.data_.summary() if hasattr(self, "data_") else None,
                "timings": self.timings_,
                "notes": self.notes_,
            },
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "timm": timm.__version__, "lightning": lightning.__version__},
        }

    def save(self, path: str | Path) -> Path:
        """Write model.safetensors, config.json, history.csv, split.json and metrics.json to `path`."""
        from safetensors.torch import save_file

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        save_file(state, str(path / WEIGHTS_FILE), metadata={"task": TASK, "format": "transferkit"})
        (path / CONFIG_FILE).write_text(json.dumps(self.config(), indent=2, default=str))
        write_history(path / HISTORY_FILE, self.history_)
        if hasattr(self, "data_"):
            (path / SPLIT_FILE).write_text(json.dumps(self.data_.split_record(), indent=1))
        if self.metrics_ is not None:
            (path / METRICS_FILE).write_text(json.dumps({"test": self.metrics_}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ImageClassifier":
        """A fitted classifier from a run directory written by `save` (no pickle involved)."""
        from safetensors.torch import load_file

        path = Path(path).expanduser()
        if not is_run_dir(path):
            raise RunDirectoryError(
                f"{path}: not a transferkit run directory (needs {CONFIG_FILE} and {WEIGHTS_FILE}); "
                "pass the --out folder of `transferkit fit`.")
        config = json.loads((path / CONFIG_FILE).read_text())
        if config.get("task") != TASK:
            raise RunDirectoryError(f"{path}: holds a {config.get('task')!r} model, not {TASK}.")
        params = {k: v for k, v in config["params"].items() if k in cls._get_param_names()}
        clf = cls(**params)
        clf.progress = False
        info = config["backbone"]
        classes = config["classes"]
        body = build_architecture(info["architecture"])
        model = TransferModel(body, nn.Linear(int(info["num_features"]), len(classes)))
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE)), strict=True)
        clf.model_ = model.eval()
        clf.classes_ = classes
        clf.backbone_info_ = info
        clf.preprocessing_ = Preprocessing(**info["preprocessing"])
        clf.image_size_ = int(config["image_size"])
        clf.strategy_ = config["strategy"]["used"]
        clf.strategy_settings_ = config["strategy"]["settings"]
        run = config.get("run", {})
        clf.decisions_ = [tuple(d) for d in run.get("decisions", [])]
        clf.timings_ = run.get("timings", {})
        clf.notes_ = run.get("notes", [])
        clf.history_ = read_history(path / HISTORY_FILE)
        metrics_file = path / METRICS_FILE
        clf.metrics_ = json.loads(metrics_file.read_text()).get("test") if metrics_file.is_file() else None
        return clf


def expand_image_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders expanded to the image files inside (sorted); missing paths raise."""
    out: list[Path] = []
    for item in [paths] if isinstance(paths, (str, Path)) else paths:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f))
            if not found:
                raise DataError(f"{p}: folder has no image files (extensions {', '.join(sorted(IMAGE_EXTENSIONS))}).")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder; check the path.")
    return out


def write_history(path: Path, rows: list[dict]) -> None:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open() as fh:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _number(value: str):
    try:
        return float(value) if value not in ("", None) else None
    except ValueError:
        return value
