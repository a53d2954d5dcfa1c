"""`TextClassifier`: a scikit-learn-style estimator over labelled text tables, built on a pretrained encoder."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..backbones import DEFAULT_TEXT_BACKBONE
from ..data import TextDataset, TextTableData, TokenCollator, load_text_data, read_text_table
from ..data.multitask import MultiTargetDataset, load_multitask_text, looks_like_image_manifest, parse_label_columns
from .._format import Streamed
from ..data.text import TextSamples, evaluation_table, iter_text_chunks
from ..errors import DataError
from ..selection.rank_backbones import RankingSource
from ..strategies import FitData
from .base import stack_outputs
from .classifier import ClassifierBase
from .params import Interval

TASK = "text-classification"


class TextClassifier(ClassifierBase):
    """Text classifier adapted from a pretrained transformers encoder (mean-pooled).

    `fit(source)` takes a CSV/TSV/JSONL table, a folder with train/dev/test tables, or a Hugging
    Face `datasets` name; `predict`, `predict_proba` take a list of strings; `evaluate` a labelled
    table (or nothing, for the held-out test split). `shots_per_class=K` trains on K sampled
    examples per class, for few-shot use and data-efficiency measurements. `label_names` names the
    labels as written in the data: "negative,positive" (in sorted label order), "0=negative,1=positive"
    or a dict; without it, names the data carries (a ClassLabel, a `label_text` column) are used.
    Predictions, metrics, config.json and the report show the names. `label_columns=["sentiment",
    "domain"]` trains one head per label column on the shared encoder (see `ClassifierBase`;
    `task_weights` weighs their losses). `backbone="auto"` ranks
    the installed encoders first; `baseline=True` also fits a TF-IDF control on the same split and
    `evaluate()` reports the transfer gain.

    Parameters
    ----------
    max_length : int, default=128
        Longest token sequence kept.
    text_column : str or None, default=None
        Column with the texts (default: detected).
    label_column : str or None, default=None
        Column with the labels (default: detected).
    label_names : str, dict, list or None, default=None
        Class names for the labels: 'negative,positive' (sorted label order) or '0=negative,1=positive'.
    shots_per_class : int or None, default=None
        Train on K sampled examples per class (few-shot).
    """

    task = TASK
    modality = "text"

    def __init__(
        self,
        backbone: str = DEFAULT_TEXT_BACKBONE,
        strategy: str = "auto",
        strategy_options: dict | None = None,
        epochs: int | None = None,
        batch_size: int = 32,
        lr: float | None = None,
        max_length: int = 128,
        text_column: str | None = None,
        label_column: str | None = None,
        label_names: str | dict | list | None = None,
        shots_per_class: int | None = None,
        label_columns: str | list | None = None,
        task_weights: str | dict | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        memory: int = 100,
        memory_selection: str = "random",
        seed: int = 0,
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
        self.batch_size = batch_size
        self.lr = lr
        self.max_length = max_length
        self.text_column = text_column
        self.label_column = label_column
        self.label_names = label_names
        self.shots_per_class = shots_per_class
        self.label_columns = label_columns
        self.task_weights = task_weights
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.memory = memory
        self.memory_selection = memory_selection
        self.seed = seed
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
    def _load_data(self, data: str | Path | TextTableData) -> None:
        columns = parse_label_columns(self.label_columns)
        label_column = self.label_column
        if len(columns) == 1:  # one label column: an ordinary single-task table
            if label_column not in (None, columns[0]):
                raise DataError(f"--label-column {label_column!r} and --label-columns {columns[0]!r} disagree; "
                                "give the label column once.")
            label_column = columns[0]
        if isinstance(data, TextTableData):
            self.data_ = data
        elif len(columns) > 1:
            for value, flag in ((self.label_column, "--label-column"), (self.label_names, "--label-names"),
                                (self.shots_per_class, "--shots-per-class")):
                if value not in (None, "", {}, []):
                    raise DataError(f"{flag} is for one label column; with --label-columns "
                                    f"{','.join(columns)} leave it out (classes are the values as written).")
            self.data_ = load_multitask_text(data, self.text_column, columns, self.val_fraction, self.test_fraction,
                                             self.seed)
        else:
            self.data_ = load_text_data(data, self.text_column, label_column, self.val_fraction, self.test_fraction,
                                        self.seed, self.shots_per_class, self.label_names)
        self.classes_ = list(self.data_.classes)
        self.heads_ = dict(getattr(self.data_, "heads", None) or {})
        self.label_names_ = dict(self.data_.label_names)
        self.warnings_ += self.data_.notes  # data problems (rare classes) need attention

    def _prepare(self, backbone):
        self.preprocessing_.max_length = min(self.max_length, self.preprocessing_.max_length)
        self.backbone_info_ = backbone.to_config()  # with the shortened max length
        return backbone

    def _fit_data(self, backbone, strategy) -> FitData:
        d = self.data_

        def dataset(samples, by_length: bool):
            if not self._multi_head():
                return (TextDataset.by_length(samples.texts, samples.labels)[0] if by_length
                        else TextDataset(samples.texts, samples.labels))
            order = np.argsort([len(t) for t in samples.texts], kind="stable") if by_length \
                else np.arange(len(samples.texts))
            texts = TextDataset([samples.texts[i] for i in order])
            return MultiTargetDataset(texts, {h: [t[i] for i in order] for h, t in samples.targets.items()})

        return FitData(
            train=dataset(d.train, False),
            # feature extraction and validation ignore order: sorted by length, batches need little padding
            train_plain=dataset(d.train, True),
            val=dataset(d.val, True),
            num_classes=len(self.classes_), collate_fn=self._collator(), modality="text",
            pretrained=backbone.meta.get("pretrained", True), objectives=self._objectives(),
        )

    def _read_target(self, unlabeled, target_labels) -> None:
        """Target texts: a list of strings, a file with one text per line, or a table (its label
        column, if any, ignored); `target_labels` a labelled table read like `evaluate`'s."""
        texts = list(unlabeled) if isinstance(unlabeled, (list, tuple)) else read_texts(Path(unlabeled))
        if not texts:
            raise DataError(f"{unlabeled}: no target texts found.")
        labelled = self._labelled(target_labels) if target_labels is not None else None
        self.target_ = {"unlabeled": texts, "labelled": labelled, "summary": {
            "unlabeled": str(unlabeled) if not isinstance(unlabeled, (list, tuple)) else f"{len(texts)} texts",
            "examples": len(texts), "labelled": str(target_labels) if target_labels is not None else None,
            "labelled_examples": len(labelled[1]) if labelled else 0}}

    def _target_datasets(self):
        t = self.target_
        labelled = t["labelled"]
        return {"unlabelled": TextDataset.by_length(t["unlabeled"])[0],
                "target_eval": TextDataset.by_length(labelled[0], labelled[1])[0] if labelled else None}

    def _decisions(self, backbone, outcome) -> list[tuple[str, str]]:
        d = self.data_
        labels = f"labels = {', '.join(map(repr, d.columns['labels']))}" if "labels" in d.columns \
            else f"label = {d.columns.get('label')!r}"
        decisions = [
            *super()._decisions(backbone, outcome),
            (f"columns: text = {d.columns['text']!r}, {labels}",
             "as given" if self.text_column or self.label_column or self.label_columns
            else "detected from the column names and contents"),
            (f"max length: {self.preprocessing_.max_length} tokens",
             "longer texts are truncated; batches are padded to their longest text"),
            ("split", d.split["description"]),
        ]
        if d.names_from:
            named = ", ".join(f"{label} = {name}" for label, name in d.label_names.items())
            decisions.insert(3, (f"class names: {named}", f"from {d.names_from}"))
        return decisions

    control_description = "TF-IDF word and character n-grams + logistic regression"

    def _plan_details(self) -> list[tuple[str, str]]:
        return [(f"max length: {self.preprocessing_.max_length} tokens", "longer texts are truncated"),
                ("split", self.data_.split["description"])]

    def _scratch_control(self, budget: float) -> dict:
        return _text_scratch_control(self, budget)

    # -------------------------------------------------------------- predict
    def _collator(self) -> TokenCollator:
        return TokenCollator(self.tokenizer_, self.preprocessing_.max_length)

    def _proba(self, inputs) -> np.ndarray:
        from torch.utils.data import DataLoader

        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if not texts:
            empty = lambda classes: np.zeros((0, len(classes)), dtype=np.float32)  # noqa: E731
            return {h: empty(c) for h, c in self.heads_.items()} if self._multi_head() else empty(self.classes_)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise DataError(f"text #{bad[0] + 1} is empty or not a string; every input must be non-empty text.")
        dataset, order = TextDataset.by_length(texts)
        loader = DataLoader(dataset, batch_size=64, collate_fn=self._collator())

        def in_input_order(logits: torch.Tensor) -> np.ndarray:
            proba = torch.softmax(logits, dim=1).numpy()
            out = np.empty_like(proba)
            out[order] = proba
            return out

        if self._multi_head():
            logits = stack_outputs(self._outputs(loader, lambda model, x: model.forward_heads(x)))
            return {head: in_input_order(logits[head]) for head in self.heads_}
        return in_input_order(torch.cat(self._outputs(loader)))

    def predict_proba(self, texts: Iterable[str]) -> np.ndarray:
        """Class probabilities, one row per text (columns follow `classes_`)."""
        return super().predict_proba(texts)

    def _labelled(self, data):
        """Test split from `fit` (data=None), else a labelled table read with the fit's columns (a
        multi-task model: labels as a dict head → class indices)."""
        if data is None:
            test = self.data_.test
            return test.texts, (test.targets if self._multi_head() else test.labels), {}
        if self._multi_head():
            return self._labelled_heads(data)
        texts, labels, _ = read_text_table(evaluation_table(data), self.text_column, self.label_column)
        # labels as written in the training data (0/1) or already as their names
        labels = [self.label_names_.get(v, v) for v in labels]
        index = {c: i for i, c in enumerate(self.classes_)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise DataError(f"{data}: labels {unknown[:5]} are not among the trained classes {self.classes_}.")
        return texts, [index[v] for v in labels], {}

    # ------------------------------------------------------------ growing (extend)
    def _read_extension(self, data):
        d = load_text_data(data, self.text_column, self.label_column, self.val_fraction, self.test_fraction,
                           self.seed, None, self.label_names, min_classes=1)
        return list(d.classes), {name: (list(s.texts), [d.classes[y] for y in s.labels])
                                 for name in ("train", "val", "test") for s in [getattr(d, name)]}

    def _examples(self, refs, labels, augment: bool) -> TextDataset:
        return TextDataset(refs, labels)

    def _collate(self) -> TokenCollator:
        return self._collator()

    def _refs(self, samples) -> list[str]:
        return list(samples.texts)

    def _dataset_refs(self, dataset) -> list[str]:
        return list(dataset.texts)

    def _data_from_splits(self, classes, splits) -> TextTableData:
        index = {c: i for i, c in enumerate(classes)}
        samples = {name: TextSamples(list(refs), [index[c] for c in names]) for name, (refs, names) in splits.items()}
        counts = ", ".join(f"{len(s)} {name}" for name, s in samples.items())
        columns = getattr(getattr(self, "data_", None), "columns", None) or \
            {"text": self.text_column or "text", "label": self.label_column or "label"}
        return TextTableData(root=Path("."), classes=list(classes), train=samples["train"], val=samples["val"],
                             test=samples["test"], columns=columns, label_names=dict(self.label_names_),
                             split={"description": f"the parent run's splits plus the new data's ({counts})",
                                    "seed": self.seed})

    def _labelled_heads(self, data):
        """Texts of a table and, per head, the class index of each (the fit's label columns)."""
        from ..data.multitask import _read_multi_table, index_targets

        path = Path(data).expanduser()
        texts, labels, _ = _read_multi_table(path, self.text_column, list(self.heads_))
        return texts, index_targets(labels, self.heads_, data), {}

    def _task_config(self) -> dict:
        return {**super()._task_config(), "label_names": self.label_names_,
                "max_length": self.preprocessing_.max_length}

    def _restore_task(self, config: dict) -> None:
        super()._restore_task(config)
        self.label_names_ = dict(config.get("label_names") or {})

    # ---- task detection (template)
    detect_order = 20  # before images: a folder holding train/test tables is a text data set

    @classmethod
    def recognise(cls, path: str | Path) -> str | None:
        """A folder with train/dev/test tables or a saved data set, a table file, or (when no such
        path exists) a Hugging Face data set name."""
        from ..data.text import SPLIT_FILES, TEXT_EXTENSIONS, looks_like_hub_name

        p = Path(path).expanduser()
        if p.is_dir():
            tables = [f for f in p.iterdir() if f.is_file() and f.suffix.lower() in TEXT_EXTENSIONS
                      and f.stem.lower() in sum(SPLIT_FILES.values(), ())]
            if tables or (p / "dataset_dict.json").is_file():
                return f"{p.name}/ holds {tables[0].name if tables else 'a saved data set'}"
            return None
        if not p.exists():
            return f"{path} is not a path: read as a Hugging Face data set name" if looks_like_hub_name(str(path)) else None
        if p.suffix.lower() in TEXT_EXTENSIONS and not looks_like_image_manifest(p):  # a manifest is images'
            return f"{p.name} is a {p.suffix[1:].upper()} table"
        return None

    # ---- report and ranking hooks (report-rank)
    def ranking_source(self) -> RankingSource:
        """The training texts for `rank_backbones`, tokenised by each candidate's own tokenizer."""
        d = self.data_

        def encode(backbone, chosen: Sequence[int], size: int | None):
            dataset, _ = TextDataset.by_length([d.train.texts[i] for i in chosen], [d.train.labels[i] for i in chosen])
            return dataset, TokenCollator(backbone.tokenizer, backbone.preprocessing.max_length), None

        return RankingSource(self.task, self.modality, d.train.labels, list(d.classes), encode)

    # ---- parameter declarations (cli)
    param_constraints = {**ClassifierBase.param_constraints, "shots_per_class": Interval(1),
                         "max_length": Interval(8)}

    # ---- presentation hooks (cli)
    option_panel = "Text"
    prediction_key = "text"

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> list[str] | Streamed:
        """The texts given as arguments, then those of `file`, read lazily in pieces (a file far
        larger than memory streams through `predict`)."""
        if file is None:
            if not inputs:
                raise DataError("nothing to predict: pass inputs as arguments or --file")
            return list(inputs)
        pieces = iter_text_chunks(file)
        first = next(pieces, [])
        if not inputs and not first:
            raise DataError(f"{file}: no texts to predict; the file is empty.")
        return Streamed(list(inputs) + first, pieces)


def read_texts(path: Path) -> list[str]:
    """Texts of a plain file (one per non-empty line) or of a table's text column (a .txt file whose
    every line holds a tab is a table without a header, as `fit` reads it: its label column is ignored)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a file of texts, one per line.")
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json"):
        return read_text_table(path, need_label=False)[0]
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; re-save the file as UTF-8.") from None
    if path.suffix.lower() == ".txt" and lines and all("\t" in line for line in lines):
        return read_text_table(path, need_label=False)[0]
    return lines


def _text_scratch_control(est: "TextClassifier", budget: float) -> dict[str, Any]:
    """TF-IDF word and character n-grams + logistic regression (C on validation): the standard
    from-scratch text classifier, strong on small data and trained in seconds (well within `budget`)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    d = est.data_
    train_x, train_y = d.train.texts, np.asarray(d.train.labels)
    best = None
    for c in (0.3, 1.0, 3.0, 10.0):
        model = make_pipeline(
            make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                       TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
            LogisticRegression(C=c, max_iter=2000))
        model.fit(train_x, train_y)
        score = model.score(d.val.texts, d.val.labels) if len(d.val) else 0.0
        if best is None or score > best[0]:
            best = (score, c, model)
    _, c, model = best
    accuracy = float(model.score(d.test.texts, d.test.labels))
    return {"model": f"TF-IDF word 1-2-grams + char 2-5-grams, logistic regression (C={c:g})", "accuracy": accuracy}
