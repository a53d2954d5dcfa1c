"""`ImageClassifier`: a scikit-learn-style estimator over image folders, built on a pretrained backbone."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from .._format import counted
from ..backbones import DEFAULT_BACKBONE
from ..data import ImageDataset, ImageFolderData, eval_transform, load_image_folder, scan_class_folders, train_transform
from ..data.image_folder import Samples, list_files
from ..diagnostics.domain_shift import IMAGE_SHIFT_REFERENCE
from ..data.images import IMAGE_EXTENSIONS, is_image_file
from ..errors import DataError, TransferkitError
from ..selection.rank_backbones import RankingSource
from ..strategies import FitData
from ..strategies.base import strategy_class
from ..strategies.linear_probe import CROSS_VALIDATE_BELOW, CV_FOLDS
from ..data.multitask import (MANIFEST_EXTENSIONS, MultiTargetDataset, load_image_manifest, looks_like_image_manifest,
                              parse_label_columns)
from .base import stack_outputs
from .classifier import ClassifierBase
from .params import Interval, OneOf

log = logging.getLogger(__name__)

TASK = "image-classification"
#: The training augmentations (`augment`), weakest first.
AUGMENTS = ("none", "light", "strong")


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


class ImageClassifier(ClassifierBase):
    """Image classifier fine-tuned from a pretrained backbone.

    `fit(path)` takes a folder with one sub-folder per class (or train/val/test sub-folders), or a
    CSV/TSV manifest: a column of image paths (relative to the manifest) and label columns; with
    several (`label_columns`) the model has one head per column on the shared backbone (see
    `ClassifierBase`). `predict`, `predict_proba` and `evaluate` take image paths or folders
    (`evaluate` also a manifest). Learned state ends in `_`.
    `strategy_options` sets a strategy's own knobs (e.g. {"layer_decay": 0.7} for fine-tune).
    `backbone="auto"` first ranks the installed backbones by the best-measured transferability score; `baseline=True` also trains
    the same architecture from scratch on the same split and `evaluate()` reports the transfer gain.

    Parameters
    ----------
    image_size : int or None, default=None
        Input size in px (default: native size capped at the data's median).
    augment : {"none", "light", "strong"}, default="light"
        Training augmentation.
    tta : bool, default=True
        Average predictions over a horizontal flip.
    num_workers : int, default=0
        Data-loader worker processes.
    """

    task = TASK
    modality = "image"
    config_keys = {**ClassifierBase.config_keys, "image_size": int}

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
        memory: int = 100,
        memory_selection: str = "random",
        seed: int = 0,
        num_workers: int = 0,
        label_columns: str | list | None = None,
        task_weights: str | dict | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        baseline: bool = True,
        max_seconds: float | None = None,
        # distributed training and speed
        devices: int = 1,
        num_nodes: int = 1,
        accelerator: str = "auto",
        precision: str = "auto",
        compile: bool = False,
        dist_strategy: str = "auto",
        # search
        search: int = 0,
        search_backend: str = "optuna",
        search_seconds: float | None = None,
        weight_decay: float | None = None,
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
        self.memory = memory
        self.memory_selection = memory_selection
        self.seed = seed
        self.num_workers = num_workers
        self.label_columns = label_columns
        self.task_weights = task_weights
        self.run_dir = run_dir
        self.resume = resume
        self.progress = progress
        self.baseline = baseline
        self.max_seconds = max_seconds
        # distributed training and speed
        self.devices = devices
        self.num_nodes = num_nodes
        self.accelerator = accelerator
        self.precision = precision
        self.compile = compile
        self.dist_strategy = dist_strategy
        # search
        self.search = search
        self.search_backend = search_backend
        self.search_seconds = search_seconds
        self.weight_decay = weight_decay

    # ------------------------------------------------------------ fit hooks
    def _load_data(self, data: str | Path | ImageFolderData) -> None:
        columns = parse_label_columns(self.label_columns)
        if isinstance(data, ImageFolderData):
            self.data_ = data
        elif Path(data).expanduser().is_file() and Path(data).suffix.lower() in MANIFEST_EXTENSIONS:
            self.data_ = load_image_manifest(data, columns, self.val_fraction, self.test_fraction, self.seed)
        elif columns:
            raise DataError(f"{data}: --label-columns reads an image manifest (a CSV with a path column and label "
                            "columns); a folder of class folders has one label. Pass the manifest's path.")
        else:
            self.data_ = load_image_folder(data, self.val_fraction, self.test_fraction, self.seed)
        self.classes_ = list(self.data_.classes)
        self.heads_ = dict(getattr(self.data_, "heads", None) or {})
        if self.data_.skipped:
            self.warnings_.append(f"{len(self.data_.skipped)} file(s) skipped (not images or unreadable); see Data")

    def _prepare(self, backbone):
        self.image_size_, _ = resolve_image_size(self.image_size, backbone.preprocessing.image_size,
                                                 self.data_.median_side)
        return backbone

    def _fit_data(self, backbone, strategy) -> FitData:
        """Few labelled images and a strategy that can cross-validate: every image trains and the
        accuracy is estimated by cross-validation (`data_` becomes the pooled split)."""
        pretrained = backbone.meta.get("pretrained", True)
        folds = self._cross_validation_folds(strategy, pretrained)
        if folds:
            self.data_ = pool_for_cross_validation(self.data_, folds)
        d = self.data_
        plain = eval_transform(backbone.preprocessing, self.image_size_)

        def dataset(samples):
            images = ImageDataset(samples.paths, samples.labels, plain, cache_side=self.image_size_)
            return MultiTargetDataset(images, samples.targets) if self._multi_head() else images

        train_plain = dataset(d.train)
        return FitData(
            train=train_plain.with_transform(train_transform(backbone.preprocessing, self.image_size_, self.augment)),
            train_plain=train_plain, val=dataset(d.val),
            num_classes=len(self.classes_), pretrained=pretrained, folds=folds, objectives=self._objectives(),
        )

    def _read_target(self, unlabeled, target_labels) -> None:
        """Target images: a folder (searched recursively; class folders, if any, ignored) or a list of
        files; `target_labels` labelled images read as `evaluate` reads them (`_labelled_samples`)."""
        paths = expand_image_paths(unlabeled)
        if not paths:
            raise DataError(f"{unlabeled}: no target images found.")
        labelled = self._labelled_samples(target_labels)[0] if target_labels is not None else None
        self.target_ = {"unlabeled": paths, "labelled": labelled, "summary": {
            "unlabeled": str(unlabeled) if isinstance(unlabeled, (str, Path)) else f"{len(paths)} images",
            "examples": len(paths), "labelled": str(target_labels) if target_labels is not None else None,
            "labelled_examples": len(labelled) if labelled is not None else 0}}

    def _target_datasets(self):
        t = self.target_
        plain = eval_transform(self.preprocessing_, self.image_size_)
        labelled = t["labelled"]
        target = ImageDataset(t["unlabeled"], None, plain, cache_side=self.image_size_)
        # weak and strong views for FixMatch-style self-training: flip + crop, and RandAugment + jitter
        views = tuple(target.with_transform(train_transform(self.preprocessing_, self.image_size_, augment))
                      for augment in ("light", "strong"))
        return {"unlabelled": target, "unlabelled_views": views,
                "target_eval": ImageDataset(labelled.paths, labelled.labels, plain, cache_side=self.image_size_)
                if labelled else None}

    def _search_space(self, trial) -> dict:
        """The shared space (`search.base_space`) and the augmentation strength."""
        return {**super()._search_space(trial), "augment": trial.suggest_categorical("augment", AUGMENTS)}

    def _train_settings(self, fit_data: FitData):
        return replace(super()._train_settings(fit_data), tta=self.tta, num_workers=self.num_workers)

    def _after_adapt(self, model, outcome) -> None:
        self.estimate_ = outcome.estimate

    def _decisions(self, backbone, outcome) -> list[tuple[str, str]]:
        d = self.data_
        _, size_reason = resolve_image_size(self.image_size, backbone.preprocessing.image_size, d.median_side)
        return [
            *super()._decisions(backbone, outcome),
            (f"input size: {self.image_size_} px", size_reason),
            ("split", d.split["description"]) if not self.estimate_ else
            (f"evaluation: {self.estimate_['method']}",
             f"estimated by {self.estimate_['method']} (the same folds choose "
             + (strategy_class(self.strategy_).head_selection or "C") + " by log-loss"
             + (" and which head is kept" if "compared" in outcome.settings else "")
             + ", so the estimate may be slightly optimistic); the shipped model is "
             f"fitted on all {len(d.train)} images. Below {CROSS_VALIDATE_BELOW} labelled images a held-out split "
             "trains on 70 % of them and measures on a few dozen"),
            ("test-time augmentation: " + ("flip average" if self.tta else "off"),
             "predictions average the image and its mirror image" if self.tta else "disabled"),
        ]

    control_description = "the same architecture with random weights, every layer trained"
    domain_shift_reference = IMAGE_SHIFT_REFERENCE

    def _plan_details(self) -> list[tuple[str, str]]:
        _, why = resolve_image_size(self.image_size, self.preprocessing_.image_size, self.data_.median_side)
        return [(f"input size: {self.image_size_} px", why), ("split", self.data_.split["description"])]

    def _cross_validation_folds(self, strategy, pretrained: bool) -> int:
        """Folds to estimate by instead of a held-out split: only for a strategy that can, a pretrained
        backbone, a split carved here (given folders are kept) and fewer than CROSS_VALIDATE_BELOW
        labelled images; 0 otherwise."""
        d = self.data_
        labels = d.train.labels + d.val.labels + d.test.labels
        if self._multi_head():  # the heads are scored on a held-out split (cross-validation fits one head)
            return 0
        if not (getattr(strategy, "cross_validates", False) and pretrained and not d.split.get("from_folders")
                and len(labels) < CROSS_VALIDATE_BELOW):
            return 0
        smallest = min(labels.count(i) for i in range(len(d.classes)))
        return min(CV_FOLDS, smallest) if smallest >= 2 else 0

    def _scratch_control(self, budget: float) -> dict:
        return _image_scratch_control(self, budget)

    # -------------------------------------------------------------- predict
    def _dataset(self, paths: Sequence[Path], labels: Sequence[int] | None = None) -> ImageDataset:
        """One-pass reading (prediction, evaluation): no decoded-image cache, so memory stays bounded
        however many images there are."""
        return ImageDataset(paths, labels, eval_transform(self.preprocessing_, self.image_size_), self.image_size_,
                            cache_bytes=0)

    def _proba(self, inputs) -> np.ndarray:
        from torch.utils.data import DataLoader

        if isinstance(inputs, OutOfFold):
            return inputs.proba
        dataset = inputs if isinstance(inputs, ImageDataset) else self._dataset(expand_image_paths(inputs))
        loader = DataLoader(dataset, batch_size=64, shuffle=False, num_workers=self.num_workers)

        if self._multi_head():
            def flip_average(model, x):
                out = model.forward_heads(x)
                if not self.tta:
                    return out
                flipped = model.forward_heads(torch.flip(x, dims=[3]))
                return {head: (out[head] + flipped[head]) / 2 for head in out}

            out = self._outputs(loader, flip_average)
            if not out:
                return {h: np.zeros((0, len(c)), dtype=np.float32) for h, c in self.heads_.items()}
            return {head: torch.softmax(logits, dim=1).numpy() for head, logits in stack_outputs(out).items()}

        def flip_average(model, x):
            return (model(x) + model(torch.flip(x, dims=[3]))) / 2 if self.tta else model(x)

        out = self._outputs(loader, flip_average)
        if not out:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        return torch.softmax(torch.cat(out), dim=1).numpy()

    def predict_proba(self, paths: Iterable[str | Path | Image.Image]) -> np.ndarray:
        """Class probabilities, one row per image (folders are expanded to the images inside;
        decoded `PIL.Image.Image`s are taken as they are)."""
        return super().predict_proba(paths)

    def _labelled(self, data):
        """Test split from `fit` (data=None; the out-of-fold predictions when the run was
        cross-validated), else `data/test/<class>/`, `data/<class>/` or a manifest (a multi-task
        model: labels as a dict head → class indices)."""
        estimate = getattr(self, "estimate_", None)
        if data is None and estimate:
            labels = [int(y) for y in estimate["labels"]]
            return OutOfFold(estimate["proba"]), labels, {"estimate": estimate["method"], "folds": int(estimate["folds"]),
                                                        "skipped_files": 0}
        samples, skipped = (self.data_.test, []) if data is None else self._labelled_samples(data)
        labels = samples.targets if self._multi_head() else samples.labels
        return self._dataset(samples.paths, samples.labels), labels, {"skipped_files": len(skipped)}

    def _labelled_samples(self, data: str | Path) -> tuple[Samples, list]:
        """The images of `data/test/<class>/`, `data/<class>/` or a manifest (the trained classes)
        and the files skipped; no images at all raises one line."""
        root = Path(data).expanduser()
        if root.is_file():
            return self._manifest_samples(root)
        if (root / "test").is_dir():
            root = root / "test"
        _, samples, skipped, _ = scan_class_folders(root, self.classes_)
        if len(samples) == 0:
            raise DataError(f"{root}: no readable images in class folders named like {self.classes_}.")
        return samples, skipped

    # ------------------------------------------------------------ growing (extend)
    def _read_extension(self, data):
        d = load_image_folder(data, self.val_fraction, self.test_fraction, self.seed, min_classes=1)
        if d.skipped:
            self.warnings_ = [*getattr(self, "warnings_", []), f"{len(d.skipped)} new file(s) skipped (not images or "
                              "unreadable)"]
        return list(d.classes), {name: (self._refs(s), [d.classes[y] for y in s.labels])
                                 for name in ("train", "val", "test") for s in [getattr(d, name)]}

    def _examples(self, refs, labels, augment: bool) -> ImageDataset:
        # read over several epochs when extending a model: decoded images are cached (up to the budget)
        dataset = ImageDataset([Path(r) for r in refs], labels, eval_transform(self.preprocessing_, self.image_size_),
                               self.image_size_)
        return dataset.with_transform(train_transform(self.preprocessing_, self.image_size_, self.augment)) \
            if augment else dataset

    # absolute paths (symlinks kept as they are): data given as relative and absolute paths mix, and the
    # memory a run saves is found from any working directory
    def _refs(self, samples) -> list[str]:
        return [os.path.abspath(p) for p in samples.paths]

    def _dataset_refs(self, dataset) -> list[str]:
        return [os.path.abspath(p) for p in dataset.paths]

    def _resolve_refs(self, refs, root):
        return [os.path.abspath(r if Path(r).is_absolute() or root is None else Path(root) / r) for r in refs]

    def _existing(self, refs, labels):
        kept = [(r, y) for r, y in zip(refs, labels) if Path(r).is_file()]
        return [r for r, _ in kept], [y for _, y in kept]

    def _inputs(self, refs) -> list[Path]:
        return [Path(r) for r in refs]

    def _data_from_splits(self, classes, splits) -> ImageFolderData:
        index = {c: i for i, c in enumerate(classes)}
        samples = {name: Samples([Path(r) for r in refs], [index[c] for c in names])
                   for name, (refs, names) in splits.items()}
        every = [str(p) for s in samples.values() for p in s.paths]
        root = Path(os.path.commonpath(every)) if every else Path(".")
        counts = ", ".join(f"{len(s)} {name}" for name, s in samples.items())
        return ImageFolderData(root=root, classes=list(classes), train=samples["train"], val=samples["val"],
                               test=samples["test"], skipped=[], median_side=self.image_size_,
                               split={"description": f"the parent run's splits plus the new data's ({counts})",
                                      "seed": self.seed, "from_folders": True})

    def _manifest_samples(self, path: Path) -> tuple[Samples, list]:
        """The images of a manifest labelled with the trained classes, read with the fit's label
        columns (a multi-task model: every head's)."""
        from ..data.multitask import MultiSamples, index_targets, read_manifest_rows

        heads = self.heads_ if self._multi_head() else None
        columns = list(heads) if heads else parse_label_columns(self.label_columns)
        paths, labels, skipped, _, columns = read_manifest_rows(path, columns, check=False)
        targets = index_targets(labels, heads or {columns[0]: self.classes_}, path)
        return MultiSamples(paths, targets[columns[0]], targets), skipped

    # ------------------------------------------------------------ save/load
    def _task_config(self) -> dict:
        return {**super()._task_config(), "image_size": self.image_size_}

    def _restore_task(self, config: dict) -> None:
        super()._restore_task(config)
        self.image_size_ = int(config["image_size"])

    # ---- task detection (template)
    detect_order = 90  # any folder: asked after the tasks that recognise a narrower kind of path

    @classmethod
    def recognise(cls, path: str | Path) -> str | None:
        p = Path(path).expanduser()
        if looks_like_image_manifest(p):
            return f"{p.name} is a manifest of images (a column of image paths)"
        return f"{p.name}/ is a folder (of class folders of images)" if p.is_dir() else None

    # ---- report and ranking hooks (report-rank)
    def ranking_source(self) -> RankingSource:
        """The training images for `rank_backbones`, at each candidate's input size as `fit` would
        choose it (`resolve_image_size`: the requested size, else native capped at the median side)."""
        d = self.data_

        def encode(backbone, chosen: Sequence[int], size: int | None):
            size, _ = resolve_image_size(size, backbone.preprocessing.image_size, d.median_side)
            dataset = ImageDataset([d.train.paths[i] for i in chosen], [d.train.labels[i] for i in chosen],
                                   eval_transform(backbone.preprocessing, size), cache_side=size)
            return dataset, None, size

        return RankingSource(self.task, self.modality, d.train.labels, list(d.classes), encode, sized=True)

    # ---- parameter declarations (cli)
    param_constraints = {**ClassifierBase.param_constraints, "image_size": Interval(32, 1024),
                         "augment": OneOf(("none", "light", "strong")), "num_workers": Interval(0)}
    option_aliases = {"num_workers": ("--workers",)}

    # ---- presentation hooks (cli)
    option_panel = "Images"
    prediction_key = "path"

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> list[Path]:
        """The image files given, folders expanded to the images inside."""
        if file is not None:
            raise TransferkitError("--file is for text models; pass image files or folders as arguments.")
        paths = expand_image_paths(inputs)
        if not paths:
            raise DataError("nothing to predict: pass inputs as arguments")
        return paths


@dataclass
class OutOfFold:
    """Inputs of a cross-validated estimate: each labelled image's probabilities predicted by a
    model fitted on the other folds (what `evaluate()` scores instead of a held-out split)."""

    proba: np.ndarray


def pool_for_cross_validation(data: ImageFolderData, folds: int) -> ImageFolderData:
    """`data` with every labelled image in train and no validation or test split (a new object:
    the caller's data are left as they were), its split described as cross-validated."""
    pooled = Samples(data.train.paths + data.val.paths + data.test.paths,
                     data.train.labels + data.val.labels + data.test.labels)
    description = (f"all {len(pooled)} labelled images train the model (fewer than {CROSS_VALIDATE_BELOW}: "
                   f"holding out a split would waste them); accuracy estimated by {folds}-fold cross-validation")
    return replace(data, train=pooled, val=Samples(), test=Samples(),
                   split={**data.split, "description": description, "cross_validation_folds": folds})


def expand_image_paths(paths: Iterable[str | Path | Image.Image]) -> list[Path | Image.Image]:
    """Files as given, folders expanded to the image files inside (sorted); missing paths raise.
    Decoded images (`PIL.Image.Image`) pass through as they are."""
    out: list[Path | Image.Image] = []
    for item in [paths] if isinstance(paths, (str, Path, Image.Image)) else paths:
        if isinstance(item, Image.Image):
            out.append(item)
            continue
        p = Path(item).expanduser()
        if p.is_dir():
            found = [f for f in list_files(p) if is_image_file(f)]  # no junk (._x.jpg), no symlink loops
            if not found:
                raise DataError(f"{p}: folder has no image files (extensions {', '.join(sorted(IMAGE_EXTENSIONS))}).")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder; check the path.")
    return out


#: The trained control's time cap: a fraction of the fit's time, and at most a minute per SMALL_DATA
#: training images, so a quick default does not double its wall time for the check.
CONTROL_SECONDS = 60.0
CONTROL_FRACTION = 0.5


def _image_scratch_control(est: "ImageClassifier", budget: float) -> dict[str, Any]:
    """The no-transfer control matched to what the run did, scored the way the run is scored.

    A linear probe gets the same head (logistic regression, the same C selection, the same
    cross-validation or split) on features of the same architecture with random weights: one
    forward pass, no training. A fine-tuned model gets the same architecture with random weights,
    all layers trained (capacity equal by construction) within a time cap: half of `budget` (the
    transferred model's fit time), at most a minute per 1,000 training images.
    """
    from ..strategies.auto import SMALL_DATA

    info = est.backbone_info_
    # a registered backbone rebuilds with its own preprocessing; otherwise the timm architecture
    architecture = info["name"] if info.get("family") != "timm" else info["architecture"]
    head = strategy_class(est.strategy_).feature_head
    if head in RANDOM_FEATURE_CONTROLS:  # a frozen-feature run: the same head on random features
        return RANDOM_FEATURE_CONTROLS[head](est, architecture)
    epochs = int(est.strategy_settings_.get("epochs_run") or est.strategy_settings_.get("epochs") or 3)
    per_size = CONTROL_SECONDS * max(1.0, len(est.data_.train) / SMALL_DATA)
    cap = min(per_size, max(15.0, CONTROL_FRACTION * budget))
    control = _ScratchControl(
        backbone=f"scratch:{architecture}", strategy="auto", epochs=max(1, epochs), image_size=est.image_size_,
        batch_size=est.batch_size, lr=1e-3, augment=est.augment, tta=est.tta, seed=est.seed, progress=est.progress,
        baseline=False, max_seconds=cap, memory=0, **est._compute_params(),  # on the run's devices
    )
    control.fit(est.data_)
    accuracy = control.evaluate()["accuracy"]
    return {"model": f"{architecture}, random weights, all layers trained "
                     f"({counted(control.strategy_settings_.get('epochs_run') or 0, 'epoch')}, lr 1e-3, "
                     f"time cap {cap:.0f} s)", "accuracy": accuracy}


class _ScratchControl(ImageClassifier):
    """The trained from-scratch control: an `ImageClassifier` whose plan is one line saying what
    the next progress bar trains (the run's own plan already announced the control)."""

    def _plan(self, strategy, fit_data: FitData, settings) -> list[tuple[str, str]]:
        chosen = strategy.plan(fit_data, settings)[0][0].removeprefix("strategy: ")
        return [("from-scratch control", f"{self.backbone_info_['name']}, strategy {chosen}, "
                 f"within about {self.max_seconds:.0f} s")]


def _random_feature_probe(est: "ImageClassifier", architecture: str) -> dict[str, Any]:
    """The matched control of a run with a logistic head on frozen features (the linear probe): the same
    head and C selection, fitted and scored the same way, on features of `architecture` with random weights."""
    import torch

    from ..backbones import create_backbone
    from ..models.features import extract_features
    from ..strategies.linear_probe import cross_validated_head, fit_logistic_head

    torch.manual_seed(est.seed)
    body = create_backbone(f"scratch:{architecture}", modality="image").model.eval()
    d, k = est.data_, len(est.classes_)

    def features(samples):
        return extract_features(body, est._dataset(samples.paths, samples.labels), hflip=est.tta, progress=False)

    train_x, train_y = features(d.train)
    estimate = getattr(est, "estimate_", None)
    if estimate:
        _, _, c, oof = cross_validated_head(train_x, train_y, k, est.seed, int(estimate["folds"]))
        accuracy, scored = float((oof.argmax(1) == train_y).mean()), estimate["method"]
    else:
        head, _, c = fit_logistic_head(train_x, train_y, *features(d.val), k, est.seed)
        test_x, test_y = features(d.test)
        with torch.no_grad():
            accuracy = float((head(torch.as_tensor(test_x)).argmax(1).numpy() == test_y).mean())
        scored = "the test split"
    return {"model": f"{architecture}, random weights, frozen: the same logistic head and C selection (C={c:g}), "
                     f"scored by {scored}; one forward pass, no training", "accuracy": accuracy}


def _random_feature_prototypes(est: "ImageClassifier", architecture: str) -> dict[str, Any]:
    """A prototype run's control: the same nearest-centroid head and temperature selection on
    features of `architecture` with random weights, scored as the run is (out-of-fold or test split)."""
    import torch

    from ..backbones import create_backbone
    from ..models.features import extract_features
    from ..strategies.prototypes import fit_prototypes

    torch.manual_seed(est.seed)
    body = create_backbone(f"scratch:{architecture}", modality="image").model.eval()
    d, k = est.data_, len(est.classes_)

    def features(samples):
        return extract_features(body, est._dataset(samples.paths, samples.labels), hflip=est.tta, progress=False)

    estimate = getattr(est, "estimate_", None)
    fitted = fit_prototypes(*features(d.train), *features(d.val), k, int(estimate["folds"]) if estimate else 0, est.seed)
    if estimate:
        accuracy, scored = fitted.accuracy, estimate["method"]
    else:
        test_x, test_y = features(d.test)
        with torch.no_grad():
            accuracy = float((fitted.head(torch.as_tensor(test_x)).argmax(1).numpy() == test_y).mean())
        scored = "the test split"
    return {"model": f"{architecture}, random weights, frozen: the same nearest-centroid head and temperature "
                     f"selection, scored by {scored}; one forward pass, no training", "accuracy": accuracy}


#: The no-transfer control of a run whose strategy fits a head on frozen features, by that head
#: (`Strategy.feature_head`): the same head, fitted and scored the same way, on random features.
RANDOM_FEATURE_CONTROLS = {"logistic": _random_feature_probe, "centroid": _random_feature_prototypes}
