"""Tiny synthetic data sets the checks fit on, one maker per input modality.

Each maker writes a few kilobytes under the folder it is given and returns a `TinyData`: what to fit
on, what to predict on, and unlabelled target-domain inputs for strategies that need them. A task of
a new modality is checked once its maker is added to `TINY_DATA` (and, for its backbones, an input
batch to `TINY_BATCHES`).
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..strategies import STRATEGIES
from ..tasks import TASKS


@dataclass
class TinyData:
    """A data set to fit on and inputs to predict on, both written under the maker's folder."""

    fit_on: Path
    predict_on: Any
    unlabeled: Any = None  # target-domain inputs for strategies that need them (`StrategyInfo.unlabelled`)


# ------------------------------------------------------------------------------------------ images
#: class name → dominant RGB colour of `make_image_folder`'s images
COLOURS = {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (40, 60, 200)}
_TINY_COLOURS = {"red": (210, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 210)}


def make_image_folder(root: Path, per_class: int = 12, classes=("red", "green", "blue"), size: int = 40,
                      seed: int = 0) -> Path:
    """A folder of class folders of JPEGs: class = dominant colour (`COLOURS`), with noise and a random
    grey square, so easy but not trivially constant. Returns `root`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.array(COLOURS[name], dtype=np.float32)
            pixels = base + rng.normal(0, 25, (size, size, 3))
            x, y = rng.integers(0, size // 2, 2)
            pixels[y:y + size // 3, x:x + size // 3] = rng.integers(60, 200)
            Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(folder / f"{name}_{i:02d}.jpg")
    return root


def tiny_images(root: Path, per_class: int = 6, side: int = 32) -> TinyData:
    """Three classes of small coloured PNGs (dominant colour plus noise), and the same colours darker
    without labels beside `root` (a shifted target domain)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, colour in _TINY_COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.asarray(colour, np.float32) + rng.normal(0, 20, (side, side, 3))
            Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(root / name / f"{name}_{i}.png")
    target = root.parent / "target"
    target.mkdir(parents=True)
    for name, colour in _TINY_COLOURS.items():
        for i in range(per_class):
            pixels = 0.6 * np.asarray(colour, np.float32) + rng.normal(0, 20, (side, side, 3))
            Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(target / f"{name}_{i}.png")
    return TinyData(root, sorted(str(p) for p in root.rglob("*.png"))[::4], target)


# ------------------------------------------------------------------------------------------- texts
GOOD = ["wonderful", "excellent", "delightful", "great", "superb", "lovely"]
BAD = ["awful", "terrible", "dreadful", "horrible", "boring", "poor"]


def tiny_texts(root: Path, per_class: int = 26) -> TinyData:
    """A CSV of two clearly separable sentiment classes, and restaurant sentences without labels.

    26 per class leave more than 16 per class for training, so `auto` fine-tunes for one epoch
    instead of running SetFit's default 20 pair iterations (its options cannot be shrunk through
    `auto`, which passes them to whichever strategy it picks); SetFit itself is checked with
    `SMALL_OPTIONS`."""
    root.mkdir(parents=True)
    rows = [(f"the film was {words[i % len(words)]}", label)
            for i in range(per_class) for words, label in ((GOOD, "positive"), (BAD, "negative"))]
    path = root / "reviews.csv"
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    target = root / "restaurant.txt"  # another domain, one text per line, no labels
    target.write_text("".join(f"the meal was {words[i % len(words)]}\n" for i in range(per_class // 2)
                              for words in (GOOD, BAD)))
    return TinyData(path, ["a wonderful film", "a terrible film", "the meal was great"], target)


# ------------------------------------------------------------------------------------- time series
def tiny_series(root: Path, rows: int = 240) -> TinyData:
    """An hourly two-channel series (`load`, `temp`) with a daily cycle, a time column first."""
    import pandas as pd

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    daily = np.sin(2 * np.pi * t / 24)
    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
                          "load": 10 + 2 * daily + rng.normal(0, 0.2, rows),
                          "temp": 20 + 5 * np.roll(daily, 3) + rng.normal(0, 0.3, rows)})
    path = root / "series.csv"
    frame.to_csv(path, index=False)
    return TinyData(path, path)


