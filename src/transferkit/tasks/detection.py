"""`DetectionEstimator`: object detection on VOC, COCO or YOLO folders, a registered image backbone
inside a torchvision detector (`backbones.detectors`).

The backbone's ImageNet weights transfer; the detection layers start new. Training goes through
the shared strategies (`head-only`, `fine-tune`, `full`), which drive the detector's layer groups
like a classifier's (`strategies.own_loss`: the detector computes its own losses). Evaluation is
COCO mAP on the test split, with a from-scratch control and a bootstrap noise band for the verdict.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch

from .._format import chunked, counted
from ..errors import DataError, RunDirectoryError, TransferkitError
from ..strategies import STRATEGIES, FitData
from ..strategies.base import OWN_LOSSES
from .base import TransferEstimator
from .detection_evaluation import bootstrap_band, image_records
from .params import Interval, OneOf
from .presentation import Headline, SummaryLine, Table

TASK = "object-detection"
DEFAULT_ARCHITECTURE = "fasterrcnn"
#: The control's learning rate: random weights learn at the new layers' rate (as the classifier's control)
CONTROL_LR = 1e-3


class DetectionEstimator(TransferEstimator):
    """Object detection: boxes and classes of objects in images, learnt from a VOC, COCO or YOLO folder.

    Parameters
    ----------
    architecture : {"fasterrcnn", "fcos", "retinanet"}, default="fasterrcnn"
        Detection architecture around the backbone (`transferkit.backbones.detectors.DETECTORS`).
    image_size : int, default=320
        Square input size in px (images are resized to it; boxes are reported in the original pixels).
    augment : {"none", "light", "strong"}, default="light"
        Training augmentation that keeps boxes valid (light: colour, zoom-out, flip; strong: + IoU-safe crops).
    conf : float, default=0.25
        Score threshold of `predict` (boxes below it are dropped); metrics use every box.
    val_fraction : float, default=0.1
        Share of the training images held out for validation when the data give no val split.
    test_fraction : float, default=0.2
        Share of the images held out for the test split when the data give none.
    """

    task = TASK
    modality = "detection"
    unit = "image"
    config_keys = {"classes": list[str], "image_size": int, "architecture": str, "image_mean": list, "image_std": list}
    control_description = "the same detector from random weights, every layer trained for about the same time"
    detect_order = 20  # a folder with annotations: asked before the image classifier, which takes any folder

    def __init__(
        self,
        backbone: str = "mobilenetv2_100",
        architecture: str = DEFAULT_ARCHITECTURE,
        image_size: int = 320,
        strategy: str = "fine-tune",
        strategy_options: dict | None = None,
        epochs: int | None = None,
        batch_size: int = 4,
        lr: float | None = None,
        augment: str = "light",
        conf: float = 0.25,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        run_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        baseline: bool = True,
        max_seconds: float | None = None,
        accelerator: str = "auto",
        precision: str = "auto",
        weight_decay: float | None = None,
    ) -> None:
        self.backbone = backbone
        self.architecture = architecture
        self.image_size = image_size
        self.strategy = strategy
        self.strategy_options = strategy_options
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.augment = augment
        self.conf = conf
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.run_dir = run_dir
        self.resume = resume
        self.progress = progress
        self.baseline = baseline
        self.max_seconds = max_seconds
        self.accelerator = accelerator
        self.precision = precision
        self.weight_decay = weight_decay

    # ------------------------------------------------------------ fit hooks
    def _check_params(self, adapting: bool = False):
        from ..backbones.detectors import DETECTORS

        if self.architecture not in DETECTORS:
            raise TransferkitError(f"architecture {self.architecture!r} is not a registered detector; "
                                   f"use one of {', '.join(DETECTORS.names())}.")
        if self.strategy in STRATEGIES and self.modality not in STRATEGIES.entry(self.strategy).info.modalities:
            usable = [n for n in STRATEGIES.names() if self.modality in STRATEGIES.entry(n).info.modalities]
            raise TransferkitError(f"strategy {self.strategy!r} does not train detectors; use one of "
                                   f"{', '.join(usable)}.")
        return super()._check_params(adapting)

    def _load_data(self, data: Any) -> None:
        from ..data.detection import DetectionData, load_detection

        self.data_ = data if isinstance(data, DetectionData) else load_detection(
            data, val_fraction=self.val_fraction, test_fraction=self.test_fraction, seed=self.seed)
        self.classes_ = list(self.data_.classes)
        if self.data_.problems:
            # each problem was logged as one line while reading; the run keeps their count and the first
            self.warnings_.append(f"{counted(len(self.data_.problems), 'annotation problem')}, each box or file "
                                  f"skipped or clipped (one warning line each); the first: {self.data_.problems[0]}")

    def _load_backbone(self):
        from ..backbones import create_backbone

        if self.backbone == "auto":
            raise TransferkitError("backbone='auto' ranks classification backbones; for detection pass an image "
                                   "backbone with feature maps (mobilenetv2_100, efficientnet_lite0).")
        self.ranking_ = None
        backbone = create_backbone(self.backbone, modality="image")  # the detector's feature extractor
        self.backbone_info_ = backbone.to_config()
        self.preprocessing_ = backbone.preprocessing
        self.tokenizer_ = None
        self.image_mean_, self.image_std_ = list(backbone.preprocessing.mean), list(backbone.preprocessing.std)
        return backbone

    def _prepare(self, backbone):
        self.image_size_ = int(self.image_size)
        self.architecture_ = self.architecture
        return backbone

    def _new_model(self, body, num_features: int):
        from ..backbones.detectors import assemble_detector

        return assemble_detector(body, self.backbone_info_["name"], self.image_mean_, self.image_std_,
                                 len(self.classes_), self.architecture_, self.image_size_)

    def _fit_data(self, backbone, strategy) -> FitData:
        from ..data.detection import DetectionDataset, collate_detection

        d, size = self.data_, self.image_size_
        train = d.subset("train")
        return FitData(train=DetectionDataset(train, size, train=True, augment=self.augment),
                       train_plain=DetectionDataset(train, size), val=DetectionDataset(d.subset("val"), size),
                       num_classes=len(self.classes_), collate_fn=collate_detection, objective=OWN_LOSSES,
                       modality=self.modality, pretrained=backbone.meta.get("pretrained", True))

    def _diagnose_domain(self, backbone, fit_data: FitData, sample: int = 256) -> None:
        """No domain diagnostics: they read pooled features of class-labelled examples."""
        self.domain_ = None

    def _plan_details(self) -> list[tuple[str, str]]:
        from ..backbones.detectors import DETECTORS
        from ..data.detection.formats import DETECTION_FORMATS

        d = self.data_
        fmt = d.format
        return [(f"data format: {fmt}", f"found {DETECTION_FORMATS.entry(fmt).info.layout} in {d.root}"),
                (f"data: {counted(len(d.items), 'image')}, {counted(sum(d.box_counts().values()), 'box', 'boxes')}, "
                 f"{counted(len(self.classes_), 'class', 'classes')}", d.split["description"]),
                (f"architecture: {self.architecture_}", DETECTORS.entry(self.architecture_).info.description),
                (f"input size: {self.image_size_} px", f"image_size (median image side "
                 f"{d.sizes()['median_image_side']:.0f} px, median box {d.sizes()['median_box_fraction']:.2f} of it)")]

    def _decisions(self, backbone, outcome) -> list[tuple[str, str]]:
        return [*super()._decisions(backbone, outcome), *self._plan_details()]

    def _scratch_control(self, budget: float) -> dict:
        """The same architecture from random weights, every layer trained (`full`) on the same split
        within the adapted model's fit time, scored on the same test images."""
        info = self.backbone_info_
        architecture = info["name"] if info.get("family") != "timm" else info["architecture"]
        control = _ScratchControl(
            backbone=f"scratch:{architecture}", architecture=self.architecture_, image_size=self.image_size_,
            strategy="full", epochs=1000, batch_size=self.batch_size, lr=CONTROL_LR, augment=self.augment,
            seed=self.seed, progress=self.progress, baseline=False, max_seconds=max(10.0, budget),
            accelerator=self.accelerator, precision=self.precision)
        control.fit(self.data_)
        items = self.data_.subset("test")
        self._control_predictions = control._detect(items)
        metrics = control._score(items, self._control_predictions)
        epochs = control.strategy_settings_.get("epochs_run") or 0
        return {"model": f"{architecture} in {self.architecture_}, random weights, all layers trained "
                         f"({counted(epochs, 'epoch')}, lr {CONTROL_LR:g}, time cap {max(10.0, budget):.0f} s)",
                "map_50": metrics["map_50"], "map": metrics["map"]}

    # --------------------------------------------------------------- predict
    def _detect(self, items: list, conf: float = 0.0) -> list[dict]:
        from ..backbones.detectors import detect_items

        self._check_fitted()
        return detect_items(self.model_.eval(), items, batch_size=self.batch_size or 4, conf=conf)

    def predict(self, inputs: Iterable[str | Path] | str | Path, conf: float | None = None,
                save_images: str | Path | None = None) -> list[dict]:
        """Per image {"path", "width", "height", "boxes": [{"x1", "y1", "x2", "y2" (original pixels),
        "label", "score"}, ...]}, boxes scoring at least `conf` (default: the `conf` param), best
        first; `save_images`: also write each image with its boxes drawn to that folder."""
        from ..data.detection.base import DetectionItem
        from ..data.detection.drawing import save_drawn
        from .image_classification import expand_image_paths

        self._check_fitted()
        threshold = self.conf if conf is None else conf
        found = expand_image_paths(inputs)
        if not all(isinstance(p, Path) for p in found):  # boxes are reported per file, in its pixels
            raise TransferkitError("a detector predicts on image files or folders; save decoded images to files first.")
        paths = list(found)
        items = [DetectionItem(image=p, boxes=[], labels=[], width=w, height=h)
                 for p, (w, h) in zip(paths, map(_upright_size, paths))]
        records = []
        for item, out in zip(items, self._detect(items, threshold)):
            boxes = [{"x1": round(float(b[0]), 2), "y1": round(float(b[1]), 2), "x2": round(float(b[2]), 2),
                      "y2": round(float(b[3]), 2), "label": self.classes_[int(c)], "score": round(float(s), 4)}
                     for b, c, s in zip(out["boxes"].tolist(), out["labels"].tolist(), out["scores"].tolist())]
            records.append({"path": str(item.image), "width": item.width, "height": item.height, "boxes": boxes})
            if save_images is not None:
                save_drawn(item.image, boxes, save_images)
        return records

    # ------------------------------------------------------------ evaluate
    def _score(self, items: list, predictions: list[dict]) -> dict:
        from ..data.detection.metrics import detection_metrics

        targets = [{"boxes": torch.from_numpy(it.boxes), "labels": torch.from_numpy(it.labels)} for it in items]
        return detection_metrics(predictions, targets, self.classes_)

    def evaluate(self, data: Any = None) -> dict:
        """COCO metrics on the test split from `fit` (data=None) or on a labelled folder (every image
        in it): mAP@[.5:.95] ("map"), mAP@.5, mAP@.75, AR@100, per class AP, AP@.5 and recall; with
        the precision-recall curve of each class, the images scored worst first, and (after a fit
        with a control) the transfer verdict on mAP@.5 with a bootstrap noise band."""
        from ..data.detection.metrics import precision_recall_curves

        self._check_fitted()
        if data is None and not hasattr(self, "data_"):
            if self.metrics_:
                return dict(self.metrics_)
            raise RuntimeError("nothing to evaluate: this model was loaded from a run without metrics.json; "
                               "pass labelled data")
        items = self.data_.subset("test") if data is None else _read_labelled(data, self.classes_)
        predictions = self._detect(items)
        targets = [{"boxes": torch.from_numpy(it.boxes), "labels": torch.from_numpy(it.labels)} for it in items]
        metrics = self._score(items, predictions)
        boxes = sum(len(it.labels) for it in items)
        metrics.update({
            "n": len(items), "boxes": boxes,
            "measured_on": f"{'the test split' if data is None else str(data)}: {counted(len(items), 'image')}, "
                           f"{counted(boxes, 'box', 'boxes')}",
            "box_counts": {c: int(sum(int((it.labels == i).sum()) for it in items)) for i, c in enumerate(self.classes_)},
            "curves": precision_recall_curves(predictions, targets, self.classes_),
            "images": image_records(items, predictions, self.classes_, self.conf),
        })
        if data is None:
            control, theirs = self.control_, getattr(self, "_control_predictions", None)
            if control and theirs is not None:
                from ..diagnostics import transfer_verdict

                band = bootstrap_band(items, predictions, theirs, self.classes_, self.seed)
                check = transfer_verdict(metrics["map_50"], control["map_50"], len(items), name="map_50",
                                         noise=band["noise"], strategy=self.strategy_, suggest=self.transfer_suggestions)
                metrics["transfer"] = {**check, "unit": "images", "control": control["model"], "band": band}
            self.metrics_ = metrics
        return metrics

    # ------------------------------------------------------------ save/load
    def _task_config(self) -> dict:
        return {"classes": list(self.classes_), "image_size": self.image_size_, "architecture": self.architecture_,
                "image_mean": list(self.image_mean_), "image_std": list(self.image_std_)}

    def _restore_task(self, config: dict) -> None:
        from ..backbones.detectors import DETECTORS

        if config["architecture"] not in DETECTORS:  # only a registered architecture is rebuilt
            raise RunDirectoryError(f"config.json: detector architecture {config['architecture']!r} is not registered here; "
                            f"known: {', '.join(DETECTORS.names())}.")
        self.classes_ = list(config["classes"])
        self.image_size_ = int(config["image_size"])
        self.architecture_ = config["architecture"]
        self.image_mean_, self.image_std_ = list(config["image_mean"]), list(config["image_std"])
        self.backbone_info_ = config["backbone"]

    # ---- task detection
    @classmethod
    def recognise(cls, path: str | Path) -> str | None:
        from ..data.detection import detect_format
        from ..data.detection.formats import DETECTION_FORMATS

        p = Path(path).expanduser()
        if not p.is_dir():
            return None
        try:
            name = detect_format(p)
        except DataError:
            return None
        return f"{p.name}/ holds {name.upper()} detection annotations ({DETECTION_FORMATS.entry(name).info.layout})"

    # ---- parameter declarations (cli)
    # the shared rules of the params this task declares (it trains on one device, without a search)
    param_constraints = {**{k: v for k, v in TransferEstimator.param_constraints.items()
                            if k in ("epochs", "batch_size", "max_seconds", "accelerator", "precision", "weight_decay",
                                     "lr")},
                         "image_size": Interval(32, 1024),
                         "augment": OneOf(("none", "light", "strong")), "conf": Interval(0, 1),
                         "val_fraction": Interval(0.01, 0.5), "test_fraction": Interval(0.01, 0.5)}
    option_panel = "Detection"

    # ---- presentation hooks
    report_sections = ("detection-metrics", "pr-curves", "box-grid")
    transfer_suggestions = ("full", "more_data")
    prediction_options = ("conf", "save_images")

    @classmethod
    def headline_metrics(cls, metrics: dict) -> tuple[Headline, ...]:
        return (Headline("map_50", "mAP@.5", ".3f", always=True), Headline("map", "mAP@[.5:.95]", ".3f", always=True),
                Headline("mar_100", "recall (AR@100)", ".3f"), Headline("n", "test images", "count"),
                Headline("boxes", "test boxes", "count"))

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> list[Path]:
        from .image_classification import expand_image_paths

        if file is not None:
            raise TransferkitError("--file is for text models; pass image files or folders as arguments.")
        paths = expand_image_paths(inputs)
        if not paths:
            raise DataError("nothing to predict: pass image files or folders as arguments")
        return paths

    def prediction_records(self, items: Any, top_k: int) -> list[dict]:
        """One record per image (top_k does not apply: every box above `conf` is listed)."""
        options = getattr(self, "prediction_options_", {})
        return self.predict(items, conf=options.get("conf"), save_images=options.get("save_images"))

    def prediction_table(self, items: Any, records: list[dict]) -> Table:
        rows = []
        for r in records:
            rows += [(r["path"], b["label"], f"{b['score']:.3f}", *(f"{b[k]:.0f}" for k in ("x1", "y1", "x2", "y2")))
                     for b in r["boxes"]] or [(r["path"], "(none)", "", "", "", "", "")]
        return Table(columns=("path", "class", "score", "x1", "y1", "x2", "y2"), rows=rows,
                     title=f"boxes scoring at least {getattr(self, 'prediction_options_', {}).get('conf', self.conf):g}",
                     right=("score", "x1", "y1", "x2", "y2"))

    def prediction_chunks(self, items: Any, size: int) -> Iterator[list]:
        return chunked(items, size)

    def metrics_table(self, metrics: dict, data: str | None = None) -> tuple[Table, SummaryLine | None]:
        """AP@[.5:.95], AP@.5, recall and true boxes per class, then mAP."""
        counts = metrics.get("box_counts") or {}

        def fmt(value):
            return "n/a" if value is None or value < 0 else f"{value:.3f}"

        rows = [(name, fmt(m["ap"]), fmt(m["ap_50"]), fmt(m["recall"]), str(counts.get(name, "")))
                for name, m in metrics["per_class"].items()]
        table = Table(columns=("class", "AP@[.5:.95]", "AP@.5", "recall", "boxes"), rows=rows,
                      title=f"{data or 'test split'} ({counted(metrics['n'], 'image')}, "
                            f"{counted(metrics.get('boxes', 0), 'box', 'boxes')})",
                      right=("AP@[.5:.95]", "AP@.5", "recall", "boxes"),
                      totals=[("mAP", fmt(metrics["map"]), fmt(metrics["map_50"]), fmt(metrics["mar_100"]),
                               str(metrics.get("boxes", "")))])
        summary = SummaryLine(f"mAP@.5 on {data or 'the test split'} ({counted(metrics['n'], 'image')})",
                              f"{metrics['map_50']:.3f}", f", mAP@[.5:.95] {metrics['map']:.3f}")
        return table, summary


