"""Data with several label columns (multi-task heads): text tables and image manifests.

Each label column becomes one classification head named after the column; the first column is
the primary head (its labels are what `labels` of a split or dataset hold, so code that looks at
one head's class balance, e.g. the `auto` strategy or the from-scratch control, reads it).
"""
from __future__ import annotations

import csv
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset

from ..errors import DataError
from .image_folder import ImageFolderData, Samples, SkippedFile, _checked_side
from .images import is_image_file
from .splits import stratified_carve
from .text import (MISSING_LABELS, SPLIT_FILES, TEXT_EXTENSIONS, TextSamples, TextTableData, _cells, _class_order,
                   _pick_columns, _read_frame, _refuse_missing, _row_locator, _split_files)

log = logging.getLogger(__name__)

#: Column names read as the image path of a manifest (else: the first column of image file names).
PATH_NAMES = ("path", "image", "image_path", "file", "filename", "file_name", "filepath")
MANIFEST_EXTENSIONS = {".csv": ",", ".tsv": "\t"}


def parse_label_columns(given: str | Sequence[str] | None) -> list[str]:
    """`label_columns` ("sentiment,domain" or a list) as a list of distinct head names ([] for None).

    A head is named after its column, so the name must be usable as a module name: no dots, and
    not one of `nn.ModuleDict`'s own attributes (a column called `type` or `eval` would shadow one).
    """
    from torch import nn

    if given is None or given == "" or given == []:
        return []
    names = [c.strip() for c in (given.split(",") if isinstance(given, str) else map(str, given))]
    if any(not n for n in names):
        raise DataError(f"--label-columns {given!r}: an empty column name; write e.g. sentiment,domain.")
    if len(set(names)) < len(names):
        raise DataError(f"--label-columns {given!r}: a column is named twice; name each label column once.")
    probe = nn.ModuleDict()
    for name in names:
        if "." in name or (hasattr(probe, name) and name not in probe._modules):
            raise DataError(f"--label-columns: column {name!r} cannot name a head (it contains a dot or is a reserved "
                            "name); rename the column in the data.")
    return names


def parse_task_weights(given: str | dict | None, heads: Sequence[str]) -> dict[str, float] | str | None:
    """`task_weights` as {head: weight} (fixed weights; heads not named weigh 1), "uncertainty"
    (learned, Kendall et al. 2018) or None (every head weighs 1)."""
    if given is None or given == "" or given == {}:
        return None
    if isinstance(given, str) and given.strip() == "uncertainty":
        return "uncertainty"
    if isinstance(given, str):
        pairs = [item.partition("=") for item in given.split(",")]
        if any(not sep for _, sep, _ in pairs):
            raise DataError(f"--task-weights {given!r}: write HEAD=WEIGHT pairs (e.g. sentiment=1,domain=0.5) or "
                            "'uncertainty'.")
        given = {k.strip(): v.strip() for k, _, v in pairs}
    weights = {}
    for head, value in dict(given).items():
        if head not in heads:
            raise DataError(f"--task-weights: no head {head!r}; the heads are the label columns "
                            f"{', '.join(heads)}.")
        try:
            weights[head] = float(value)
        except (TypeError, ValueError):
            raise DataError(f"--task-weights: weight {value!r} of {head!r} is not a number.") from None
        if not weights[head] > 0:
            raise DataError(f"--task-weights: weight of {head!r} must be more than 0, not {value}.")
    return weights


class MultiTargetDataset(Dataset):
    """Items of `dataset` with a dict of targets, head → class index; `labels` are the first head's
    (what strategies and diagnostics read for class balance)."""

    def __init__(self, dataset: Dataset, targets: dict[str, Sequence[int]]) -> None:
        self.dataset = dataset
        self.targets = {head: list(values) for head, values in targets.items()}

    @property
    def labels(self) -> list[int]:
        return next(iter(self.targets.values()))

    def with_transform(self, transform) -> "MultiTargetDataset":
        """The same items under another transform (image datasets)."""
        return MultiTargetDataset(self.dataset.with_transform(transform), self.targets)

    def __len__(self) -> int:
        return len(self.dataset)

    def source_files(self) -> list:
        """The wrapped dataset's files (for the on-disk feature cache), or None per item if it has none."""
        files = getattr(self.dataset, "source_files", None)
        return files() if files else [None] * len(self)

    def preprocessing_key(self) -> str | None:
        key = getattr(self.dataset, "preprocessing_key", None)
        return key() if key else None

    def target(self, index: int) -> dict[str, int]:
        return {head: values[index] for head, values in self.targets.items()}

    def __getitem__(self, index: int) -> tuple[Any, dict[str, int]]:
        x, _ = self.dataset[index]
        return x, {head: values[index] for head, values in self.targets.items()}


