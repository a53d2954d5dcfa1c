"""Labelled text tables (CSV, TSV, JSONL, or a Hugging Face `datasets` name): reading, checks, splits.

Batching (`TextDataset`, `TokenCollator`) lives in `text_batches`, importable from here too."""
from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import DataError, MissingDependencyError
from .splits import sample_per_class, stratified_carve
from .text_batches import TextDataset, TokenCollator  # noqa: F401 (importable from here)

log = logging.getLogger(__name__)

TEXT_EXTENSIONS = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".jsonl": None, ".json": None}
TEXT_NAMES = ("text", "sentence", "sentences", "review", "content", "document", "comment", "body", "tweet",
              "utterance", "question")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "y", "intent", "topic")
SPLIT_FILES = {"train": ("train",), "val": ("val", "valid", "validation", "dev"), "test": ("test",)}
# pandas' default missing-value markers (read_csv's `na_values`): a label spelled like this is a
# hole in the data, not a class. Texts keep them ("None" can be a sentence).
MISSING_LABELS = frozenset({"", "#n/a", "#n/a n/a", "#na", "-1.#ind", "-1.#qnan", "-nan", "1.#ind", "1.#qnan",
                            "<na>", "n/a", "na", "null", "nan", "none"})
# a column next to the labels holding their names (Hugging Face exports: label + label_text)
NAME_COLUMN_SUFFIXES = ("_text", "_name", "_names")
# a class this small next to the largest is more likely a typo or a stray value than a class
RARE_ROWS, RARE_SHARE = 5, 0.01


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
    label_names: dict[str, str] = field(default_factory=dict)  # label as written -> class name shown
    names_from: str | None = None  # where the names came from, for the decision log
    notes: list[str] = field(default_factory=list)  # warnings about the data, for the run's notes

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
    # `label_text` beside `label` names the labels: neither the texts nor the labels themselves
    name_columns = {c for c in columns for s in NAME_COLUMN_SUFFIXES
                    if c.lower().endswith(s) and c.lower()[:-len(s)] in lowered}
    string_columns = [c for c in columns if c not in name_columns
                      and not all(_looks_numeric(v) for v in frame[c].head(200))]
    if text_column is None:
        text_column = next((lowered[n] for n in TEXT_NAMES if n in lowered), None)
    if text_column is None and string_columns:
        text_column = max(string_columns, key=lambda c: frame[c].astype(str).str.len().mean())
    if text_column is None:
        raise DataError(f"{path}: no text column found among {', '.join(columns)}; name it with --text-column.")
    if label_column is None and need_label:
        label_column = next((lowered[n] for n in LABEL_NAMES if n in lowered and lowered[n] != text_column), None)
        if label_column is None:
            candidates = [c for c in columns if c != text_column and c not in name_columns
                          and 2 <= frame[c].nunique() <= max(50, len(frame) // 5)]
            label_column = candidates[0] if len(candidates) == 1 else None
        if label_column is None:
            raise DataError(f"{path}: cannot tell which column holds the labels; columns found: "
                            f"{', '.join(columns)}; name it with --label-column.")
    return text_column, label_column


def _cells(values) -> list[str]:
    """Column values as stripped strings; None, NaN and pandas' NA become ""."""
    import pandas as pd

    return ["" if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)) else str(v).strip()
            for v in values]


def _row_locator(frame, path: Path, has_header: bool):
    """Row index -> where it is in the file ("line 12"), computed only when an error needs it."""
    suffix = path.suffix.lower()
    if suffix == ".json":  # one JSON array: rows are not lines
        return lambda i: f"row {i + 1}"
    if suffix == ".jsonl":
        return lambda i: f"line {i + 1}"

    def csv_line(i: int) -> str:
        # quoted CSV fields may span lines: count their newlines so the number matches an editor's
        before = frame.iloc[:i]
        extra = sum(int(before[c].astype(str).str.count("\n").sum()) for c in before.columns) if i else 0
        return f"line {i + extra + (2 if has_header else 1)}"

    return csv_line