class _ScratchControl(DetectionEstimator):
    """The from-scratch control: its plan is one line (the run's own plan announced it)."""

    def _plan(self, strategy, fit_data: FitData, settings) -> list[tuple[str, str]]:
        return [("from-scratch control", f"{self.backbone_info_['name']}, strategy full, within about "
                 f"{self.max_seconds:.0f} s")]


def _upright_size(path: Path) -> tuple[int, int]:
    from ..data.detection.base import Problems, image_size

    problems = Problems()
    size = image_size(path, problems)
    if size is None:
        raise DataError(problems.lines[0])
    return size


def _read_labelled(data: Any, classes: list[str]) -> list:
    """Every image of a labelled detection folder (all its split folders), read with the run's classes."""
    from ..data.detection import DetectionData
    from ..data.detection.base import SPLIT_NAMES, Problems
    from ..data.detection.formats import DETECTION_FORMATS, detect_format

    if isinstance(data, DetectionData):
        return list(data.items)
    root = Path(data).expanduser()
    reader = DETECTION_FORMATS.get(detect_format(root))
    problems = Problems()
    folders = [root] if reader.matches(root) else [root / s for s in SPLIT_NAMES if (root / s).is_dir()]
    items = [item for folder in folders for item in reader.read(folder, classes, problems).items]
    if not items:
        raise DataError(f"{root}: no usable image to evaluate on (see the problems above).")
    return items


#: the public name, beside `ImageClassifier`, `TextClassifier` and `Forecaster`
ObjectDetector = DetectionEstimator
