"""Self-contained HTML run report (no external assets; plots inlined as base64 PNGs).

One module per group of sections; the style sheet is `reporting/static/report.css`. A strategy's own
section (`Strategy.summarise`) is drawn by `strategy`, whichever strategy the run used.
"""

from __future__ import annotations

import functools
from html import escape
from importlib import resources
from pathlib import Path

from ...strategies.summary import strategy_summary
from .blocks import NOT_EVALUATED, _section
from .data import _data, _decisions
from .header import _header, _messages, attention
from .lineage import FORGETTING_ALERT, _lineage, lineage_attention
from .metrics import SECTIONS, _metrics_table, _task_section  # noqa: F401  (_metrics_table: tests read it here)
from .model import RunReport
from .search import _ranking, _search
from .strategy import section_body
from .training import _config, _curves, _timings, timing_parts  # noqa: F401
from .transfer import _transfer

__all__ = ["FORGETTING_ALERT", "NOT_EVALUATED", "SECTIONS", "RunReport", "attention", "lineage_attention",
           "render_html", "task_class", "timing_parts", "write_report"]


def write_report(path: str | Path, report: RunReport) -> Path:
    """Render ``report`` to a standalone HTML file at ``path`` and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report), encoding="utf-8")
    return out


def render_html(report: RunReport) -> str:
    """Return the full HTML document for ``report``.

    The headline cards and the task's own sections (after Data) are what the task estimator
    registered under ``report.task`` declares (`headline_metrics`, `report_sections`).
    """
    metrics = report.metrics or {}
    task = task_class(report.task)
    headline = task.headline_metrics(metrics)
    formats = {key: format for key, _, format, _ in headline}
    summary = strategy_summary(report.config or {}, report.target or {}, metrics)
    sections = [
        _header(report, headline, summary),
        _messages(attention(report.warnings, metrics) + (summary.attention if summary else [])
                  + lineage_attention(report.lineage), report.notes),
        _section("Transfer check", _transfer(metrics.get("transfer") or {}, report.domain or {}, formats,
                                             getattr(task, "domain_shift_reference", None)))
        if metrics.get("transfer") or report.domain else "",
        _section("Decisions", _decisions(report.decisions)),
        _section("Hyper-parameter search", _search(report.search)) if report.search else "",
        _section("Backbone ranking", _ranking(report.ranking)) if report.ranking else "",
        _section(summary.title, told) if summary and (told := section_body(summary)) else "",
        _section("Lineage", grown) if (grown := _lineage(report)) else "",
        _section("Data", _data(report.data_summary or {})),
        *(_task_section(name, report) for name in task.report_sections),
        _section("Learning curves", _curves(report.history or [])),
        _section("Timings", _timings(report.timings or {})),
        _section("Configuration", _config(report.config)),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(str(report.title))}</title>\n<style>{_css()}</style>\n</head>\n"
        "<body>\n<main>\n" + "\n".join(s for s in sections if s) + "\n</main>\n</body>\n</html>\n"
    )


def task_class(task: str) -> type:
    """The estimator class registered for `task`, whose declarations lay out its report; the base
    estimator's generic layout for a task not registered here (e.g. a plug-in not installed)."""
    from ...errors import UnknownNameError
    from ...tasks import TASKS, TransferEstimator

    try:
        return TASKS.get(task)
    except UnknownNameError:
        return TransferEstimator


@functools.cache
def _css() -> str:
    """The report's style sheet, inlined in every report so it stands alone."""
    return resources.files("transferkit.reporting").joinpath("static", "report.css").read_text(encoding="utf-8")