def _refuse_missing(source, values: list[str], where, what: str, column: str, missing: frozenset, fix: str) -> None:
    bad = [i for i, v in enumerate(values) if v.lower() in missing]
    if bad:
        value = values[bad[0]]
        kind = f"an empty {what}" if not value else f"no {what}: {value!r}"
        raise DataError(f"{source}: {where(bad[0])} has {kind} (column {column!r}; {len(bad)} row(s) in all); {fix}.")


def _names_column(frame, label_column: str, labels: list[str]) -> tuple[dict[str, str], str | None]:
    """Label -> name from a companion column (`label_text`, `label_name`), when it names each label
    one way and each name belongs to one label; else ({}, None)."""
    lowered = {str(c).lower(): c for c in frame.columns}
    for suffix in NAME_COLUMN_SUFFIXES:
        column = lowered.get(label_column.lower() + suffix)
        if column is None or column == label_column:
            continue
        names = _cells(frame[column])
        pairs = set(zip(labels, names))
        mapping = dict(pairs)
        if all(names) and len(mapping) == len(pairs) and len(set(mapping.values())) == len(mapping):
            return mapping, f"column {column!r}"
    return {}, None


def _read_table(path: str | Path, text_column: str | None, label_column: str | None, need_label: bool = True):
    """`read_text_table` plus the label names the file itself gives ({} if none) and their origin."""
    path = Path(path).expanduser()
    frame, has_header = _read_frame(path)
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no rows.")
    text_column, label_column = _pick_columns(frame, path, text_column, label_column, need_label)
    where = _row_locator(frame, path, has_header)
    texts = _cells(frame[text_column])
    _refuse_missing(path, texts, where, "text", text_column, frozenset({""}), "remove those rows or fill them in")
    labels, names, names_from = None, {}, None
    if label_column:
        labels = _cells(frame[label_column])
        _refuse_missing(path, labels, where, "label", label_column, MISSING_LABELS, "label those rows or remove them")
        names, names_from = _names_column(frame, label_column, labels)
    columns = {"text": text_column, **({"label": label_column} if label_column else {})}
    return texts, labels, columns, names, names_from


def read_text_table(path: str | Path, text_column: str | None = None, label_column: str | None = None,
                    need_label: bool = True) -> tuple[list[str], list[str] | None, dict[str, str]]:
    """Texts, label strings (None without labels) and the columns used, with row-precise errors:
    empty texts and empty or missing-value labels (`NaN`, `None`, `NA`, `null`...) are refused."""
    return _read_table(path, text_column, label_column, need_label)[:3]


def _class_order(labels: Sequence[str]) -> list[str]:
    values = sorted(set(labels))
    return sorted(values, key=float) if all(_looks_numeric(v) for v in values) else values


def evaluation_table(path: str | Path) -> Path:
    """The table `evaluate` scores for `path`: the file itself, or a folder's test table (else its
    dev/validation one, else its one table), as `fit` reads a folder of split files."""
    path = Path(path).expanduser()
    if not path.is_dir():
        return path
    found = _split_files(path)
    if "test" in found or "val" in found:
        return found.get("test") or found["val"]
    tables = [f for f in sorted(path.iterdir()) if f.is_file() and f.suffix.lower() in TEXT_EXTENSIONS]
    if len(tables) == 1:
        return tables[0]
    raise DataError(f"{path}: a folder, but no test.csv (or dev/validation table) to evaluate on"
                    + (f" among its {len(tables)} tables" if tables else "")
                    + "; pass the labelled table itself (CSV/TSV/JSONL).")


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
        import difflib

        here = Path(name).expanduser().parent
        names = [p.name for p in here.iterdir()] if here.is_dir() else []
        close = difflib.get_close_matches(Path(name).name, names, n=1, cutoff=0.7)
        hint = f"did you mean {here / close[0] if str(here) != '.' else close[0]}? " if close else "check the path; "
        raise MissingDependencyError(
            f"{name}: no such file or folder; {hint}if it is a Hugging Face data set name, loading it needs "
            "pip install datasets") from None
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
        labels = _cells(frame[label_col])
        if all(v == "-1" for v in labels):
            continue  # hidden test labels (GLUE): not usable for evaluation
        names = getattr(loaded[key].features.get(label_col), "names", None)
        where = lambda i, key=key: f"the {key} split's row {i + 1}"  # noqa: E731
        texts = _cells(frame[text_col])
        _refuse_missing(name, texts, where, "text", text_col, frozenset({""}), "remove those rows or fill them in")
        # a ClassLabel stores a missing label as -1
        _refuse_missing(name, labels, where, "label", label_col, MISSING_LABELS | ({"-1"} if names else set()),
                        "label those rows or remove them")
        mapping = {str(i): n for i, n in enumerate(names)} if names else {}
        out[split] = (texts, labels, {"text": text_col, "label": label_col}, mapping,
                      "the data set's ClassLabel names" if names else None)
    return out


