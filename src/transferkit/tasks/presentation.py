"""What a task shows, as plain data: tasks fill these, the CLI and the report draw them.

The presentation hooks of the task estimators (`metrics_table`, `prediction_table`, see
`TransferEstimator`) return these, so the CLI prints any task's metrics and predictions without
knowing which task it holds. Pure Python: no rich, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True)
class Table:
    """Rows of text under named columns; `right` names the columns aligned right (numbers) and
    `totals` are summary rows drawn in bold below a rule (accuracy and macro-F1 under the classes)."""

    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    title: str | None = None
    right: tuple[str, ...] = ()
    totals: list[tuple[str, ...]] = field(default_factory=list)


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
