"""What a strategy says about its own run, as plain blocks that the CLI and the report draw without
knowing which strategy wrote them (`Strategy.summarise`).

Text is a string or a tuple of strings and `Span`s (styled pieces); blocks are paragraphs, headings,
tables and plot specifications. Nothing here imports torch: a summary is built from a run's recorded
strategy settings alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class Span:
    """A piece of text with a style each medium draws its own way: "strong", "code", "em", "good"
    (a gain), "bad" (a loss) or "mark" (the kept row's mark)."""

    text: str
    style: str = ""


#: Text: a plain string, or pieces of which some are styled.
Text = Union[str, tuple[Union[str, Span], ...]]


def plain(text: Text) -> str:
    """`text` without its styles."""
    return text if isinstance(text, str) else "".join(p if isinstance(p, str) else p.text for p in text)


@dataclass(frozen=True)
class Paragraph:
    """A paragraph; `tone` colours it ("muted", "good", "bad" or "plain"), `verdict` makes it a callout
    that says how to read the run (coloured by its tone)."""

    text: Text
    tone: str = ""
    verdict: bool = False


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside the strategy's section."""

    text: str


@dataclass(frozen=True)
class SummaryTable:
    """Rows of text under named columns: `right` names the number columns, `highlighted` the indices
    of the rows to mark (the kept candidate). Rows stay tuples, so a test can compare them whole."""

    columns: tuple[str, ...]
    rows: list[tuple[Text, ...]]
    title: str | None = None
    right: tuple[str, ...] = ()
    highlighted: tuple[int, ...] = ()


@dataclass(frozen=True)
class ScatterPlot:
    """2-D points of groups (e.g. "source" and "target"), one panel per `(title, {group: [[x, y], ...]})`;
    each panel keeps its own axes."""

    panels: list[tuple[str, dict[str, Any]]]
    alt: str
    empty: str = ""  # said where nothing could be drawn


@dataclass(frozen=True)
class CurvePlot:
    """One line per candidate of `key` against epoch (`curves`: name → per-epoch rows), each one's
    `chosen` epoch circled, the `kept` one drawn thicker, and an optional horizontal `reference`
    (name, value) for a candidate without epochs."""

    curves: dict[str, list[dict]]
    key: str
    label: str
    chosen: dict[str, Any]
    alt: str
    kept: str | None = None
    reference: tuple[str, float] | None = None
    empty: str = ""


@dataclass(frozen=True)
class Card:
    """A headline figure: its value and what it is; `missing` when the value could not be measured."""

    value: str
    label: str
    missing: bool = False


Block = Union[Paragraph, Heading, SummaryTable, ScatterPlot, CurvePlot]


@dataclass
class StrategySummary:
    """A strategy's account of one run, for the report and for the terminal.

    The report shows `cards` before the task's own headline cards (whose labels get `card_prefix`),
    `attention` among the warnings at its top, and `report` as a section titled `title`. The CLI
    prints `lead` before the metrics tables (which it says score `scored_on`), `terminal` after the
    run's verdicts, and leaves out the notes in `covers_notes`, which the summary already says.
    """

    title: str
    report: list[Block] = field(default_factory=list)
    terminal: list[Block] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)
    card_prefix: str = ""
    attention: list[str] = field(default_factory=list)
    lead: Text | None = None
    scored_on: str | None = None
    covers_notes: tuple[str, ...] = ()


def strategy_summary(config: dict, target: dict | None = None, metrics: dict | None = None) -> StrategySummary | None:
    """The summary of a run by the strategy its config.json names (`strategy.used`), from the
    settings it recorded; None when the strategy has none to give or is not installed here.
    `target` is the run's target-data summary (config.json `run.target`), `metrics` its test metrics."""
    from ..errors import UnknownNameError
    from .registry import STRATEGIES

    strategy = config.get("strategy") if isinstance(config, dict) else None
    if not isinstance(strategy, dict) or not isinstance(strategy.get("used"), str):
        return None
    settings = strategy.get("settings")
    try:
        cls = STRATEGIES.get(strategy["used"])
    except (UnknownNameError, ImportError):  # a plug-in not installed here: the report still renders
        return None
    summarise = getattr(cls, "summarise", None)
    if summarise is None or not isinstance(settings, dict):
        return None
    return summarise(settings, target, metrics)
