"""What a task shows, as plain data: tasks fill these, the CLI and the report draw them.

The presentation hooks of the task estimators (`PresentationMixin`: `metrics_table`,
`prediction_table`...) return these, so the CLI prints any task's metrics and predictions without
knowing which task it holds. Pure Python: no rich, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, NamedTuple

from .._format import Table  # noqa: F401  (re-exported: tasks fill it, the CLI draws it)
from ..diagnostics.transfer_gain import GENERAL_SUGGESTIONS


@dataclass(frozen=True)
class SummaryLine:
    """A one-line summary with one emphasised figure: `label value detail`
    ("test accuracy 0.812, macro-F1 0.790")."""

    label: str
    value: str
    detail: str = ""


class Headline(NamedTuple):
    """One headline card of a run's report: `metrics[key]` shown as `format` ("percent", "count",
    or a float spec such as ".3f") under `label`; `always`: shown as "not evaluated" when the
    metric is missing (otherwise the card is left out)."""

    key: str
    label: str
    format: str
    always: bool = False


class PresentationMixin:
    """What a task estimator shows: the report's sections and headline cards, the tables `fit`,
    `evaluate` and `predict` print, and the records `predict --json` writes (see `TransferEstimator`)."""

    #: What one item `evaluate()` scores is called ("example", "window"): metrics titles count them.
    unit: ClassVar[str] = "example"

    #: The report's sections between Data and Learning curves, by name: renderers registered in
    #: `transferkit.reporting.html.SECTIONS` (this default lists the numeric test metrics).
    report_sections: ClassVar[tuple[str, ...]] = ("metric-values",)
    #: What a transfer verdict on this task may suggest: keys of `diagnostics.transfer_gain.ADVICE`
    #: (the verdict drops those the run already did or cannot do).
    transfer_suggestions: ClassVar[tuple[str, ...]] = GENERAL_SUGGESTIONS

    @classmethod
    def headline_metrics(cls, metrics: dict) -> tuple[Headline, ...]:
        """The report's headline cards for these test metrics (none by default)."""
        return ()

    #: `predict` options beyond the shared ones that this task takes (a detector's "conf" threshold and
    #: "save_images" folder); `set_prediction_options` refuses the others in one line.
    prediction_options: ClassVar[tuple[str, ...]] = ()

    def set_prediction_options(self, **given: Any) -> None:
        """Keep the `predict` options given (None: not given) for `prediction_records`; an option this
        task does not take raises `TransferkitError` naming it."""
        from ..errors import TransferkitError

        given = {k: v for k, v in given.items() if v is not None}
        unknown = sorted(set(given) - set(self.prediction_options))
        if unknown:
            flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
            raise TransferkitError(f"{flags}: not an option of a {getattr(self, 'task', '')} model's predictions "
                                   f"(it takes {', '.join('--' + k.replace('_', '-') for k in self.prediction_options) or 'none'}).")
        self.prediction_options_ = given

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> Any:
        """What `transferkit predict RUN INPUTS... [--file FILE]` predicts, read from its arguments;
        raises `TransferkitError` (one line) for inputs this task cannot take."""
        raise NotImplementedError(f"{type(self).__name__} does not define read_prediction_inputs")

    def prediction_records(self, items: Any, top_k: int) -> list[dict]:
        """Predictions of `items` (from `read_prediction_inputs`) as JSON-ready records, one per
        predicted input or step (what `predict --json` prints); `top_k` classes where that applies."""
        raise NotImplementedError(f"{type(self).__name__} does not define prediction_records")

    def prediction_table(self, items: Any, records: list[dict]) -> Table:
        """`records` as the table `transferkit predict` prints."""
        raise NotImplementedError(f"{type(self).__name__} does not define prediction_table")

    def prediction_chunks(self, items: Any, size: int) -> Iterator[Any]:
        """`items` in pieces that `prediction_records` takes one at a time, so `predict` streams
        inputs far larger than memory; one piece by default (a forecast is one series)."""
        yield items

    def metrics_table(self, metrics: dict, data: str | None = None) -> tuple[Table, SummaryLine | None]:
        """The table (and summary line, if any) `fit` and `evaluate` print for `metrics` of
        `evaluate()`: on the run's test split (data=None) or on `data`."""
        raise NotImplementedError(f"{type(self).__name__} does not define metrics_table")

    def metrics_tables(self, metrics: dict, data: str | None = None) -> tuple[list[Table], SummaryLine | None]:
        """Every table `fit` and `evaluate` print for `metrics` (one per head of a multi-task
        model) and the summary line; `metrics_table`'s one table by default."""
        table, summary = self.metrics_table(metrics, data)
        return [table], summary

    def _metrics_title(self, metrics: dict, data: str | None) -> str:
        """"test split (7 examples)", the estimate's method for a cross-validated run, or the data."""
        from .._format import counted

        scored = data or metrics.get("estimate") or "test split"
        return f"{scored} ({counted(metrics['n'], self.unit)})"