#: one tiny data set per modality; a task of a new modality fails its checks until it is given one
# --------------------------------------------------------------------------------- boxed images
def make_boxed_images(root: Path, count: int = 12, size: tuple[int, int] = (64, 48), format: str = "voc",
                      classes=("red", "blue"), seed: int = 0) -> Path:
    """A detection folder of `count` grey images, each with one or two filled rectangles of the
    `classes`' colours (red, green, blue) as boxed objects, in `format` ("voc", "coco" or "yolo");
    every fourth image has no object (background)."""
    import json

    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    width, height = size
    root = Path(root)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(count):
        picture = Image.new("RGB", size, (128, 128, 128))
        draw = ImageDraw.Draw(picture)
        objects = []
        for _ in range(0 if i % 4 == 3 else 1 + i % 2):
            w, h = int(rng.integers(width // 4, width // 2)), int(rng.integers(height // 4, height // 2))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            label = int(rng.integers(len(classes)))
            draw.rectangle((x, y, x + w - 1, y + h - 1), fill=COLOURS[classes[label]])
            objects.append((label, (x, y, x + w, y + h)))
        name = f"img_{i:03d}.png"
        picture.save(images / name)
        records.append((name, objects))
    if format == "voc":
        (root / "annotations").mkdir(exist_ok=True)
        for name, objects in records:
            body = "".join(f"<object><name>{classes[c]}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                           f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for c, b in objects)
            (root / "annotations" / f"{Path(name).stem}.xml").write_text(
                f"<annotation><filename>{name}</filename><size><width>{width}</width><height>{height}</height>"
                f"<depth>3</depth></size>{body}</annotation>")
    elif format == "coco":
        coco = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": c} for i, c in enumerate(classes)]}
        for number, (name, objects) in enumerate(records, 1):
            coco["images"].append({"id": number, "file_name": name, "width": width, "height": height})
            for c, (x1, y1, x2, y2) in objects:
                coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": number, "iscrowd": 0,
                                            "category_id": c + 1, "bbox": [x1, y1, x2 - x1, y2 - y1]})
        (root / "annotations.json").write_text(json.dumps(coco))
    elif format == "yolo":
        (root / "labels").mkdir(exist_ok=True)
        for name, objects in records:
            lines = [f"{c} {(b[0] + b[2]) / 2 / width:.6f} {(b[1] + b[3]) / 2 / height:.6f} {(b[2] - b[0]) / width:.6f} "
                     f"{(b[3] - b[1]) / height:.6f}" for c, b in objects]
            (root / "labels" / f"{Path(name).stem}.txt").write_text("".join(line + "\n" for line in lines))
        (root / "data.yaml").write_text("names:\n" + "".join(f"  {i}: {c}\n" for i, c in enumerate(classes)))
    else:
        raise ValueError(f"format must be voc, coco or yolo, not {format!r}")
    return root


def tiny_boxes(root: Path) -> TinyData:
    """Eight 48×32 images with coloured boxes (Pascal VOC), and three of them to predict on."""
    make_boxed_images(root, count=8, size=(48, 32))
    return TinyData(root, sorted(str(p) for p in (root / "images").glob("*.png"))[:3])


TINY_DATA: dict[str, Callable[[Path], TinyData]] = {"image": tiny_images, "text": tiny_texts, "timeseries": tiny_series,
                                                    "detection": tiny_boxes}


def _white_images(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    (root / "white").mkdir()
    for i in range(10):
        pixels = np.full((32, 32, 3), 235, np.float32) + rng.normal(0, 15, (32, 32, 3))
        Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(root / "white" / f"white_{i}.png")
    return root


def _neutral_texts(root: Path) -> Path:
    words = ["okay", "average", "fine", "ordinary", "acceptable", "middling"]
    path = root / "neutral.csv"
    path.write_text("text,label\n" + "".join(f"the film was {words[i % len(words)]},neutral\n" for i in range(26)))
    return path


#: modality → maker of one class the tiny data sets lack, to grow a fitted classifier with
TINY_NEW_CLASS: dict[str, Callable[[Path], Path]] = {"image": _white_images, "text": _neutral_texts}


def tiny_new_class(modality: str, root: Path) -> Path:
    """One class the tiny data sets lack, written under `root`: white images, or neutral sentences."""
    make = TINY_NEW_CLASS.get(modality)
    if make is None:
        raise AssertionError(f"no new-class data for modality {modality!r}: add a maker to "
                             "transferkit.testing.TINY_NEW_CLASS")
    root.mkdir(parents=True)
    return make(root)


# ------------------------------------------------------------------------------- backbone batches
def _image_batch(backbone) -> tuple[Any, tuple[int, ...]]:
    import torch

    return torch.randn(2, 3, 64, 64), (2, backbone.num_features)


def _text_batch(backbone) -> tuple[Any, tuple[int, ...]]:
    batch = backbone.tokenizer(["a wonderful film", "the meal was terrible and cold"], padding=True,
                               truncation=True, max_length=16, return_tensors="pt")
    return dict(batch), (2, backbone.num_features)


def _series_batch(backbone) -> tuple[Any, tuple[int, ...]]:
    import torch

    # the time-series encoder keeps channels apart (`PatchTSTEncoder`)
    return torch.randn(2, backbone.preprocessing.lookback, 3), (2, 3, backbone.num_features)


#: modality → function(backbone) giving a batch of two inputs and the feature shape the forward pass returns
TINY_BATCHES: dict[str, Callable[[Any], tuple[Any, tuple[int, ...]]]] = {
    "image": _image_batch, "text": _text_batch, "timeseries": _series_batch}


def tiny_batch(backbone) -> tuple[Any, tuple[int, ...]]:
    """A batch of two inputs of the backbone's modality, and the feature shape its forward pass must
    return: (batch, num_features), or (batch, channels, num_features) for time series."""
    import torch

    torch.manual_seed(0)
    make = TINY_BATCHES.get(backbone.modality)
    if make is None:
        raise AssertionError(f"no tiny batch for modality {backbone.modality!r}: add one to "
                             "transferkit.testing.TINY_BATCHES")
    return make(backbone)


# ------------------------------------------------------------------------------------ small settings
#: the smallest settings the estimators accept, applied to whichever of these params an estimator has
SMALL_PARAMS: dict[str, Any] = {
    "epochs": 1, "batch_size": 4, "baseline": False, "progress": False,
    "image_size": 32, "tta": False, "max_length": 16, "lookback": 32, "horizon": 4,
}
#: the same for strategy options (applied to the strategies whose `Options` declare them)
SMALL_OPTIONS: dict[str, Any] = {"pair_iterations": 1, "max_pairs": 16, "method": "dann", "bottleneck": 8}


def small_params(task: str, strategy: str) -> dict[str, Any]:
    """Constructor params for a quick fit of `task` with `strategy`: the `SMALL_PARAMS` the estimator
    declares, and the `SMALL_OPTIONS` the strategy's options declare."""
    cls = TASKS.get(task)
    params = {k: v for k, v in SMALL_PARAMS.items() if k in cls._get_param_names()}
    options_cls = STRATEGIES.get(strategy).Options
    options = {k: v for k, v in SMALL_OPTIONS.items()
               if options_cls and k in {f.name for f in dataclasses.fields(options_cls)}}
    return {**params, "strategy": strategy, **({"strategy_options": options} if options else {})}


def default_param(task: str, name: str) -> Any:
    """The default of constructor parameter `name` of `task` (its one declaration)."""
    return inspect.signature(TASKS.get(task)).parameters[name].default