# ----------------------------------------------------------------------------- splits
def _strata(targets: dict[str, list[int]], need: int) -> tuple[list[int], int]:
    """Labels to stratify a split by: each combination of the heads' classes when every one has at
    least `need` rows (every head's classes then reach every split), else the first head's."""
    combos = list(zip(*targets.values()))
    index = {c: i for i, c in enumerate(sorted(set(combos)))}
    joint = [index[c] for c in combos]
    if min(np.bincount(joint)) >= need:
        return joint, len(index)
    first = next(iter(targets.values()))
    return first, max(first) + 1


def _carve_indices(targets: dict[str, list[int]], fraction: float, seed: int, source, need: int):
    strata, k = _strata(targets, need)
    smallest = int(np.bincount(strata, minlength=k).min())
    if smallest < 2:
        raise DataError(f"{source}: a class of the first label column has only {smallest} row(s); each class needs at "
                        "least 3 for train/validation/test splits — add rows or provide train/dev files.")
    return stratified_carve(strata, fraction, k, seed)


# ----------------------------------------------------------------------------- text
@dataclass
class MultiTextSamples(TextSamples):
    """Texts and, per head, a class index per text; `labels` are the first head's."""

    targets: dict[str, list[int]] = field(default_factory=dict)

    def pick(self, indices: Sequence[int]) -> "MultiTextSamples":
        return MultiTextSamples([self.texts[i] for i in indices], [self.labels[i] for i in indices],
                                {h: [t[i] for i in indices] for h, t in self.targets.items()})


@dataclass
class MultiTaskTextData(TextTableData):
    """A text table with several label columns: `heads` maps each head (label column) to its
    classes; `classes` are the first head's."""

    heads: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> dict:
        return {**super().summary(), "heads": {
            head: {"classes": classes, "counts": {s: _counts(getattr(self, s).targets.get(head, []), classes)
                                                  for s in ("train", "val", "test")}}
            for head, classes in self.heads.items()}}

    def split_record(self) -> dict:
        """Every split's texts with each head's class."""
        return {**self.split, **{
            name: [[t, {h: self.heads[h][s.targets[h][i]] for h in self.heads}] for i, t in enumerate(s.texts)]
            for name in ("train", "val", "test") for s in [getattr(self, name)]}}


def _counts(labels: Sequence[int], classes: list[str]) -> dict[str, int]:
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=len(classes)) if len(labels) else [0] * len(classes)
    return {c: int(n) for c, n in zip(classes, counts)}


def _read_multi_table(path: Path, text_column: str | None, label_columns: list[str]):
    """(texts, {column: label strings}, text column) of one table file."""
    frame, has_header = _read_frame(path)
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no rows.")
    columns = [str(c) for c in frame.columns]
    missing = [c for c in label_columns if c not in columns]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r} (--label-columns); columns found: {', '.join(columns)}.")
    rest = frame[[c for c in columns if c not in label_columns]]
    if text_column is None and rest.shape[1] == 0:
        raise DataError(f"{path}: every column is a label column; the table needs a text column too.")
    text_column, _ = _pick_columns(rest if text_column is None else frame, path, text_column, None, need_label=False)
    if text_column in label_columns:
        raise DataError(f"--text-column {text_column!r} is also a label column; give them different columns.")
    where = _row_locator(frame, path, has_header)
    texts = _cells(frame[text_column])
    _refuse_missing(path, texts, where, "text", text_column, frozenset({""}), "remove those rows or fill them in")
    labels = {}
    for column in label_columns:
        labels[column] = _cells(frame[column])
        _refuse_missing(path, labels[column], where, "label", column, MISSING_LABELS, "label those rows or remove them")
    return texts, labels, text_column


