"""`TextClassifier`: a scikit-learn-style estimator over labelled text tables, built on a pretrained encoder."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from ..backbones import DEFAULT_TEXT_BACKBONE
from ..data import TextDataset, TextTableData, TokenCollator, load_text_data, read_text_table
from ..errors import DataError
from ..strategies import FitData
from .base import ClassifierBase
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
    Predictions, metrics, config.json and the report show the names. `backbone="auto"` ranks
    the installed encoders first; `baseline=True` also fits a TF-IDF control on the same split and
    `evaluate()` reports the transfer gain.

    Parameters
    ----------
    backbone : str, default=DEFAULT_TEXT_BACKBONE
        Registered name, hub model name, a run directory, or 'auto' (rank the installed backbones
        and fine-tune the best; default: the task's offline default).
    strategy : str, default="auto"
        How to adapt the backbone (see `transferkit list strategies`).
    strategy_options : dict or None, default=None
        The strategy's own knobs, e.g. {"layer_decay": 0.7} (the CLI's repeatable --option KEY=VALUE).
    epochs : int or None, default=None
        Training epochs (default: chosen from data size).
    batch_size : int, default=32
        Batch size (default: the task's).
    lr : float or None, default=None
        Peak learning rate of the top layer group.
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
    val_fraction : float, default=0.1
        Validation share (classification).
    test_fraction : float, default=0.2
        Test share (classification).
    seed : int, default=0
        Random seed of the split, the weights of new layers and the order of training batches.
    run_dir : str, Path or None, default=None
        The run directory; checkpoints go to its checkpoints/ folder while fitting (the CLI's --out).
    resume : bool, default=False
        Continue an interrupted run from its last checkpoint.
    progress : bool, default=True
        Show progress bars (the CLI's --quiet turns them off).
    baseline : bool, default=True
        Also train a from-scratch control on the same split and report the transfer gain (negative
        transfer is flagged).
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
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        run_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        baseline: bool = True,
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
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.run_dir = run_dir
        self.resume = resume
        self.progress = progress
        self.baseline = baseline

    def fit(self, data: str | Path | TextTableData) -> "TextClassifier":
        """Read and split `data`, load the encoder, adapt it with the chosen strategy; returns self."""
        strategy = self._check_params()
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        self.data_ = data if isinstance(data, TextTableData) else load_text_data(
            data, self.text_column, self.label_column, self.val_fraction, self.test_fraction, self.seed,
            self.shots_per_class, self.label_names)
        self.classes_ = list(self.data_.classes)
        self.label_names_ = dict(self.data_.label_names)
        loaded = time.perf_counter()
        backbone = self._load_backbone()
        self.preprocessing_.max_length = min(self.max_length, self.preprocessing_.max_length)
        self.backbone_info_ = backbone.to_config()
        model = self._new_model(backbone.model, backbone.num_features)
        d = self.data_
        fit_data = FitData(
            train=TextDataset(d.train.texts, d.train.labels),
            # feature extraction and validation ignore order: sorted by length, batches need little padding
            train_plain=TextDataset.by_length(d.train.texts, d.train.labels)[0],
            val=TextDataset.by_length(d.val.texts, d.val.labels)[0],
            num_classes=len(self.classes_), collate_fn=self._collator(), modality="text",
            pretrained=backbone.meta.get("pretrained", True),
        )
        self._diagnose_domain(backbone, fit_data)
        outcome = self._adapt(strategy, model, fit_data, self._settings(), start, loaded)
        self._control(self.timings_.get("total fit", 0.0))
        self.warnings_ = list(d.notes) + self.warnings_  # data problems (rare classes) need attention
        self.decisions_ = [
            self._backbone_decision(backbone),
            self._strategy_decision(outcome),
            (f"columns: text = {d.columns['text']!r}, label = {d.columns.get('label')!r}",
             "as given" if self.text_column or self.label_column else "detected from the column names and contents"),
            (f"max length: {self.preprocessing_.max_length} tokens",
             "longer texts are truncated; batches are padded to their longest text"),
            ("split", d.split["description"]),
        ]
        if d.names_from:
            named = ", ".join(f"{label} = {name}" for label, name in d.label_names.items())
            self.decisions_.insert(3, (f"class names: {named}", f"from {d.names_from}"))
        return self

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
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise DataError(f"text #{bad[0] + 1} is empty or not a string; every input must be non-empty text.")
        dataset, order = TextDataset.by_length(texts)
        loader = DataLoader(dataset, batch_size=64, collate_fn=self._collator())
        proba = torch.softmax(torch.cat(self._outputs(loader)), dim=1).numpy()
        out = np.empty_like(proba)
        out[order] = proba
        return out

    def predict_proba(self, texts: Iterable[str]) -> np.ndarray:
        """Class probabilities, one row per text (columns follow `classes_`)."""
        return super().predict_proba(texts)

    def _labelled(self, data):
        """Test split from `fit` (data=None), else a labelled table read with the fit's columns."""
        if data is None:
            return self.data_.test.texts, self.data_.test.labels, {}
        texts, labels, _ = read_text_table(data, self.text_column, self.label_column)
        # labels as written in the training data (0/1) or already as their names
        labels = [self.label_names_.get(v, v) for v in labels]
        index = {c: i for i, c in enumerate(self.classes_)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise DataError(f"{data}: labels {unknown[:5]} are not among the trained classes {self.classes_}.")
        return texts, [index[v] for v in labels], {}

    def _task_config(self) -> dict:
        return {**super()._task_config(), "label_names": self.label_names_,
                "max_length": self.preprocessing_.max_length}

    def _restore_task(self, config: dict) -> None:
        super()._restore_task(config)
        self.label_names_ = dict(config.get("label_names") or {})

    # ---- parameter declarations (cli)
    param_constraints = {**ClassifierBase.param_constraints, "shots_per_class": Interval(1),
                         "max_length": Interval(8)}

    # ---- presentation hooks (cli)
    option_panel = "Text"
    prediction_key = "text"

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> list[str]:
        """The texts given as arguments, then those of `file`."""
        texts = list(inputs) + (read_texts(file) if file is not None else [])
        if not texts:
            raise DataError("nothing to predict: pass inputs as arguments or --file")
        return texts


def read_texts(path: Path) -> list[str]:
    """Texts of a plain file (one per non-empty line) or of a table's text column."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a file of texts, one per line.")
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json"):
        return read_text_table(path, need_label=False)[0]
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; re-save the file as UTF-8.") from None


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
