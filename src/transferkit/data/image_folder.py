"""Labelled image folders: scanning, validation and stratified train/val/test splits."""
from __future__ import annotations

import logging
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import DataError
from .images import is_image_file, is_junk, open_rgb
from .splits import stratified_carve

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class Samples:
    """Image paths and integer labels of one split."""

    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self, classes: list[str]) -> dict[str, int]:
        return {c: self.labels.count(i) for i, c in enumerate(classes)}


@dataclass
class ImageFolderData:
    """A scanned data set: classes, the three splits, how they were made and what was skipped."""

    root: Path
    classes: list[str]
    train: Samples
    val: Samples
    test: Samples
    split: dict
    skipped: list[SkippedFile]
    median_side: int

    def summary(self) -> dict:
        return {
            "root": str(self.root),
            "classes": self.classes,
            "counts": {name: getattr(self, name).counts(self.classes) for name in SPLIT_NAMES},
            "skipped": [vars(s) for s in self.skipped],
            "split": self.split["description"],
        }

    def split_record(self) -> dict:
        """Relative paths of every split, so a run records exactly which images it saw."""
        return {
            **self.split,
            **{
                name: [[str(_relative(p, self.root)), self.classes[y]] for p, y in zip(s.paths, s.labels)]
                for name in SPLIT_NAMES
                for s in [getattr(self, name)]
            },
        }


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


def _check_dir(root: Path) -> None:
    if not root.exists():
        raise DataError(f"{root}: no such directory; pass a folder with one sub-folder per class.")
    if not root.is_dir():
        raise DataError(f"{root}: is a file; pass a folder with one sub-folder per class.")
    try:
        next(root.iterdir(), None)
    except PermissionError:
        raise DataError(f"{root}: permission denied; make the folder readable.") from None


def _real(path: Path) -> str:
    return os.path.realpath(path)