def parse_label_names(given: str | dict | Sequence[str]) -> list[str] | dict[str, str]:
    """`--label-names` as a list of names (in sorted label order) or a label -> name mapping:
    "negative,positive", "0=negative,1=positive", a dict or a list."""
    if isinstance(given, dict):
        return {str(k).strip(): str(v).strip() for k, v in given.items()}
    if not isinstance(given, str):
        return [str(v).strip() for v in given]
    items = [item.strip() for item in given.split(",")]
    if not any("=" in item for item in items):
        return items
    pairs = [item.partition("=") for item in items]
    bad = next((item for item, (k, sep, v) in zip(items, pairs) if not (sep and k.strip() and v.strip())), None)
    if bad is not None:
        raise DataError(f"--label-names {given!r}: {bad!r} is not LABEL=NAME; write e.g. 0=negative,1=positive.")
    return {k.strip(): v.strip() for k, _, v in pairs}


def _name_classes(given, classes: list[str], from_data: dict[str, str], source) -> dict[str, str]:
    """Label -> class name for `classes` (labels as written, sorted): the user's names, else the data's."""
    if given is None or given == "" or given == {} or given == []:
        return {c: from_data[c] for c in classes if c in from_data}
    spec = parse_label_names(given)
    found = ", ".join(f"{c} ({from_data[c]})" if c in from_data else c for c in classes)
    if isinstance(spec, list):
        if len(spec) != len(classes):
            raise DataError(f"--label-names gives {len(spec)} name(s) ({', '.join(spec)}) but {source} has "
                            f"{len(classes)} labels ({found}); give one name per label, in that order.")
        mapping = dict(zip(classes, spec))
    else:
        alias = {**{from_data[c]: c for c in classes if c in from_data}, **{c: c for c in classes}}
        unknown = [k for k in spec if k not in alias]
        mapping = {alias[k]: v for k, v in spec.items() if k in alias}
        unnamed = [c for c in classes if c not in mapping]
        if unknown or unnamed:
            problem = f"no label {', '.join(unknown)}" if unknown else f"no name for {', '.join(unnamed)}"
            raise DataError(f"--label-names: {problem} in {source}; labels found: {found}.")
    names = list(mapping.values())
    if not all(names) or len(set(names)) < len(names):
        raise DataError(f"--label-names {given!r}: names must be non-empty and distinct (labels found: {found}).")
    return mapping


def _rare_class_notes(labels: Sequence[str], classes: list[str], names: dict[str, str], source) -> list[str]:
    """A warning naming classes with very few rows (< RARE_ROWS, or < RARE_SHARE of the largest class):
    mostly typos or stray values (`pos` among `0`/`1`) rather than real classes."""
    counts = {c: 0 for c in classes}
    for v in labels:
        counts[v] += 1
    largest = max(classes, key=counts.__getitem__)
    rare = [c for c in classes if counts[c] < max(RARE_ROWS, RARE_SHARE * counts[largest])]
    if not rare:
        return []
    shown = ", ".join(f"{names.get(c, c)!r} ({counts[c]} row{'s' * (counts[c] != 1)})" for c in rare[:5])
    shown += f" and {len(rare) - 5} more" if len(rare) > 5 else ""
    numeric = {_looks_numeric(c) for c in classes}
    hint = "the label column mixes numbers and words; " if len(numeric) == 2 else ""
    return [f"{source}: class{'es' * (len(rare) > 1)} {shown} {'have' if len(rare) > 1 else 'has'} very few rows "
            f"next to {names.get(largest, largest)!r} ({counts[largest]} rows); {hint}if a label is a typo or a stray "
            "value, fix or remove those rows, otherwise add examples."]


