"""What the report shows about one run (`RunReport`)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunReport:
    """Everything the report shows about one run; missing pieces render as placeholders."""

    title: str
    task: str
    config: dict
    metrics: dict
    history: list[dict]
    decisions: list[tuple[str, str]]
    data_summary: dict
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)  # informational: what the run did and why
    warnings: list[str] = field(default_factory=list)  # what needs the user's attention
    examples: dict = field(default_factory=dict)  # forecasting: a few test windows to plot
    ranking: dict = field(default_factory=dict)  # backbone="auto": the candidates' transferability scores
    domain: dict = field(default_factory=dict)  # domain shift and separability before adaptation
    target: dict = field(default_factory=dict)  # adapted runs: the target data (config.json run.target)
    lineage: list[dict] = field(default_factory=list)  # extended runs: each `extend` step (config.json run.lineage)
    #: the runs this one was built from: {"path", "relation", "link"} (link: to the parent's report, or None)
    parents: list[dict] = field(default_factory=list)
    search: dict = field(default_factory=dict)  # fit --search: the study (config.json run.search)
