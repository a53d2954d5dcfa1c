"""Any strategy's own summary (`transferkit.strategies.summary`) drawn as HTML: its paragraphs,
headings, tables and plots, in the order the strategy gives them."""
from __future__ import annotations

from html import escape

from ...strategies.summary import (Block, Card, CurvePlot, Heading, Paragraph, ScatterPlot, Span, StrategySummary,
                                   SummaryTable, Text)
from .. import plots
from .blocks import _e, _plot, _table

#: how each `Span` style is drawn: (opening, closing) markup
_STYLES = {"strong": ("<strong>", "</strong>"), "code": ("<code>", "</code>"), "em": ("<em>", "</em>"),
           "good": ('<span class="good">', "</span>"), "bad": ('<span class="bad">', "</span>"),
           "mark": ('<span class="kept-mark">', "</span>")}


def text(value: Text) -> str:
    """`value` as escaped HTML, its styled pieces marked up (an unknown style is drawn plain)."""
    if isinstance(value, str):
        return escape(value, quote=False)
    out = []
    for piece in value:
        if isinstance(piece, Span):
            opening, closing = _STYLES.get(piece.style, ("", ""))
            out.append(f"{opening}{escape(piece.text, quote=False)}{closing}")
        else:
            out.append(escape(piece, quote=False))
    return "".join(out)


def card(spec: Card) -> str:
    """A headline card; a value that could not be measured is drawn muted."""
    return (f'<div class="card"><div class="{"big na" if spec.missing else "big"}">{_e(spec.value)}</div>'
            f'<div class="label">{_e(spec.label)}</div></div>')


def _paragraph(p: Paragraph) -> str:
    classes = " ".join(filter(None, ["verdict" if p.verdict else "", p.tone]))
    return f'<p class="{classes}">{text(p.text)}</p>' if classes else f"<p>{text(p.text)}</p>"


def _summary_table(t: SummaryTable) -> str:
    right = [i for i, c in enumerate(t.columns) if c in t.right]
    numeric_from = min(right) if right and right == list(range(min(right), len(t.columns))) else len(t.columns)
    rows = [[text(cell) for cell in row] for row in t.rows]
    classes = ["kept" if i in t.highlighted else "" for i in range(len(rows))]
    table = _table([_e(c) for c in t.columns], rows, numeric_from=numeric_from, row_classes=classes)
    return (f"<h3>{_e(t.title)}</h3>" if t.title else "") + table


def block(b: Block) -> str:
    """One block of a strategy's summary as HTML."""
    if isinstance(b, Paragraph):
        return _paragraph(b)
    if isinstance(b, Heading):
        return f"<h3>{_e(b.text)}</h3>"
    if isinstance(b, SummaryTable):
        return _summary_table(b)
    if isinstance(b, ScatterPlot):
        return _plot(lambda: plots.domain_projection_png(b.panels), b.alt, b.empty)
    if isinstance(b, CurvePlot):
        return _plot(lambda: plots.criterion_curves_png(b.curves, b.key, b.label, b.chosen, kept=b.kept,
                                                        reference=b.reference), b.alt, b.empty)
    raise TypeError(f"a strategy summary holds paragraphs, headings, tables and plots, not {type(b).__name__}")


def section_body(summary: StrategySummary) -> str:
    """The body of the strategy's section: its report blocks in order."""
    return "\n".join(part for part in map(block, summary.report) if part)