def load_multitask_text(source: str | Path, text_column: str | None, label_columns: list[str],
                        val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0) -> MultiTaskTextData:
    """A table file (or a folder with train/dev/test tables) with one text column and several label
    columns, split as `load_text_data` splits one (seeded, stratified by the label combinations
    when each has enough rows, else by the first column)."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = _split_files(path)
        if "train" not in files:
            raise DataError(f"{path}: folder has no train.csv/.tsv/.jsonl; pass a table file or add a train split.")
        if "test" not in files and "val" in files:  # GLUE-style: dev is the test set
            files["test"] = files.pop("val")
        origin = ", ".join(f"{s} = {f.name}" for s, f in files.items())
    elif path.is_file():
        files, origin = {"train": path}, path.name
    else:
        raise DataError(f"{path}: no such file or folder; --label-columns reads a CSV/TSV/JSONL table "
                        f"({', '.join(TEXT_EXTENSIONS)}) or a folder of {'/'.join(SPLIT_FILES)} tables.")
    parts = {s: _read_multi_table(f, text_column, label_columns) for s, f in files.items()}
    train_texts, train_labels, used_text = parts["train"]
    heads: dict[str, list[str]] = {}
    for column in label_columns:
        written = _class_order(train_labels[column])
        if len(written) < 2:
            raise DataError(f"{files['train']}: label column {column!r} has only one value ({written[0]!r}); each "
                            "head needs at least two classes.")
        heads[column] = written
    splits: dict[str, MultiTextSamples] = {}
    for name, (texts, labels, _) in parts.items():
        targets = {}
        for column, classes in heads.items():
            index = {c: i for i, c in enumerate(classes)}
            unknown = sorted(set(labels[column]) - set(index))
            if unknown:
                raise DataError(f"{files[name]}: column {column!r} of the {name} split has labels {unknown[:5]} that "
                                "train lacks; every class needs training examples.")
            targets[column] = [index[v] for v in labels[column]]
        splits[name] = MultiTextSamples(texts, targets[label_columns[0]], targets)
    carved = []
    for name, fraction, what in (("test", test_fraction, "test {:.0%} of all rows"),
                                 ("val", val_fraction, "validation {:.0%} of the rest")):
        if name not in splits:
            keep, out = _carve_indices(splits["train"].targets, fraction, seed, files["train"], need=3)
            splits["train"], splits[name] = splits["train"].pick(keep), splits["train"].pick(out)
            carved.append(what.format(fraction))
    description = origin + (f"; stratified with seed {seed}: " + ", ".join(carved) if carved else "")
    split = {"description": description, "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction,
             "shots_per_class": None, "label_columns": label_columns}
    return MultiTaskTextData(root=path, classes=heads[label_columns[0]], train=splits["train"], val=splits["val"],
                             test=splits["test"], split=split, columns={"text": used_text, "labels": label_columns},
                             heads=heads)


# ----------------------------------------------------------------------------- images
@dataclass
class MultiSamples(Samples):
    """Image paths and, per head, a class index per image; `labels` are the first head's."""

    targets: dict[str, list[int]] = field(default_factory=dict)

    def pick(self, indices: Sequence[int]) -> "MultiSamples":
        return MultiSamples([self.paths[i] for i in indices], [self.labels[i] for i in indices],
                            {h: [t[i] for i in indices] for h, t in self.targets.items()})


@dataclass
class MultiTaskImageData(ImageFolderData):
    """An image manifest with several label columns: `heads` maps each head to its classes."""

    heads: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> dict:
        return {**super().summary(), "heads": {
            head: {"classes": classes, "counts": {s: _counts(getattr(self, s).targets.get(head, []), classes)
                                                  for s in ("train", "val", "test")}}
            for head, classes in self.heads.items()}}

    def split_record(self) -> dict:
        record = super().split_record()
        for name in ("train", "val", "test"):
            s = getattr(self, name)
            record[name] = [[row[0], {h: self.heads[h][s.targets[h][i]] for h in self.heads}]
                            for i, row in enumerate(record[name])]
        return record


def looks_like_image_manifest(path: str | Path) -> bool:
    """A CSV/TSV whose first data rows name image files in some column (cheap: reads the head)."""
    p = Path(path).expanduser()
    if p.suffix.lower() not in MANIFEST_EXTENSIONS or not p.is_file():
        return False
    try:
        with p.open(encoding="utf-8", newline="") as f:
            rows = [row for _, row in zip(range(6), csv.reader(f, delimiter=MANIFEST_EXTENSIONS[p.suffix.lower()]))]
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    body = rows[1:]
    return bool(body) and any(all(i < len(r) and is_image_file(Path(r[i].strip())) for r in body)
                              for i in range(len(rows[0])))


def _read_manifest(path: Path):
    """(frame, path column) of an image manifest; paths are relative to the manifest's folder."""
    import pandas as pd

    sep = MANIFEST_EXTENSIONS.get(path.suffix.lower())
    if sep is None:
        raise DataError(f"{path}: an image manifest is a .csv or .tsv file (a path column and label columns).")
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path.")
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: could not parse as {path.suffix[1:].upper()} ({str(exc).splitlines()[0]}).") from None
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no rows.")
    frame.columns = [str(c).strip() for c in frame.columns]
    lowered = {c.lower(): c for c in frame.columns}
    column = next((lowered[n] for n in PATH_NAMES if n in lowered), None) or next(
        (c for c in frame.columns if all(is_image_file(Path(v.strip())) for v in frame[c].head(50))), None)
    if column is None:
        raise DataError(f"{path}: no column of image paths found among {', '.join(frame.columns)}; name it 'path'.")
    return frame, column


