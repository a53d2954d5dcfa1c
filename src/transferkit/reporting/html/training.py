"""The Learning curves, Timings and Configuration sections."""
from __future__ import annotations

import json
from typing import Any

from .. import plots
from .blocks import _cell, _duration, _e, _muted, _num, _plot, _table


def _curves(history: list[dict]) -> str:
    if not history:
        return _muted("No training history recorded.")
    body = _plot(lambda: plots.learning_curves_png(history), "learning curves",
                 "History contains nothing plottable.")
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    rows = [[_cell(row.get(k)) for k in keys] for row in history]
    table = _table([_e(k) for k in keys], rows, numeric_from=0)
    # the caption explains lines the plot draws only where the trainable groups changed (a `full` run has none)
    if len({repr(row.get("trainable_groups")) for row in history if row.get("trainable_groups") is not None}) > 1:
        body += _muted("Dashed vertical lines mark epochs where the set of trainable "
                       "layer groups changed (unfreezing).")
    choice = plots.sweep_choice(history) if "C" in keys else None
    if choice:
        body += _muted(f"The model uses C = {choice[0]:g}, chosen by the {choice[1]} (circled; the `chosen` column).")
    return body + f"<details><summary>History table ({len(history)} rows)</summary>{table}</details>"


def timing_parts(timings: dict[str, float]) -> tuple[dict[str, float], float]:
    """(the stages, their total): entries named `total ...` are sums of other stages, not stages,
    so they are left out rather than counted twice."""
    parts = {name: _num(secs) or 0.0 for name, secs in timings.items() if not name.startswith("total")}
    return parts, sum(parts.values())


def _timings(timings: dict[str, float]) -> str:
    if not timings:
        return _muted("No timings recorded.")
    parts, total = timing_parts(timings)
    rows = []
    for name, secs in parts.items():
        share = f"{100 * secs / total:.0f}%" if total > 0 else "—"
        rows.append((_e(name), _duration(secs), share))
    return _table(("Stage", "Time", "Share"), rows, ("<strong>total</strong>", _duration(total), ""))


def _config(config: Any) -> str:
    if not config:
        return _muted("No configuration recorded.")
    # default=str keeps Paths/enums etc. from breaking the report.
    text = json.dumps(config, indent=2, sort_keys=False, default=str, ensure_ascii=False)
    return f"<details><summary>config.json</summary><pre>{_e(text)}</pre></details>"
