"""Which annotation format a folder holds, and reading it into a split `DetectionData`.

Formats are registered with typed metadata (`DetectionFormatInfo`): a new format is one module
with a `FormatReader` and one `declare` line here, never a branch in the loader.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..._registry import Info, Registry
from ...errors import DataError
from .base import SPLIT_NAMES, DetectionData, FormatReader, Problems, ReadResult


@dataclasses.dataclass(frozen=True, kw_only=True)
class DetectionFormatInfo(Info):
    """What the registry knows about an annotation format before reading any file."""

    layout: str  # what a folder of this format holds, shown when no format matches


DETECTION_FORMATS: Registry[FormatReader, DetectionFormatInfo] = Registry(
    "detection format", info=DetectionFormatInfo)

_PACKAGE = __name__.rpartition(".")[0]
# tried in this order: a folder with a COCO file beside VOC XML is read as COCO
DETECTION_FORMATS.declare("coco", f"{_PACKAGE}.coco:FORMAT", DetectionFormatInfo(
    description="COCO JSON: boxes [x, y, w, h] in pixels, categories by id",
    layout="annotations.json (or instances*.json) beside the images"))
DETECTION_FORMATS.declare("voc", f"{_PACKAGE}.voc:FORMAT", DetectionFormatInfo(
    description="Pascal VOC XML: one file per image, corner boxes in pixels",
    layout="images/ and annotations/*.xml"))
DETECTION_FORMATS.declare("yolo", f"{_PACKAGE}.yolo:FORMAT", DetectionFormatInfo(
    description="YOLO text: one 'class cx cy w h' line per box, normalised to 0-1",
    layout="images/, labels/*.txt and data.yaml"))
_ORDER = ("coco", "voc", "yolo")


def _format_order() -> list[str]:
    return [n for n in _ORDER if n in DETECTION_FORMATS] + [n for n in DETECTION_FORMATS.names() if n not in _ORDER]


def _matching(folder: Path) -> str | None:
    return next((name for name in _format_order() if DETECTION_FORMATS.get(name).matches(folder)), None)


def _check_dir(root: Path) -> None:
    if not root.exists():
        raise DataError(f"{root}: no such directory; pass a folder of images with annotations.")
    if not root.is_dir():
        raise DataError(f"{root}: is a file; pass the folder that holds the images and annotations.")


def detect_format(path: str | Path) -> str:
    """The name of the annotation format in folder `path` (or in its `train/` sub-folder)."""
    root = Path(path).expanduser()
    _check_dir(root)
    found = _matching(root) or ((root / "train").is_dir() and _matching(root / "train"))
    if not found:
        layouts = "; ".join(f"{e.name}: {e.info.layout}" for e in map(DETECTION_FORMATS.entry, _format_order()))
        raise DataError(f"{root}: no detection annotations found; lay the folder out as one of {layouts}.")
    return found


def load_detection(path: str | Path, classes: list[str] | None = None, val_fraction: float = 0.1,
                   test_fraction: float = 0.2, seed: int = 0, format: str | None = None) -> DetectionData:
    """Read a detection data set and split it by image.

    Splits come from `train/ val/ test/` sub-folders (each in the same format), else from split
    lists beside the data (`train.txt`, `val.txt`, `test.txt`: one image name or stem per line),
    else a seeded random split (`test_fraction` of the images, then `val_fraction` of the rest).
    A missing val (or test) split is carved from train with `seed`. Bad annotations are skipped
    with one line each in `problems`; a folder with no usable image or box raises `DataError`.
    """
    root = Path(path).expanduser()
    name = format or detect_format(root)
    reader = DETECTION_FORMATS.get(name)
    problems = Problems()
    split_dirs = [s for s in SPLIT_NAMES if (root / s).is_dir()] if not reader.matches(root) else []
    if split_dirs:
        if "train" not in split_dirs:
            raise DataError(f"{root}: split folders {split_dirs} but no train/; add train/ or merge the folders.")
        result = reader.read(root / "train", classes, problems)
        items, given = list(result.items), {"train": list(range(len(result.items)))}
        for split in split_dirs[1:]:
            more = reader.read(root / split, result.classes, problems)
            given[split] = list(range(len(items), len(items) + len(more.items)))
            items += more.items
        result = ReadResult(result.classes, items)
        source = f"given {'/'.join(split_dirs)} folders"
    else:
        result = reader.read(root, classes, problems)
        given, source = _split_lists(root, result, problems)
        if not given and result.given:
            given, source = result.given, result.source
    _check_usable(root, result, given)
    splits, description = _complete_splits(given, len(result.items), val_fraction, test_fraction, seed, source)
    if not any(len(result.items[i].labels) for i in splits["train"]):
        raise DataError(f"{root}: the training split has no boxes; annotate some of its images.")
    record = {"description": description, "seed": seed, "val_fraction": val_fraction,
              "test_fraction": test_fraction, "source": source}
    return DetectionData(root=root, classes=result.classes, items=result.items, format=name, splits=splits,
                         split=record, problems=problems.lines)


def _check_usable(root: Path, result: ReadResult, given: dict) -> None:
    if not result.items:
        raise DataError(f"{root}: no usable image (see the problems above); fix the annotations or images.")
    if not any(len(it.labels) for it in result.items):
        raise DataError(f"{root}: no usable box in {len(result.items)} image(s); annotate objects "
                        "(see the problems above for boxes that were skipped).")
    if not result.classes:
        raise DataError(f"{root}: no class names; name the objects' classes in the annotations.")


def _split_lists(root: Path, result: ReadResult, problems: Problems) -> tuple[dict[str, list[int]], str]:
    """Splits named by `train.txt`/`val.txt`/`test.txt` (image names or stems), when present."""
    lists = {s: root / f"{s}.txt" for s in SPLIT_NAMES if (root / f"{s}.txt").is_file()}
    if not lists:
        return {}, ""
    lookup: dict[str, int] = {}
    for i, item in enumerate(result.items):
        rel = item.image.relative_to(root).as_posix() if item.image.is_relative_to(root) else item.image.name
        for key in (item.image.name, item.image.stem, rel):
            lookup.setdefault(key, i)
    given, taken = {}, {}
    for split, file in lists.items():
        given[split] = []
        for number, line in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            index = lookup.get(entry, lookup.get(Path(entry).name, lookup.get(Path(entry).stem)))
            if index is None:
                problems.add(f"{file}:{number}", f"{entry!r} names no usable image; line skipped",
                             "list an image of the data set (name or stem), or fix that image's problem above")
            elif index in taken:
                problems.add(f"{file}:{number}", f"{entry!r} is already in {taken[index]}; kept there",
                             "list each image in one split")
            else:
                taken[index] = file.name
                given[split].append(index)
    if "train" not in given:  # the images no list names form the training split
        given["train"] = [i for i in range(len(result.items)) if i not in taken]
    return given, "split lists " + ", ".join(f.name for f in lists.values())


def _complete_splits(given: dict[str, list[int]], n: int, val_fraction: float, test_fraction: float, seed: int,
                     source: str) -> tuple[dict[str, list[int]], str]:
    """All three splits: the given ones kept, missing ones carved (seeded) from train."""
    rng = np.random.default_rng(seed)
    splits = {k: sorted(v) for k, v in given.items()}
    train = splits.get("train", list(range(n)))
    carved = []
    for split, fraction in (("test", test_fraction), ("val", val_fraction)):
        if split in splits:
            continue
        size = max(1, round(fraction * len(train)))
        if len(train) - size < 1:
            raise DataError(f"{len(train)} training image(s) cannot also give a {split} split; add images or "
                            f"give {split}.txt / a {split}/ folder.")
        order = rng.permutation(train)
        splits[split], train = sorted(order[:size].tolist()), sorted(order[size:].tolist())
        carved.append(f"{split} {fraction:.0%} of " + ("the rest" if carved else "train" if source else "the images"))
    splits["train"] = train
    description = ", ".join(filter(None, [source, carved and f"seeded split by image with seed {seed}: "
                                          + ", ".join(carved)]))
    return {s: splits[s] for s in SPLIT_NAMES}, description
