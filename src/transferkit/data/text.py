"""Labelled text tables (CSV, TSV, JSONL, or a Hugging Face `datasets` name): reading, checks, splits."""
from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError, MissingDependencyError
from .splits import sample_per_class, stratified_carve

log = logging.getLogger(__name__)

TEXT_EXTENSIONS = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".jsonl": None, ".json": None}
TEXT_NAMES = ("text", "sentence", "sentences", "review", "content", "document", "comment", "body", "tweet",
              "utterance", "question")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "y", "intent", "topic")
SPLIT_FILES = {"train": ("train",), "val": ("val", "valid", "validation", "dev"), "test": ("test",)}


@dataclass
class TextSamples:
    """Texts and integer labels of one split (labels may be empty for unlabelled texts)."""

    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def counts(self, classes: list[str]) -> dict[str, int]:
        return {c: self.labels.count(i) for i, c in enumerate(classes)}


@dataclass
class TextTableData:
    """A labelled text data set: classes, the three splits, where they came from and how they were made."""

    root: Path
    classes: list[str]
    train: TextSamples
    val: TextSamples
    test: TextSamples
    split: dict
    columns: dict[str, str]

    def summary(self) -> dict:
        lengths = [len(t.split()) for t in self.train.texts]
        return {
            "root": str(self.root),
            "classes": self.classes,
            "counts": {name: getattr(self, name).counts(self.classes) for name in ("train", "val", "test")},
            "skipped": [],
            "split": self.split["description"],
            "columns": self.columns,
            "median_words": float(np.median(lengths)) if lengths else 0.0,
        }

    def split_record(self) -> dict:
        """Every split's texts and labels, so a run records exactly what it saw."""
        return {**self.split, **{
            name: [[t, self.classes[y]] for t, y in zip(s.texts, s.labels)]
            for name in ("train", "val", "test") for s in [getattr(self, name)]
        }}


# ----------------------------------------------------------------------------- reading
def _looks_numeric(value: str) -> bool:
    return bool(re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", str(value)))


def _read_frame(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in TEXT_EXTENSIONS:
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'}; use .csv, .tsv, .txt (tab-separated) or .jsonl.")
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path.")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty; it needs one row per text with a label column.")
    try:
        if TEXT_EXTENSIONS[suffix] is None:
            frame = pd.read_json(path, lines=suffix == ".jsonl", dtype=False)
            return frame.astype(object), True
        sep = TEXT_EXTENSIONS[suffix]
        # TSV texts carry literal quotes (SST-2, UCI sentences): quoting would swallow lines
        quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=quoting, encoding="utf-8")
        if any(_looks_numeric(c) for c in frame.columns):  # first row is data, not a header
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=quoting, header=None,
                                encoding="utf-8")
            frame.columns = [f"column_{i + 1}" for i in range(frame.shape[1])]
            return frame, False
        return frame, True
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; re-save the file as UTF-8.") from None
    except ValueError as exc:
        raise DataError(f"{path}: could not parse as {suffix[1:].upper()} ({str(exc).splitlines()[0]}).") from None


