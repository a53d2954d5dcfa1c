"""What a task shows, as plain data: tasks fill these, the CLI and the report draw them.

The presentation hooks of the task estimators (`metrics_table`, `prediction_table`, see
`TransferEstimator`) return these, so the CLI prints any task's metrics and predictions without
knowing which task it holds. Pure Python: no rich, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .._format import Table  # noqa: F401  (re-exported: tasks fill it, the CLI draws it)


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
