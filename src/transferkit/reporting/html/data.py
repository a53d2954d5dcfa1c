"""The Decisions and Data sections."""
from __future__ import annotations

from typing import Sequence

from .blocks import _e, _int, _muted, _num, _table


def _decisions(decisions: Sequence[tuple[str, str]]) -> str:
    if not decisions:
        return _muted("No decisions recorded.")
    rows = []
    for item in decisions:
        decision, why = (tuple(item) + ("", ""))[:2]
        rows.append((f"<strong>{_e(decision)}</strong>", _e(why)))
    return _table(("Decision", "Why"), rows, numeric_from=99)


def _data(summary: dict) -> str:
    if not summary:
        return _muted("No data summary recorded.")
    parts = []
    if summary.get("root"):
        parts.append(f'<p>Root: <code>{_e(summary["root"])}</code></p>')
    if summary.get("split"):
        parts.append(f'<p>Split: {_e(summary["split"])}</p>')

    counts: dict = summary.get("counts") or {}
    splits = [s for s in counts if isinstance(counts[s], dict)]
    if "windows" in summary:  # a time series: its shape instead of class counts
        rows = [(_e(k), _e(", ".join(map(str, v)) if isinstance(v, list) else v)) for k, v in summary.items()
                if k in ("rows", "columns", "time_column", "target", "frequency", "season", "start", "end")]
        rows += [(_e(f"{k} windows"), _int(v)) for k, v in (summary.get("windows") or {}).items()]
        parts.append(_table(("Series", ""), rows, numeric_from=99))
    elif splits:
        classes: list[str] = []
        for s in splits:
            classes += [c for c in counts[s] if c not in classes]
        rows, totals = [], {s: 0 for s in splits}
        for c in classes:
            row = [_e(c)]
            for s in splits:
                n = _num(counts[s].get(c))
                totals[s] += int(n) if n is not None else 0
                row.append(_int(n) if n is not None else "0")
            row.append(_int(sum(_num(counts[s].get(c)) or 0 for s in splits)))
            rows.append(row)
        foot = ["<strong>total</strong>"] + [_int(totals[s]) for s in splits]
        foot.append(_int(sum(totals.values())))
        parts.append(_table(["Class"] + [_e(s) for s in splits] + ["all"], rows, foot))
    else:
        parts.append(_muted("No per-class counts recorded."))

    skipped = summary.get("skipped") or []
    if skipped:
        items = "".join(
            f"<li><code>{_e(s.get('path', '?'))}</code> — {_e(s.get('reason', 'no reason given'))}</li>"
            if isinstance(s, dict) else f"<li>{_e(s)}</li>"
            for s in skipped
        )
        # Long skip lists would bury the rest of the report, so they start collapsed.
        open_attr = " open" if len(skipped) <= 10 else ""
        parts.append(f"<details{open_attr}><summary>Skipped files ({len(skipped)})</summary>"
                     f'<ul class="skipped">{items}</ul></details>')
    else:
        parts.append(_muted("No files were skipped."))
    return "\n".join(parts)