def manifest_label_columns(path: Path, label_columns: list[str]) -> tuple[Any, str, list[str]]:
    """(frame, path column, label columns) of a manifest: the given ones (checked), else its only
    other column."""
    frame, path_column = _read_manifest(path)
    others = [c for c in frame.columns if c != path_column]
    if label_columns:
        missing = [c for c in label_columns if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r} (--label-columns); columns found: "
                            f"{', '.join(frame.columns)}.")
        if path_column in label_columns:
            raise DataError(f"{path}: {path_column!r} holds the image paths; it cannot be a label column.")
        return frame, path_column, label_columns
    if len(others) != 1:
        raise DataError(f"{path}: cannot tell which column(s) hold the labels ({', '.join(others) or 'none'}); name "
                        "them with --label-columns.")
    return frame, path_column, others


def read_manifest_rows(path: Path, label_columns: list[str], check: bool = True):
    """The images of a manifest with each label column's values: (paths, {column: labels}, skipped,
    shorter sides, label columns). Missing or unreadable images are skipped (as a folder scan skips them)."""
    frame, path_column, label_columns = manifest_label_columns(path, label_columns)
    labels_of = {c: _cells(frame[c]) for c in label_columns}
    where = lambda i: f"line {i + 2}"  # noqa: E731  (a header line, then one row per line)
    for column, values in labels_of.items():
        _refuse_missing(path, values, where, "label", column, MISSING_LABELS, "label those rows or remove them")
    paths, kept, skipped, sides = [], [], [], []
    for i, cell in enumerate(_cells(frame[path_column])):
        file = Path(cell).expanduser()
        file = file if file.is_absolute() else path.parent / file
        if not file.is_file():
            skipped.append(SkippedFile(str(file), f"listed in {path.name} (line {i + 2}) but not found"))
            continue
        if check:
            try:
                sides.append(_checked_side(file))
            except DataError as exc:
                skipped.append(SkippedFile(str(file), str(exc).split(": ", 1)[-1]))
                continue
        paths.append(file)
        kept.append(i)
    for item in skipped:
        log.warning("skipped %s: %s", item.path, item.reason)
    if not paths:
        raise DataError(f"{path}: none of the {len(frame)} listed images could be read; check the paths (relative "
                        "to the manifest's folder).")
    return paths, {c: [v[i] for i in kept] for c, v in labels_of.items()}, skipped, sides, label_columns


def load_image_manifest(path: str | Path, label_columns: list[str], val_fraction: float = 0.1,
                        test_fraction: float = 0.2, seed: int = 0) -> ImageFolderData:
    """A CSV/TSV manifest (a column of image paths relative to it, and label columns) split like a
    folder of class folders: with one label column an ordinary `ImageFolderData`, with several a
    `MultiTaskImageData` (one head per column)."""
    path = Path(path).expanduser()
    paths, labels, skipped, sides, label_columns = read_manifest_rows(path, label_columns)
    heads = {}
    for column in label_columns:
        classes = _class_order(labels[column])
        if len(classes) < 2:
            raise DataError(f"{path}: label column {column!r} has only one value ({classes[0]!r}); classification "
                            "needs at least two classes.")
        heads[column] = classes
    targets = {c: [heads[c].index(v) for v in labels[c]] for c in label_columns}
    samples = MultiSamples(paths, targets[label_columns[0]], targets)
    splits = {}
    for name, fraction in (("test", test_fraction), ("val", val_fraction)):
        keep, out = _carve_indices(samples.targets, fraction, seed, path, need=3)
        samples, splits[name] = samples.pick(keep), samples.pick(out)
    description = (f"{path.name}; stratified split with seed {seed}: test {test_fraction:.0%} of all images, "
                   f"validation {val_fraction:.0%} of the rest")
    split = {"description": description, "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction,
             "from_folders": False, "manifest": str(path), "label_columns": label_columns}
    common = dict(root=path.parent, classes=heads[label_columns[0]], split=split, skipped=skipped,
                  median_side=int(statistics.median(sides)) if sides else 0)
    if len(label_columns) == 1:  # an ordinary single-task data set
        plain = lambda s: Samples(s.paths, s.labels)  # noqa: E731
        return ImageFolderData(train=plain(samples), val=plain(splits["val"]), test=plain(splits["test"]), **common)
    return MultiTaskImageData(train=samples, val=splits["val"], test=splits["test"], heads=heads, **common)


def index_targets(labels: dict[str, list], heads: dict[str, list[str]], source) -> dict[str, list[int]]:
    """Each head's labels (as written) as indices into that head's trained classes; a label a head was
    not trained on raises one line naming `source`."""
    targets = {}
    for head, classes in heads.items():
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(labels[head]) - set(index))
        if unknown:
            raise DataError(f"{source}: column {head!r} has labels {unknown[:5]} that are not among the trained "
                            f"classes {classes}.")
        targets[head] = [index[v] for v in labels[head]]
    return targets