def _inside(path: str, folder: str) -> bool:
    """`path` is `folder` or below it (both resolved)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def list_files(folder: Path, seen: set[str] | None = None) -> list[Path]:
    """Files under `folder` (sorted), without hidden or system junk (see `is_junk`).

    Links to folders are followed, but each real folder is read once: a link back to a folder
    already read (`seen`, the resolved paths, shared across calls) or to one above it (a loop)
    is skipped with one warning naming it, so a symlink loop cannot recurse forever.
    """
    seen = set() if seen is None else seen
    seen.add(_real(folder))
    found: list[Path] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as exc:  # an unreadable sub-folder: the rest of the data is still usable
            log.warning("skipped folder %s: %s", current, exc.strerror or exc)
            continue
        here = _real(current)
        for entry in entries:
            path = Path(entry.path)
            if is_junk(path):
                continue
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError:
                continue
            if not is_dir:
                if entry.is_file():
                    found.append(path)
                continue
            target = _real(path)
            if target in seen or _inside(here, target):
                log.warning("%s: links to %s, a folder already scanned (a symlink loop?); not followed",
                            path, target)
                continue
            seen.add(target)
            stack.append(path)
    return sorted(found)


def scan_class_folders(
    root: Path, classes: list[str] | None = None, check: bool = True, min_classes: int = 2
) -> tuple[list[str], Samples, list[SkippedFile], list[int]]:
    """Images under `root/<class>/`, checking that each decodes; bad single files are skipped.

    Returns the class names, the samples, the skipped files and the shorter side of each image.
    """
    _check_dir(root)
    inferred = classes is None
    class_dirs = []
    for p in sorted(root.iterdir()):
        if is_junk(p) or not p.is_dir():  # __MACOSX, .git, .DS_Store: archive and OS litter, not classes
            continue
        if _inside(_real(root), _real(p)):
            log.warning("%s: links to %s, which contains the data folder (a symlink loop); not a class",
                        p, _real(p))
            continue
        class_dirs.append(p)
    found = [p.name for p in class_dirs]
    if classes is None:
        if not class_dirs:
            raise DataError(
                f"{root}: no class sub-folders; put each class's images in its own folder (e.g. {root}/cat/*.jpg)."
            )
        if len(class_dirs) < min_classes:  # new data that extends a classifier may hold one class
            raise DataError(
                f"{root}: only one class ({found[0]!r}); classification needs at least two class folders."
            )
        classes = found
    else:
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DataError(
                f"{root}: class folders {unknown} were not in the training classes {classes}; "
                "remove them or retrain with them."
            )
    samples, skipped, sides = Samples(), [], []
    # every class folder counts as read from the start: a link from one class into another is
    # reported, not read twice under two labels
    seen = {_real(root), *(_real(p) for p in class_dirs)}
    for index, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        files = list_files(folder, seen)
        kept = 0
        for path in files:
            if not is_image_file(path):
                skipped.append(SkippedFile(str(path), f"not an image file (extension {path.suffix or 'none'})"))
                continue
            if check:
                try:
                    sides.append(_checked_side(path))
                except DataError as exc:
                    skipped.append(SkippedFile(str(path), str(exc).split(": ", 1)[-1]))
                    continue
            samples.paths.append(path)
            samples.labels.append(index)
            kept += 1
        if kept == 0 and inferred:
            raise DataError(
                f"{folder}: class folder has no readable images; add images or delete the folder."
            )
    for item in skipped:
        log.warning("skipped %s: %s", item.path, item.reason)
    return classes, samples, skipped, sides


def _checked_side(path: Path) -> int:
    open_rgb(path, max_side=64)  # full decode at reduced scale catches truncated files
    # header only: the original size; its shorter side, which an EXIF quarter turn leaves as it is
    with Image.open(path) as probe:
        return min(probe.size)


def load_image_folder(
    root: str | Path, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0, min_classes: int = 2
) -> ImageFolderData:
    """Scan `root` and split it.

    Layouts: `root/<class>/*` (stratified split: `test_fraction` of all images for test, then
    `val_fraction` of the rest for validation, with `seed`), or `root/train|val|test/<class>/*`
    (given splits are kept; a missing val or test split is carved from train the same way).
    """
    root = Path(root).expanduser()
    _check_dir(root)
    has_splits = (root / "train").is_dir() and any((root / s).is_dir() for s in ("val", "test"))
    if has_splits:
        classes, train, skipped, sides = scan_class_folders(root / "train", min_classes=min_classes)
        given = {"train": train}
        for name in ("val", "test"):
            if (root / name).is_dir():
                _, given[name], more, more_sides = scan_class_folders(root / name, classes)
                skipped += more
                sides += more_sides
    else:
        classes, train, skipped, sides = scan_class_folders(root, min_classes=min_classes)
        given = {"train": train}
    _check_class_sizes(given["train"], classes, root, need=1 + ("val" not in given) + ("test" not in given))

    def carve(samples: Samples, fraction: float) -> tuple[Samples, Samples]:
        keep, out = stratified_carve(samples.labels, fraction, len(classes), seed)
        pick = lambda idx: Samples([samples.paths[i] for i in idx], [samples.labels[i] for i in idx])  # noqa: E731
        return pick(keep), pick(out)

    carved = []
    if "test" not in given:
        given["train"], given["test"] = carve(given["train"], test_fraction)
        carved.append(f"test {test_fraction:.0%} of {'train' if has_splits else 'all images'}")
    if "val" not in given:
        given["train"], given["val"] = carve(given["train"], val_fraction)
        carved.append(f"validation {val_fraction:.0%} of the rest")
    if carved:
        description = f"stratified split with seed {seed}: " + ", ".join(carved)
        if has_splits:
            description = "given folders; " + description
    else:
        description = "given train/val/test folders"
    split = {"description": description, "seed": seed, "val_fraction": val_fraction,
             "test_fraction": test_fraction, "from_folders": has_splits}
    return ImageFolderData(
        root=root, classes=classes, train=given["train"], val=given["val"], test=given["test"],
        split=split, skipped=skipped, median_side=int(statistics.median(sides)) if sides else 0,
    )


def _check_class_sizes(samples: Samples, classes: list[str], root: Path, need: int) -> None:
    """Each class must leave at least one image for each split still to be carved from `samples`."""
    for index, name in enumerate(classes):
        count = samples.labels.count(index)
        if count < need:
            raise DataError(
                f"{root / name}: only {count} usable image(s); each class needs at least {need} "
                "for train/validation/test splits — add images or provide train/ val/ test/ folders."
            )
