"""What a task shows in the terminal, as plain data: tasks fill these, the CLI draws them.

The presentation hooks of the task estimators (`metrics_table`, `prediction_table`, see
`TransferEstimator`) return these, so the CLI prints any task's metrics and predictions without
knowing which task it holds. Pure Python: no rich, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field


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
class Headline:
    """A one-line summary with one emphasised figure: `label value detail`
    ("test accuracy 0.812, macro-F1 0.790")."""

    label: str
    value: str
    detail: str = ""
