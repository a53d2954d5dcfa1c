"""Classification on top of `TransferEstimator`: `ClassifierBase`, the linear head (one per label
column), `predict`, `predict_proba`, `evaluate`, and the classification metrics tables.

Growing a fitted classifier is `GrowthMixin` (`growth_hooks`); image and text classification
subclass `ClassifierBase`.
"""
from __future__ import annotations

from typing import Any, ClassVar, Iterator

import numpy as np
import torch
from torch import nn

from .._format import chunked, classification_records, classification_table
from ..backbones import Backbone
from ..errors import RunDirectoryError, TransferkitError
from ..models import TransferModel, to_device
from ..rundir import evaluation_of
from ..strategies import STRATEGIES, FitData, FitOutcome, Strategy
from ..strategies.base import strategy_class
from ..strategies.incremental import SELECTIONS
from ..strategies.registry import traits
from .base import TransferEstimator
from .growth_hooks import GrowthMixin
from .params import Interval, OneOf
from .presentation import Headline, SummaryLine, Table


class ClassifierBase(GrowthMixin, TransferEstimator):
    """Classification on top of `TransferEstimator`: a linear head, `predict`/`predict_proba`/`evaluate`.

    Subclasses implement `_proba(inputs)` (class probabilities of raw inputs) and
    `_labelled(data)` (inputs and integer labels of a labelled data source).

    Multi-task heads: with several `label_columns` the model has one linear head per column on
    the shared backbone, named after the column; `heads_` maps each head to its classes (empty for
    one head, "main"). The first column is the primary head: `classes_`, the top-level metrics and
    the transfer check are its. `predict` then returns a dict head → labels, `predict_proba` a
    dict head → probabilities, `evaluate` adds "heads" (each head's metrics) and "primary_head",
    and `_proba` / `_labelled` give dicts head → probabilities / labels.

    Parameters
    ----------
    val_fraction : float
        Validation share (classification).
    test_fraction : float
        Test share (classification).
    memory : int
        Exemplars kept per class in the run for `extend` (0: none), chosen by `memory_selection`; a run
        whose backbone stays frozen keeps the features of every example (up to 1,000 per class).
    memory_selection : {"random", "herding"}
        How exemplars are chosen: random (a fair sample, boundary cases included: what a refit head needs)
        or herding (those whose mean best matches the class mean, as iCaRL's nearest-mean classifier uses).
    label_columns : str, list or None
        Several label columns, one head each on the shared backbone: 'sentiment,domain' (a text table or an image manifest).
    task_weights : str, dict or None
        Loss weight per head: 'sentiment=1,domain=0.5' (others 1), or 'uncertainty' (learned, Kendall et al. 2018).
    """

    config_keys: ClassVar[dict[str, Any]] = {"classes": list[str]}
    memory: int
    memory_selection: str
    label_columns: str | list | None = None
    task_weights: str | dict | None = None

    heads_: dict[str, list[str]] = {}  # several label columns: head → its classes (never mutated, only replaced)
    estimate_: dict | None = None  # a cross-validated estimate of the accuracy (small data)

    def _multi_head(self) -> bool:
        """Whether this model has several heads (label columns)."""
        return len(self.heads_ or {}) > 1

    def _check_params(self, adapting: bool = False) -> Strategy:
        from ..data.multitask import parse_label_columns, parse_task_weights

        strategy = super()._check_params(adapting)
        columns = parse_label_columns(self.label_columns)
        weights = self.task_weights
        if weights not in (None, "", {}) and len(columns) < 2:
            raise TransferkitError("task_weights weigh the heads of several label columns: give label_columns "
                                   "(--label-columns a,b) too, or leave task_weights out.")
        parse_task_weights(weights, columns)
        if len(columns) > 1 and not strategy.multi_head:
            able = [n for n in STRATEGIES.names() if STRATEGIES.get(n).multi_head]
            raise TransferkitError(f"strategy {strategy.name or self.strategy!r} trains one head; with several label "
                                   f"columns use strategy {', '.join(able)}.")
        return strategy

    def _new_head(self, num_features: int) -> nn.Module:
        return nn.Linear(num_features, len(self.classes_))

    def _new_model(self, body: nn.Module, num_features: int) -> TransferModel:
        """One linear head per label column (the first is the default head), else the task's one head."""
        if not self._multi_head():
            return super()._new_model(body, num_features)
        heads = {head: nn.Linear(num_features, len(classes)) for head, classes in self.heads_.items()}
        return TransferModel(body, heads, default_head=next(iter(heads)))

    def _objectives(self) -> dict:
        """`FitData.objectives` of a multi-task model: cross-entropy per head, weighted by
        `task_weights` (or uncertainty-weighted); {} (the default head's loss) with one head."""
        from ..data.multitask import parse_task_weights
        from ..strategies.losses import Objective

        if not self._multi_head():
            return {}
        weights = parse_task_weights(self.task_weights, list(self.heads_))
        if weights == "uncertainty":
            return {h: Objective("uncertainty", 1.0, {"num_classes": len(c)}) for h, c in self.heads_.items()}
        return {h: Objective("cross-entropy", (weights or {}).get(h, 1.0), {"num_classes": len(c)})
                for h, c in self.heads_.items()}

    def _decisions(self, backbone: Backbone, outcome: FitOutcome) -> list[tuple[str, str]]:
        decisions = super()._decisions(backbone, outcome)
        if not self._multi_head():
            return decisions
        from ..data.multitask import parse_task_weights

        heads = ", ".join(f"{h} ({len(c)} classes)" for h, c in self.heads_.items())
        weights = parse_task_weights(self.task_weights, list(self.heads_))
        if not strategy_class(self.strategy_).trains_backbone:  # heads on frozen features share no loss
            how = "loss weights: none (each head is a probe fitted on its own)"
        elif weights == "uncertainty":
            learned = outcome.settings.get("learned_loss_weights") or {}
            how = "loss weights: learned by uncertainty weighting (Kendall et al. 2018)" + (
                ": " + ", ".join(f"{h} {v['weight']:.2f}" for h, v in learned.items()) if learned else "")
        else:
            how = "loss weights: " + ", ".join(f"{h} {(weights or {}).get(h, 1.0):g}" for h in self.heads_)
        first = next(iter(self.heads_))
        decisions.insert(2, (f"heads: {heads}; {how}",
                             f"one head per label column on the shared backbone; the first, {first!r}, gives the "
                             "top-level metrics and the transfer check"))
        return decisions

    def _task_config(self) -> dict:
        return {"classes": self.classes_, **({"heads": self.heads_} if self._multi_head() else {})}

    def _restore_task(self, config: dict) -> None:
        self.classes_ = config["classes"]
        heads = config.get("heads") or {}
        if not (isinstance(heads, dict) and all(isinstance(c, list) and all(isinstance(v, str) for v in c)
                                                for c in heads.values())):
            raise RunDirectoryError("config.json: 'heads' must map each head to its list of classes; the file was "
                                    "edited or is damaged, re-run `transferkit fit`.")
        self.heads_ = {str(h): list(c) for h, c in heads.items()}

    def _proba(self, inputs) -> np.ndarray:
        raise NotImplementedError

    def _labelled(self, data) -> tuple[Any, list[int], dict]:
        raise NotImplementedError

    def predict_proba(self, inputs) -> np.ndarray:
        """Class probabilities, one row per input (columns follow `classes_`)."""
        self._check_fitted()
        return self._proba(inputs)

    def predict(self, inputs) -> list[str] | dict[str, list[str]]:
        """Predicted class name of each input (a multi-task model: a dict head → class names)."""
        proba = self.predict_proba(inputs)
        if isinstance(proba, dict):
            return {head: [self.heads_[head][i] for i in p.argmax(1)] for head, p in proba.items()}
        return [self.classes_[i] for i in proba.argmax(1)]

    def evaluate(self, data=None) -> dict:
        """Metrics on the held-out test split from `fit` (data=None) or on labelled data."""
        from .metrics import classification_metrics

        self._check_fitted()
        if data is None and not hasattr(self, "data_"):
            if self.metrics_:  # a loaded run: what its fit measured (test split or CV estimate)
                return dict(self.metrics_)
            raise RuntimeError("nothing to evaluate: this model was loaded from a run without metrics.json; "
                               "pass labelled data")
        inputs, labels, extra = self._labelled(data)
        proba = self._proba(inputs)
        if isinstance(proba, dict):  # several heads: each one's metrics, the first's at the top level
            heads = {h: classification_metrics(proba[h], np.asarray(labels[h]), self.heads_[h]) for h in self.heads_}
            first = next(iter(heads))
            metrics = {**heads[first], "primary_head": first, "heads": heads, **extra}
        else:
            metrics = {**classification_metrics(proba, np.asarray(labels), self.classes_), **extra}
        if data is None:
            control = self.control_
            if control:
                from ..diagnostics import transfer_verdict

                # what the run already did, so the advice only suggests what it did not
                check = transfer_verdict(metrics["accuracy"], control["accuracy"], metrics["n"],
                                         strategy=self.strategy_, ranking=self.ranking_,
                                         suggest=self.transfer_suggestions)
                metrics["transfer"] = {**check, "control": control["model"],
                                       **({"estimate": metrics["estimate"]} if metrics.get("estimate") else {})}
            if traits(self.strategy_).unlabelled:  # an adapted run's headline is the domain it was adapted to
                from ..strategies.adapt import target_domain_metrics

                metrics["target_domain"] = target_domain_metrics(
                    self.strategy_settings_ or {}, (self.target_ or {}).get("summary"))
            self.metrics_ = metrics
        return metrics

    # ---- search hooks
    search_metric = ("val_accuracy", "maximize", "validation accuracy")

    def _validation_score(self, fit_data: FitData) -> float:
        """Accuracy (of the first head) on the validation split; a cross-validated run's out-of-fold
        accuracy; for a head refit on train + validation after choosing its C there (the linear probe),
        the validation accuracy the strategy measured before that refit."""
        estimate = self.estimate_
        if estimate:
            return float((np.asarray(estimate["proba"]).argmax(1) == np.asarray(estimate["labels"])).mean())
        settings = self.strategy_settings_ or {}
        if settings.get("examples_fitted", 0) > len(fit_data.train):  # the validation examples were trained on
            if settings.get("val_accuracy") is None:
                raise TransferkitError(f"strategy {self.strategy_} trained on the validation split and recorded no "
                                       "validation accuracy before that, so --search cannot score it.")
            return float(settings["val_accuracy"])
        if not len(fit_data.val):
            raise TransferkitError("--search scores trials on the validation split, which is empty here; "
                                   "raise --val-fraction.")
        model = self.model_.eval()
        device = next(model.parameters()).device
        correct = total = 0
        with torch.inference_mode():
            for x, y in fit_data.loader(fit_data.val, 64):
                y = y[model.default_head] if isinstance(y, dict) else y
                correct += int((model(to_device(x, device)).argmax(1).cpu() == y).sum())
                total += len(y)
        return correct / total

    # ---- report and ranking hooks (report-rank)
    report_sections = ("metrics-table", "confusion", "head-metrics")
    #: ranking the installed backbones (or the ranking's runner-up), every layer, more labelled data
    transfer_suggestions = ("rank", "runner_up", "full", "more_data")

    @classmethod
    def headline_metrics(cls, metrics: dict) -> tuple[Headline, ...]:
        # small data: every example is scored out of fold instead of a held-out test split
        scored = "examples, " + metrics["estimate"] if metrics.get("estimate") else "test examples"
        return (Headline("accuracy", "accuracy", "percent", always=True),
                Headline("macro_f1", "macro F1", ".3f", always=True),
                Headline("top5_accuracy", "top-5 accuracy", "percent"), Headline("loss", "loss", ".3f"),
                Headline("n", scored, "count"))

    # ---- parameter declarations (cli)
    param_constraints = {**TransferEstimator.param_constraints,
                         "val_fraction": Interval(0.01, 0.5), "test_fraction": Interval(0.01, 0.5),
                         "memory": Interval(0), "memory_selection": OneOf(SELECTIONS)}

    # ---- presentation hooks (cli)
    #: The input column of `predict`'s records and table ("path", "text").
    prediction_key: ClassVar[str] = "input"

    def prediction_records(self, items: Any, top_k: int) -> list[dict]:
        """{key: input, "label": best class, "top_k": [{"label", "probability"}, ...]} per input; a
        multi-task model adds "heads": {head: {"label", "top_k"}} ("label" and "top_k" are the first head's)."""
        return classification_records([str(item) for item in items], self.predict_proba(items), self.classes_,
                                      self.heads_, top_k, self.prediction_key)

    def prediction_table(self, items: Any, records: list[dict]) -> Table:
        return classification_table(self.prediction_key, records)

    def prediction_chunks(self, items: Any, size: int) -> Iterator[list]:
        """Inputs `size` at a time (each input is predicted on its own)."""
        return chunked(items, size)

    def metrics_tables(self, metrics: dict, data: str | None = None) -> tuple[list[Table], SummaryLine | None]:
        """A multi-task model's metrics: one table per head, and each head's accuracy in the summary."""
        if "heads" not in metrics:
            return super().metrics_tables(metrics, data)
        from dataclasses import replace

        tables = [replace(self.metrics_table(m, data)[0], title=f"head {head!r}: {self._metrics_title(m, data)}")
                  for head, m in metrics["heads"].items()]
        value = ", ".join(f"{head} {m['accuracy']:.3f}" for head, m in metrics["heads"].items())
        detail = "; macro-F1 " + ", ".join(f"{head} {m['macro_f1']:.3f}" for head, m in metrics["heads"].items())
        return tables, SummaryLine(f"accuracy per head on {data} (n={metrics['n']})" if data else
                                   evaluation_of(metrics).label("accuracy per head"), value, detail)

    def metrics_table(self, metrics: dict, data: str | None = None) -> tuple[Table, SummaryLine | None]:
        """Precision, recall, F1 and support per class, then accuracy and macro-F1."""
        rows = [(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
                for name, m in metrics["per_class"].items()]
        table = Table(columns=("class", "precision", "recall", "F1", "support"), rows=rows,
                      title=self._metrics_title(metrics, data), right=("precision", "recall", "F1", "support"),
                      totals=[("accuracy", "", "", f"{metrics['accuracy']:.3f}", str(metrics["n"])),
                              ("macro F1", "", "", f"{metrics['macro_f1']:.3f}", "")])
        summary = SummaryLine(f"accuracy on {data} (n={metrics['n']})" if data else
                              evaluation_of(metrics).label("accuracy"), f"{metrics['accuracy']:.3f}",
                              f", macro-F1 {metrics['macro_f1']:.3f}")
        return table, summary
