"""Detection data as every reader returns it: images with boxes in pixels, and the problems found.

Boxes are float32 pixel corners `x1, y1, x2, y2` in the image as it decodes upright (the EXIF
orientation applied, as training and `predict` read it). Every bad annotation becomes one line in
`problems`, naming the file (and line or object) and the fix; readers skip what cannot be used and
keep the rest, and only a folder with nothing usable is an error.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ...errors import DataError
from ..images import open_rgb

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")

#: How far (pixels) a box may reach past the image border and be clipped without a word: tools
#: that count pixels from 1 (Pascal VOC) write `xmax = width` or `width + 1` for a box touching
#: the right edge, which is no mistake. A box further out is clipped and reported.
CLIP_TOLERANCE = 1.0


@dataclass
class DetectionItem:
    """One image and its objects (no objects: a background image, which is valid)."""

    image: Path
    boxes: np.ndarray  # (n, 4) float32 pixel x1, y1, x2, y2
    labels: np.ndarray  # (n,) int64 index into `DetectionData.classes`
    width: int
    height: int

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)


@dataclass
class DetectionData:
    """A read detection data set: classes, images with boxes, the splits and the problems found."""

    root: Path
    classes: list[str]
    items: list[DetectionItem]
    format: str
    splits: dict[str, list[int]]  # split name → indices into `items`
    split: dict  # how the splits were made: description, seed, fractions, where they came from
    problems: list[str] = field(default_factory=list)

    def subset(self, name: str) -> list[DetectionItem]:
        """The items of split `name` (train, val or test)."""
        return [self.items[i] for i in self.splits[name]]

    def box_counts(self, name: str | None = None) -> dict[str, int]:
        """Boxes per class in split `name` (all items when None)."""
        items = self.items if name is None else self.subset(name)
        labels = np.concatenate([it.labels for it in items]) if items else np.zeros(0, np.int64)
        return {c: int((labels == i).sum()) for i, c in enumerate(self.classes)}

    def sizes(self) -> dict[str, float]:
        """Median shorter image side (pixels) and median box size relative to its image (the square
        root of the area ratio): what an input size must keep visible."""
        sides = [min(it.width, it.height) for it in self.items]
        fractions = [float(np.sqrt((b[2] - b[0]) * (b[3] - b[1]) / (it.width * it.height)))
                     for it in self.items for b in it.boxes]
        return {"median_image_side": float(np.median(sides)) if sides else 0.0,
                "median_box_fraction": float(np.median(fractions)) if fractions else 0.0}

    def summary(self) -> dict:
        """Format, classes, images and boxes per split, background images and problem count."""
        return {
            "root": str(self.root),
            "format": self.format,
            "classes": self.classes,
            "images": {name: len(idx) for name, idx in self.splits.items()},
            "boxes": {name: self.box_counts(name) for name in self.splits},
            "counts": {name: self.box_counts(name) for name in self.splits},  # the report's per-class table (boxes)
            "background_images": sum(len(it.labels) == 0 for it in self.items),
            **self.sizes(),
            "problems": len(self.problems),
            "split": self.split["description"],
        }

    def split_record(self) -> dict:
        """How the splits were made and the images of each (relative paths), for the run to record."""
        return {**self.split, **{name: [_relative(self.items[i].image, self.root) for i in idx]
                                 for name, idx in self.splits.items()}}


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class Problems:
    """The bad-annotation lines of one read: each logged once as a warning and kept in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, where: str | Path, what: str, fix: str) -> None:
        """Record `where: what; fix` (`where` is the file, with `:line` or an object when known)."""
        line = f"{where}: {what}; {fix}"
        self.lines.append(line)
        log.warning("%s", line)


def image_size(path: Path, problems: Problems, where: str | Path | None = None) -> tuple[int, int] | None:
    """(width, height) of the image as it decodes upright, or None (with one problem line) when the
    file is missing, unreadable or truncated: decoding at reduced scale still reads every byte."""
    if not path.is_file():
        problems.add(where or path, f"image {path.name} not found" + (f" in {path.parent}" if where else ""),
                     "put the image there or remove its annotation")
        return None
    try:
        open_rgb(path, max_side=64)
    except DataError as exc:
        reason = str(exc).split(": ", 1)[-1].split(";")[0]
        problems.add(path, f"{reason}; image and its boxes skipped", "re-export the image or remove it")
        return None
    from PIL import Image

    with Image.open(path) as probe:
        width, height = probe.size
        if probe.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # stored a quarter turn from upright
            width, height = height, width
    return int(width), int(height)


def check_box(box: tuple[float, float, float, float], width: int, height: int, where: str,
              problems: Problems) -> tuple[float, float, float, float] | None:
    """The box clipped to the image, or None when it cannot be used (each with one problem line).

    Zero or negative area and boxes wholly outside the image are skipped; a box reaching more than
    `CLIP_TOLERANCE` pixels past a border is clipped and reported; within it, clipped silently.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    shown = f"box ({_n(x1)}, {_n(y1)}, {_n(x2)}, {_n(y2)})"
    if not all(np.isfinite([x1, y1, x2, y2])):
        problems.add(where, f"{shown} has a non-numeric coordinate; box skipped", "write finite pixel numbers")
        return None
    if x2 <= x1 or y2 <= y1:
        problems.add(where, f"{shown} has zero or negative area; box skipped",
                     "write x1 < x2 and y1 < y2 (corners left-top, right-bottom)")
        return None
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        problems.add(where, f"{shown} lies outside the {width}x{height} image; box skipped",
                     "fix the coordinates or remove the box")
        return None
    over = max(-x1, -y1, x2 - width, y2 - height)
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    if over > CLIP_TOLERANCE:
        problems.add(where, f"{shown} reaches {_n(over)} px outside the {width}x{height} image; clipped to it",
                     "fix the coordinates to lie inside the image")
    return cx1, cy1, cx2, cy2


def _n(value: float) -> str:
    return f"{value:g}"


@dataclass
class ReadResult:
    """What a format reader returns: the classes, the items and the annotation files of each item
    (stems, for split lists), before any split."""

    classes: list[str]
    items: list[DetectionItem]
    names: list[str] = field(default_factory=list)  # the image file name of each item
    given: dict[str, list[int]] = field(default_factory=dict)  # splits the format itself names (data.yaml)
    source: str = ""  # where `given` came from, for the split's description


def make_item(image: Path, boxes: list, labels: list, width: int, height: int) -> DetectionItem:
    """A `DetectionItem` from lists of boxes (pixel corners) and label indices."""
    return DetectionItem(image=image, boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                         labels=np.asarray(labels, np.int64), width=width, height=height)


@dataclass(frozen=True)
class FormatReader:
    """One annotation format: whether a folder holds it, and how to read it.

    `read(root, classes, problems)` returns a `ReadResult`; with `classes` given (a run's classes,
    when reading data to evaluate or extend), names outside them are reported and skipped."""

    matches: Callable[[Path], bool]
    read: Callable[[Path, "list[str] | None", Problems], ReadResult]