def load_text_data(
    source: str | Path, text_column: str | None = None, label_column: str | None = None,
    val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0, shots_per_class: int | None = None,
    label_names: str | dict | Sequence[str] | None = None, min_classes: int = 2,
) -> TextTableData:
    """Read labelled texts, name their classes and split them.

    `source` is a table file (one stratified, seeded split into train/val/test), a folder with
    `train.*` and `dev|val|validation.*` and/or `test.*` tables (given splits kept; a folder with
    only train + dev uses dev as the test set, since GLUE-style test labels are hidden), or a
    Hugging Face `datasets` name or saved folder. With `shots_per_class`, K training examples per
    class are sampled (seeded) and nothing is held out for validation: few-shot methods choose
    their settings by cross-validation on the K examples instead.

    Classes are the training labels, sorted (numerically when all are numbers), and named by
    `label_names` (names in that order, or a label -> name mapping) or else by the data (a
    ClassLabel's names, a `label_text` column). Classes with very few rows are warned about
    (logged and kept in `notes`).
    """
    path = Path(source).expanduser()
    if path.is_dir() and not (path / "dataset_dict.json").is_file():
        files = _split_files(path)
        if "train" not in files:
            raise DataError(f"{path}: folder has no train.csv/.tsv/.jsonl; pass a table file or add a train split.")
        parts = {s: _read_table(f, text_column, label_column) for s, f in files.items()}
        train_source = files["train"]
        if "test" not in parts and "val" in parts:
            files["test"] = files.pop("val")
        origin = ", ".join(f"{s} = {f.name}" for s, f in files.items())
    elif path.exists():
        parts = {"train": _read_table(path, text_column, label_column)}
        origin, train_source = path.name, path
    elif not looks_like_hub_name(str(source)):
        raise DataError(f"{path}: no such file or directory; check the path.")
    else:
        parts = _from_hf_datasets(str(source), text_column, label_column)
        if "train" not in parts:
            raise DataError(f"{source}: the Hugging Face data set has no labelled train split.")
        train_source = source
        origin = f"Hugging Face data set {source}" + ("; its validation split is the test set" if
                                                       "test" not in parts and "val" in parts else "")
    if "test" not in parts and "val" in parts:  # GLUE-style: test labels hidden, so dev is the test set
        parts["test"] = parts.pop("val")
    written = _class_order(parts["train"][1])
    if len(written) < min_classes:  # one class is enough for new data that extends a classifier
        raise DataError(f"{train_source}: only one label value ({written[0]!r}); classification needs at least two "
                        "classes.")
    from_data, names_from = {}, None
    for part in parts.values():
        for label, name in part[3].items():
            from_data.setdefault(label, name)
        names_from = names_from or part[4]
    names = _name_classes(label_names, written, from_data, train_source)
    names_from = "--label-names" if names and label_names else names_from if names else None
    classes = [names.get(c, c) for c in written]
    index = {c: i for i, c in enumerate(written)}
    splits: dict[str, TextSamples] = {}
    for name, (texts, labels, *_) in parts.items():
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise DataError(f"{path}: the {name} split has labels {unknown[:5]} that train lacks; "
                            "every class needs training examples.")
        splits[name] = TextSamples(texts, [index[v] for v in labels])
    notes = _rare_class_notes(parts["train"][1], written, names, train_source)
    for note in notes:
        log.warning(note)

    carved = []
    if "test" not in splits:
        splits["train"], splits["test"] = _carve(splits["train"], test_fraction, classes, seed, path)
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
        splits["train"], splits["val"] = _carve(splits["train"], val_fraction, classes, seed, path)
        carved.append(f"validation {val_fraction:.0%} of the rest")
    description = f"{origin}" + (f"; stratified with seed {seed}: " + ", ".join(carved) if carved else "")
    split = {"description": description, "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction,
             "shots_per_class": shots_per_class}
    columns = next(iter(parts.values()))[2]
    return TextTableData(root=path, classes=classes, train=splits["train"], val=splits["val"],
                         test=splits["test"], split=split, columns=columns, label_names=names,
                         names_from=names_from, notes=notes)