def _pick_columns(frame, path: Path, text_column: str | None, label_column: str | None,
                  need_label: bool = True) -> tuple[str, str | None]:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    for given, option in ((text_column, "--text-column"), (label_column, "--label-column")):
        if given is not None and given not in columns:
            raise DataError(f"{path}: no column {given!r} ({option}); columns found: {', '.join(columns)}.")
    lowered = {c.lower().strip(): c for c in columns}
    string_columns = [c for c in columns if not all(_looks_numeric(v) for v in frame[c].head(200))]
    if text_column is None:
        text_column = next((lowered[n] for n in TEXT_NAMES if n in lowered), None)
    if text_column is None and string_columns:
        text_column = max(string_columns, key=lambda c: frame[c].astype(str).str.len().mean())
    if text_column is None:
        raise DataError(f"{path}: no text column found among {', '.join(columns)}; name it with --text-column.")
    if label_column is None and need_label:
        label_column = next((lowered[n] for n in LABEL_NAMES if n in lowered and lowered[n] != text_column), None)
        if label_column is None:
            candidates = [c for c in columns if c != text_column and 2 <= frame[c].nunique() <= max(50, len(frame) // 5)]
            label_column = candidates[0] if len(candidates) == 1 else None
        if label_column is None:
            raise DataError(f"{path}: cannot tell which column holds the labels; columns found: "
                            f"{', '.join(columns)}; name it with --label-column.")
    return text_column, label_column


def read_text_table(path: str | Path, text_column: str | None = None, label_column: str | None = None,
                    need_label: bool = True) -> tuple[list[str], list[str] | None, dict[str, str]]:
    """Texts, label strings (None without labels) and the columns used, with row-precise errors."""
    path = Path(path).expanduser()
    frame, has_header = _read_frame(path)
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no rows.")
    text_column, label_column = _pick_columns(frame, path, text_column, label_column, need_label)
    first_line = 2 if has_header else 1

    def check(column: str, what: str, fix: str) -> list[str]:
        values = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip() for v in frame[column]]
        empty = [i for i, v in enumerate(values) if not v]
        if empty:
            raise DataError(f"{path}: line {empty[0] + first_line} has an empty {what} (column {column!r}; "
                            f"{len(empty)} row(s) in all); {fix}.")
        return values

    texts = check(text_column, "text", "remove those rows or fill them in")
    labels = check(label_column, "label", "label those rows or remove them") if label_column else None
    return texts, labels, {"text": text_column, **({"label": label_column} if label_column else {})}


def _class_order(labels: Sequence[str]) -> list[str]:
    values = sorted(set(labels))
    return sorted(values, key=float) if all(_looks_numeric(v) for v in values) else values


def _split_files(root: Path) -> dict[str, Path]:
    found = {}
    for split, stems in SPLIT_FILES.items():
        for f in sorted(root.iterdir()):
            if f.is_file() and f.stem.lower() in stems and f.suffix.lower() in TEXT_EXTENSIONS:
                found.setdefault(split, f)
    return found


def _from_hf_datasets(name: str, text_column: str | None, label_column: str | None) -> dict[str, tuple]:
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError(
            f"{name}: not a file or folder; to load it as a Hugging Face data set: pip install datasets") from None
    try:
        loaded = datasets.load_from_disk(name) if Path(name).is_dir() else datasets.load_dataset(name)
    except Exception as exc:  # hub and format errors come in many types
        raise DataError(f"{name}: could not load as a Hugging Face data set ({type(exc).__name__}).") from exc
    out = {}
    for split, stems in SPLIT_FILES.items():
        key = next((k for k in loaded if k.lower() in stems), None)
        if key is None:
            continue
        frame = loaded[key].to_pandas().astype(object)
        text_col, label_col = _pick_columns(frame, Path(name), text_column, label_column)
        if label_col and (frame[label_col].astype(str) == "-1").all():
            continue  # hidden test labels (GLUE): not usable for evaluation
        features = loaded[key].features.get(label_col)
        names = getattr(features, "names", None)
        labels = [names[int(v)] if names else str(v) for v in frame[label_col]]
        out[split] = ([str(t) for t in frame[text_col]], labels, {"text": text_col, "label": label_col})
    return out


def load_text_data(
    source: str | Path, text_column: str | None = None, label_column: str | None = None,
    val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0, shots_per_class: int | None = None,
) -> TextTableData:
    """Read labelled texts and split them.

    `source` is a table file (one stratified, seeded split into train/val/test), a folder with
    `train.*` and `dev|val|validation.*` and/or `test.*` tables (given splits kept; a folder with
    only train + dev uses dev as the test set, since GLUE-style test labels are hidden), or a
    Hugging Face `datasets` name or saved folder. With `shots_per_class`, K training examples per
    class are sampled (seeded) and nothing is held out for validation: few-shot methods choose
    their settings by cross-validation on the K examples instead.
    """
    from ..tasks.registry import looks_like_hub_name

    path = Path(source).expanduser()
    if path.is_dir() and not (path / "dataset_dict.json").is_file():
        files = _split_files(path)
        if "train" not in files:
            raise DataError(f"{path}: folder has no train.csv/.tsv/.jsonl; pass a table file or add a train split.")
        parts = {s: read_text_table(f, text_column, label_column) for s, f in files.items()}
        if "test" not in parts and "val" in parts:
            files["test"] = files.pop("val")
        origin = ", ".join(f"{s} = {f.name}" for s, f in files.items())
    elif path.exists():
        parts = {"train": read_text_table(path, text_column, label_column)}
        origin = path.name
    elif not looks_like_hub_name(str(source)):
        raise DataError(f"{path}: no such file or directory; check the path.")
    else:
        parts = _from_hf_datasets(str(source), text_column, label_column)
        if "train" not in parts:
            raise DataError(f"{source}: the Hugging Face data set has no labelled train split.")
        origin = f"Hugging Face data set {source}" + ("; its validation split is the test set" if
                                                       "test" not in parts and "val" in parts else "")
    if "test" not in parts and "val" in parts:  # GLUE-style: test labels hidden, so dev is the test set
        parts["test"] = parts.pop("val")
    classes = _class_order(parts["train"][1])
    if len(classes) < 2:
        raise DataError(f"{path}: only one label value ({classes[0]!r}); classification needs at least two classes.")
    index = {c: i for i, c in enumerate(classes)}
    splits: dict[str, TextSamples] = {}
    for name, (texts, labels, _) in parts.items():
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise DataError(f"{path}: the {name} split has labels {unknown[:5]} that train lacks; "
                            "every class needs training examples.")
        splits[name] = TextSamples(texts, [index[v] for v in labels])

    carved = []
    if "test" not in splits:
        splits["train"], splits["test"] = _carve(splits["train"], test_fraction, len(classes), seed, path)
        carved.append(f"test {test_fraction:.0%} of all rows")
    if shots_per_class:
        chosen = sample_per_class(splits["train"].labels, shots_per_class, seed)
        available = min(np.bincount(splits["train"].labels, minlength=len(classes)))
        if available < shots_per_class:
            raise DataError(f"{path}: --shots-per-class {shots_per_class} but the smallest class has only "
                            f"{available} training rows; use a smaller K.")
        t = splits["train"]
        splits["train"] = TextSamples([t.texts[i] for i in chosen], [t.labels[i] for i in chosen])
        splits["val"] = TextSamples()
        carved.append(f"{shots_per_class} training examples per class sampled, no validation split "
                      "(settings chosen by cross-validation on them)")
    elif "val" not in splits:
        splits["train"], splits["val"] = _carve(splits["train"], val_fraction, len(classes), seed, path)
        carved.append(f"validation {val_fraction:.0%} of the rest")
    description = f"{origin}" + (f"; stratified with seed {seed}: " + ", ".join(carved) if carved else "")
    split = {"description": description, "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction,
             "shots_per_class": shots_per_class}
    columns = next(iter(parts.values()))[2]
    return TextTableData(root=path, classes=classes, train=splits["train"], val=splits["val"],
                         test=splits["test"], split=split, columns=columns)


def _carve(samples: TextSamples, fraction: float, num_classes: int, seed: int, path: Path):
    smallest = int(np.bincount(samples.labels, minlength=num_classes).min())
    if smallest < 2:
        raise DataError(f"{path}: a class has only {smallest} row(s); each class needs at least 3 "
                        "for train/validation/test splits — add rows or provide train/dev files.")
    keep, out = stratified_carve(samples.labels, fraction, num_classes, seed)
    pick = lambda idx: TextSamples([samples.texts[i] for i in idx], [samples.labels[i] for i in idx])  # noqa: E731
    return pick(keep), pick(out)


# ----------------------------------------------------------------------------- batching
class TextDataset(Dataset):
    """(text, label) pairs; label -1 for unlabelled texts. Tokenisation happens per batch in `TokenCollator`."""

    def __init__(self, texts: Sequence[str], labels: Sequence[int] | None = None) -> None:
        self.texts = list(texts)
        self.labels = list(labels) if labels is not None else None

    @classmethod
    def by_length(cls, texts: Sequence[str], labels: Sequence[int] | None = None) -> tuple["TextDataset", np.ndarray]:
        """The texts sorted by length, so batches need little padding, and the order used
        (`dataset.texts[k] == texts[order[k]]`); for passes where order does not matter."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        return cls([texts[i] for i in order], None if labels is None else [labels[i] for i in order]), order

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.texts[i], (self.labels[i] if self.labels is not None else -1)


class TokenCollator:
    """Tokenises a batch of texts, padded to the batch's longest text (not `max_length`), which
    on short sentences is several times faster than fixed padding."""

    def __init__(self, tokenizer, max_length: int = 128) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, batch: list[tuple[str, int]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        texts, labels = zip(*batch)
        encoded = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
        return dict(encoded), torch.as_tensor(labels, dtype=torch.long)
