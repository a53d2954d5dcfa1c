"""The Lineage section of an extended run and its forgetting warnings."""
from __future__ import annotations

from pathlib import Path

from .blocks import _e, _muted, _num, _pct, _points, _table
from .model import RunReport


#: Forgetting above this many points of old-class accuracy is flagged at the top of the report.
FORGETTING_ALERT = 0.02


def lineage_attention(lineage: list[dict]) -> list[str]:
    """A warning per extension step that lost more than FORGETTING_ALERT of old-class accuracy."""
    out = []
    for step in lineage or []:
        m = step.get("metrics") or {}
        lost, se = _num(m.get("forgetting")), _num(m.get("forgetting_se"))
        # a loss within the noise of the paired difference (2 standard errors) is not flagged
        if lost is not None and lost > FORGETTING_ALERT and (se is None or lost > 2 * se):
            band = f" ± {200 * se:.1f}" if se is not None else ""
            out.append(f"adding {', '.join(step.get('added') or [])} cost the old classes {100 * lost:.1f}{band} points "
                       "of accuracy; see Lineage")
    return out


def _lineage(report: RunReport) -> str:
    """The "Lineage" section of an extended run: per step, the parent run (linked to its report), the
    classes added and how, and old-class accuracy before → after, forgetting and new-class accuracy,
    beside naive fine-tuning and retraining on all data when they were measured; "" otherwise."""
    from ...tasks.growth import growth_table

    steps = [s for s in report.lineage or [] if isinstance(s, dict)]
    if not steps:
        return ""
    parts = []
    for number, step in enumerate(steps, 1):
        parent = step.get("parent")
        link = (f'<a href="{_e(Path(parent).as_uri() + "/report.html")}"><code>{_e(parent)}</code></a>'
                if parent and Path(parent).is_absolute() else f"<code>{_e(parent)}</code>" if parent else
                "the model of the step before (extended in the same session, not saved on its own)")
        m = step.get("metrics") or {}
        parts.append(f"<h3>Step {number}: {_e(', '.join(step.get('added') or []) or 'no new class')} added to "
                     f"{_e(', '.join(step.get('old_classes') or []))}</h3>")
        parts.append(f"<p>Parent: {link}. New data: <code>{_e(step.get('data'))}</code>. How: {_e(step.get('how'))}."
                     "</p>")
        lost = _num(m.get("forgetting"))
        if lost is not None:
            se = _num(m.get("forgetting_se"))
            tone = "bad" if lost > FORGETTING_ALERT and (se is None or lost > 2 * se) else "good"
            band = f" ± {200 * se:.1f}" if se is not None else ""
            scored = f" Scored by {_e(m.get('evaluation'))} on {_e(m.get('old_examples'))} old-class and " \
                     f"{_e(m.get('new_examples'))} new-class examples." if m.get("evaluation") else ""
            parts.append(f'<p class="verdict {tone}"><strong>Old classes: {_pct(m.get("old_accuracy_before"))} → '
                         f'{_pct(m.get("old_accuracy_after"))} ({_points(-lost)}{band}); new classes '
                         f'{_pct(m.get("new_accuracy"))}.</strong>{scored}</p>')
        else:
            parts.append(_muted("Old-class accuracy before and after is not measured: the parent run kept no test "
                                "split (it was cross-validated) and the new data hold no old-class test examples."))
        table = growth_table(step)
        parts.append(_table(table.columns, [[_e(c) for c in row] for row in table.rows]))
        if not step.get("comparison"):
            parts.append(_muted("Naive fine-tuning and retraining on all data were not measured (`transferkit extend "
                                "... --compare` measures them)."))
    return "\n".join(parts)
