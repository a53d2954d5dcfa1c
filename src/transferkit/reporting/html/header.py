"""The report's top: title, headline cards, the runs this one was built from, warnings and notes."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

from ...rundir import evaluation_of
from ...strategies.summary import StrategySummary
from .blocks import NOT_EVALUATED, _e, _formatted, _num
from .model import RunReport
from .strategy import card


def _header(report: RunReport, headline: Iterable[Sequence], summary: StrategySummary | None = None) -> str:
    """Title, the cards of the strategy's `summary` (an adapted run: the domain adapted to), then one card
    per declared headline metric: (metrics key, label, format, always), labelled with the summary's
    `card_prefix` (an adapted run's task cards score the source's test split)."""
    metrics = report.metrics or {}
    cards = [card(c) for c in summary.cards] if summary else []
    prefix = summary.card_prefix if summary else ""
    for key, label, format, always in headline:
        # Optional metrics only get a card when present; the headline ones always do.
        if key not in metrics and not always:
            continue
        value = _formatted(metrics.get(key), format) if _num(metrics.get(key)) is not None else NOT_EVALUATED
        # a metric the data leave undefined (MASE of a constant series) is "n/a", with the reason
        why = (metrics.get("undefined") or {}).get(key) if value == NOT_EVALUATED else None
        value = "n/a" if why else value
        cls = "big" if value != NOT_EVALUATED and not why else "big na"
        label = f"{prefix}{label}"
        cards.append(f'<div class="card"><div class="{cls}">{_e(value)}</div>'
                     f'<div class="label">{_e(label)}</div>'
                     + (f'<div class="label why">{_e(why)}</div>' if why else "") + '</div>')
    date = datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        "<header>\n"
        f"<h1>{_e(report.title)}</h1>\n"
        f'<p class="meta">{_e(report.task)} · generated {_e(date)}</p>\n'
        + _parents(report.parents) +
        f'<div class="cards">{"".join(cards)}</div>\n'
        + (f'<p class="meta evaluation">measured on the {_e(evaluation_of(metrics).describe())}</p>\n'
           if _num(metrics.get("n")) is not None else "") +
        "</header>"
    )


#: how the header says what a parent run gave this one (`rundir.run_parents` relations)
_PARENT_RELATIONS = {"backbone": "transferred from the backbone of", "extend": "extended from"}


def _parents(parents: Sequence[dict]) -> str:
    """The runs this one was built from, each linked to its report when it is found here."""
    shown = []
    for parent in parents or []:
        name = _e(Path(str(parent.get("path", ""))).name or parent.get("path", ""))
        target = (f'<a class="parent" href="{_e(parent["link"])}"><code>{name}</code></a>' if parent.get("link")
                  else f'<code title="{_e(parent.get("path"))}">{name}</code> (its report is not found here)')
        how = _PARENT_RELATIONS.get(str(parent.get("relation")), "built from")
        shown.append(f"{how} run {target}")
    return f'<p class="meta lineage">{" · ".join(shown)}</p>\n' if shown else ""


def attention(warnings: Sequence[str], metrics: dict) -> list[str]:
    """The run's warnings plus what its test metrics show needs attention (negative transfer, a
    baseline that beats the model), so the top of the report lists every problem."""
    out = list(warnings or [])
    check = metrics.get("transfer") or {}
    if check.get("verdict") == "negative":
        out.append(f"negative transfer: the from-scratch control ({check.get('control', 'see Transfer check')}) "
                   "beats the pretrained model; see Transfer check")
    gain = metrics.get("gain_over_best_baseline") or {}
    baseline_check = metrics.get("baseline_check")
    # runs with a baseline check count a baseline as better only beyond its noise band
    beaten = baseline_check["verdict"] == "baseline" if baseline_check else (_num(gain.get("mse")) or 0.0) < 0
    if beaten:
        out.append(f"a baseline beats the model: {gain.get('baseline', 'a baseline')} has a lower test MSE; "
                   "see Metrics")
    return out


def _messages(warnings: Sequence[str], notes: Sequence[str]) -> str:
    """Warnings (need attention, highlighted) apart from notes (informational, neutral)."""
    parts = []
    if warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
        parts.append(f'<aside class="warnings"><strong>Warnings</strong><ul>{items}</ul></aside>')
    if notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in notes)
        parts.append(f'<aside class="notes"><strong>Notes</strong><ul>{items}</ul></aside>')
    return "\n".join(parts)