def _carve(samples: TextSamples, fraction: float, classes: list[str], seed: int, path: Path):
    counts = np.bincount(samples.labels, minlength=len(classes))
    smallest = int(counts.argmin())
    if counts[smallest] < 2:
        raise DataError(f"{path}: class {classes[smallest]!r} has only {counts[smallest]} row(s); each class needs "
                        "at least 3 for train/validation/test splits — add rows or provide train/dev files.")
    keep, out = stratified_carve(samples.labels, fraction, len(classes), seed)
    pick = lambda idx: TextSamples([samples.texts[i] for i in idx], [samples.labels[i] for i in idx])  # noqa: E731
    return pick(keep), pick(out)


def looks_like_hub_name(text: str) -> bool:
    """`glue` or `user/data-set` (a hub name), not `./x`, `/abs/x`, `a/b/c` or `x.csv` (a mistyped path)."""
    import re

    if "/" in text and Path(text.split("/", 1)[0]).is_dir():  # data/gren: a folder here, so a mistyped path
        return False
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", text)) and not Path(text).suffix


#: Rows read at a time when a table of texts is streamed (`iter_text_chunks`).
STREAM_ROWS = 10_000


def iter_text_chunks(path: str | Path, text_column: str | None = None,
                     rows: int = STREAM_ROWS) -> Iterator[list[str]]:
    """The texts of a CSV/TSV/JSONL table (its text column, chosen as `read_text_table` chooses it
    from the first rows) or of a plain file (one per non-empty line), `rows` at a time: a file far
    larger than memory is read in pieces (pandas' `chunksize`). Empty texts raise one line naming
    the line; a JSON array (one document) is read whole."""
    import pandas as pd

    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a file of texts, one per line.")
    if suffix == ".json":
        yield read_text_table(path, text_column, need_label=False)[0]
        return
    if suffix == ".txt" and not _tab_table(path):
        yield from _plain_lines(path, rows)
        return
    if suffix not in TEXT_EXTENSIONS:
        yield from _plain_lines(path, rows)
        return
    first, has_header = _read_frame_head(path, rows)
    column, _ = _pick_columns(first, path, text_column, None, need_label=False)
    position = list(first.columns).index(column)
    try:
        if suffix == ".jsonl":
            reader = pd.read_json(path, lines=True, dtype=False, chunksize=rows)
        else:
            sep = TEXT_EXTENSIONS[suffix]
            reader = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8", chunksize=rows,
                                 quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL,
                                 header=0 if has_header else None)
        done = 0
        with reader:
            for frame in reader:
                texts = _cells(frame.iloc[:, position] if suffix != ".jsonl" else frame[column])
                empty = next((i for i, t in enumerate(texts) if not t), None)
                if empty is not None:
                    where = f"line {done + empty + (2 if has_header else 1)}"
                    raise DataError(f"{path}: {where} has an empty text in column {column!r}; remove those rows "
                                    "or fill them in.")
                done += len(texts)
                yield texts
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; re-save the file as UTF-8.") from None


def _read_frame_head(path: Path, rows: int):
    """The first `rows` rows (as `_read_frame` reads the whole file) and whether there is a header."""
    import pandas as pd

    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty; it needs one text per row.")
    try:
        if suffix == ".jsonl":
            with pd.read_json(path, lines=True, dtype=False, chunksize=rows) as reader:
                return next(iter(reader)).astype(object), True
        sep = TEXT_EXTENSIONS[suffix]
        quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=quoting, encoding="utf-8",
                            nrows=rows)
        if any(_looks_numeric(c) for c in frame.columns):  # first row is data, not a header
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=quoting, header=None,
                                encoding="utf-8", nrows=rows)
            frame.columns = [f"column_{i + 1}" for i in range(frame.shape[1])]
            return frame, False
        return frame, True
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; re-save the file as UTF-8.") from None


def _tab_table(path: Path, probe: int = 200) -> bool:
    """A .txt file whose first lines all hold a tab is a table without a header (as `fit` reads it)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [line for line in (f.readline() for _ in range(probe)) if line.strip()]
    return bool(lines) and all("\t" in line for line in lines)


def _plain_lines(path: Path, rows: int) -> Iterator[list[str]]:
    piece: list[str] = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    piece.append(line.strip())
                if len(piece) >= rows:
                    yield piece
                    piece = []
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; re-save the file as UTF-8.") from None
    if piece:
        yield piece
