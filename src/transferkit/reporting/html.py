"""Self-contained HTML run report (no external assets; plots inlined as base64 PNGs)."""

from __future__ import annotations

import base64
import json
import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..rundir import evaluation_of
from ..tuning.study import MIN_TRIALS_FOR_IMPORTANCES
from . import plots
from .plots import finite_number as _num

NOT_EVALUATED = "not evaluated"


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
    sections = [
        _header(report, headline),
        _messages(attention(report.warnings, metrics) + adaptation_attention(report.config or {})
                  + lineage_attention(report.lineage), report.notes),
        _section("Transfer check", _transfer(metrics.get("transfer") or {}, report.domain or {}, formats,
                                             getattr(task, "domain_shift_reference", None)))
        if metrics.get("transfer") or report.domain else "",
        _section("Decisions", _decisions(report.decisions)),
        _section("Hyper-parameter search", _search(report.search)) if report.search else "",
        _section("Backbone ranking", _ranking(report.ranking)) if report.ranking else "",
        _section("Domain adaptation", adapted) if (adapted := _adaptation(report)) else "",
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
        f"<title>{escape(str(report.title))}</title>\n<style>{_CSS}</style>\n</head>\n"
        "<body>\n<main>\n" + "\n".join(s for s in sections if s) + "\n</main>\n</body>\n</html>\n"
    )


def task_class(task: str) -> type:
    """The estimator class registered for `task`, whose declarations lay out its report; the base
    estimator's generic layout for a task not registered here (e.g. a plug-in not installed)."""
    from ..errors import UnknownNameError
    from ..tasks import TASKS, TransferEstimator

    try:
        return TASKS.get(task)
    except UnknownNameError:
        return TransferEstimator


# --------------------------------------------------------------------------- formatting


def _fmt(value: Any, digits: int = 3) -> str:
    f = _num(value)
    return "—" if f is None else f"{f:.{digits}f}"


def _pct(value: Any) -> str:
    f = _num(value)
    return "—" if f is None else f"{100 * f:.1f}%"


def _int(value: Any) -> str:
    f = _num(value)
    return "—" if f is None else f"{int(round(f)):,}"


def _duration(seconds: Any) -> str:
    s = _num(seconds)
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(int(round(s)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _e(value: Any) -> str:
    return escape(str(value))


def _section(title: str, body: str) -> str:
    slug = title.lower().replace(" ", "-")
    return f'<section id="{slug}">\n<h2>{_e(title)}</h2>\n{body}\n</section>'


def _muted(text: str) -> str:
    return f'<p class="muted">{_e(text)}</p>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], foot: Sequence[str] | None = None,
           numeric_from: int = 1, row_classes: Sequence[str] | None = None) -> str:
    """HTML table from already-escaped cells; columns from ``numeric_from`` are right-aligned;
    ``row_classes`` gives each body row a class ("" for none)."""

    def cells(row: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="num">{c}</{tag}>' if i >= numeric_from else f"<{tag}>{c}</{tag}>"
            for i, c in enumerate(row)
        )

    parts = ["<table>", f"<thead><tr>{cells(head, 'th')}</tr></thead>", "<tbody>"]
    rows = list(rows)
    classes = list(row_classes or []) + [""] * (len(rows) - len(row_classes or []))
    parts += [f'<tr class="{c}">{cells(r, "td")}</tr>' if c else f"<tr>{cells(r, 'td')}</tr>"
              for r, c in zip(rows, classes)]
    parts.append("</tbody>")
    if foot is not None:
        parts.append(f"<tfoot><tr>{cells(foot, 'td')}</tr></tfoot>")
    parts.append("</table>")
    return "\n".join(parts)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _plot(make: Callable[[], bytes | None], alt: str, empty: str) -> str:
    # A broken plot must not cost the user the rest of an end-of-run report.
    try:
        png = make()
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"transferkit report: could not draw {alt}: {exc!r}", stacklevel=2)
        return _muted(f"Plot unavailable ({type(exc).__name__}: {exc}).")
    return _muted(empty) if png is None else f'<figure>{_img(png, alt)}</figure>'


# --------------------------------------------------------------------------- sections


def _formatted(value: Any, format: str) -> str:
    """A headline value in a declared format: "percent", "count", or a float spec such as ".3f"."""
    if _num(value) is None:
        return "—"
    if format == "percent":
        return _pct(value)
    if format == "count":
        return _int(value)
    return f"{_num(value):{format}}"


def _header(report: RunReport, headline: Iterable[Sequence]) -> str:
    """Title and one card per declared headline metric: (metrics key, label, format, always)."""
    metrics = report.metrics or {}
    cards = []
    adapted = bool(adaptation_settings(report.config or {}))
    if adapted:  # the domain adapted to comes first; the task's cards below score the source's test split
        cards.append(_target_card(metrics.get("target_domain") or {}))
    for key, label, format, always in headline:
        # Optional metrics only get a card when present; the headline ones always do.
        if key not in metrics and not always:
            continue
        value = _formatted(metrics.get(key), format) if _num(metrics.get(key)) is not None else NOT_EVALUATED
        # a metric the data leave undefined (MASE of a constant series) is "n/a", with the reason
        why = (metrics.get("undefined") or {}).get(key) if value == NOT_EVALUATED else None
        value = "n/a" if why else value
        cls = "big" if value != NOT_EVALUATED and not why else "big na"
        label = f"source {label}" if adapted else label
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


def _target_card(target: dict) -> str:
    """An adapted run's first card: the kept model's accuracy on the labelled target data (count and
    95 % band), or "unknown" when no labelled target data were given."""
    if _num(target.get("accuracy")) is None:
        return ('<div class="card"><div class="big na">unknown</div><div class="label">target accuracy (no '
                'labelled target data given)</div></div>')
    band = target.get("band") or [None, None]
    return (f'<div class="card"><div class="big">{_pct(target["accuracy"])}</div><div class="label">target '
            f"accuracy, {_int(target.get('n'))} labelled target examples (95% band {_pct(band[0])}–{_pct(band[1])})"
            "</div></div>")


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


def _metrics_table(metrics: dict) -> str:
    per_class: dict = metrics.get("per_class") or {}
    if not per_class:
        return _muted(f"Per-class metrics: {NOT_EVALUATED}.")
    order = [c for c in (metrics.get("classes") or []) if c in per_class]
    order += [c for c in per_class if c not in order]
    rows = []
    for c in order:
        m = per_class[c] or {}
        rows.append((_e(c), _fmt(m.get("precision")), _fmt(m.get("recall")),
                     _fmt(m.get("f1")), _int(m.get("support"))))

    def mean(key: str) -> float | None:  # over the classes with support: an absent class has nothing to average
        vals = [v for v in (_num((per_class[c] or {}).get(key)) for c in order
                            if (_num((per_class[c] or {}).get("support")) or 0) > 0) if v is not None]
        return sum(vals) / len(vals) if vals else None

    macro_f1 = metrics.get("macro_f1") if _num(metrics.get("macro_f1")) is not None else mean("f1")
    support = sum(_num((per_class[c] or {}).get("support")) or 0 for c in order)
    foot = ("<strong>macro avg</strong>", _fmt(mean("precision")), _fmt(mean("recall")),
            _fmt(macro_f1), _int(support))
    return _table(("Class", "Precision", "Recall", "F1", "Support"), rows, foot)


def _forecast_metrics(metrics: dict) -> str:
    """The "forecast-metrics" section: the model's and each baseline's errors (a run saved before
    it was evaluated has none)."""
    if metrics.get("mse") is None:
        return _muted(f"Forecast metrics: {NOT_EVALUATED}.")
    undefined = metrics.get("undefined") or {}

    def figure(m: dict, key: str, digits: int) -> str:  # "n/a" where the data leave the metric undefined
        return "n/a" if key in undefined and _num(m.get(key)) is None else _fmt(m.get(key), digits)

    rows = [("<strong>model (this run)</strong>", figure(metrics, "mse", 4), figure(metrics, "mae", 4),
             figure(metrics, "mase", 3))]
    for name, m in (metrics.get("baselines") or {}).items():
        rows.append((_e(name), figure(m, "mse", 4), figure(m, "mae", 4), figure(m, "mase", 3)))
    parts = [_table(("Model", "MSE", "MAE", "MASE"), rows)]
    parts += [f"<p>{_e(key.upper())} n/a: {_e(why)}.</p>" for key, why in undefined.items()]
    parts.append(_baseline_check(metrics.get("baseline_check") or {}, metrics.get("gain_over_best_baseline") or {}))
    parts.append(_muted("MSE and MAE on the scale standardised with the training statistics (comparable with "
                        "published long-horizon tables); MASE divides the MAE by the in-sample seasonal-naive "
                        "error, so below 1 beats repeating the last season."))
    per_channel = metrics.get("per_channel") or {}
    if len(per_channel) > 1:
        rows = [(_e(c), figure(m, "mse", 4), figure(m, "mae", 4), figure(m, "mase", 3)) for c, m in per_channel.items()]
        parts.append(f"<details><summary>Per series ({len(rows)})</summary>{_table(('Series', 'MSE', 'MAE', 'MASE'), rows)}</details>")
    return "\n".join(parts)


def _baseline_check(check: dict, gain: dict) -> str:
    """Whether a baseline beats the model: a verdict with its noise band (runs saved before the band
    existed only have the raw gain over the best baseline)."""
    if not check:
        if not gain:
            return ""
        better = (_num(gain.get("mse")) or 0.0) > 0
        text = (f"The model beats the best baseline ({gain.get('baseline')}) by {_fmt(gain.get('mse'), 4)} MSE."
                if better else f"A baseline beats the model: {gain.get('baseline')} has a "
                f"{_fmt(-(_num(gain.get('mse')) or 0.0), 4)} lower MSE.")
        return f'<p class="verdict {"good" if better else "bad"}"><strong>{_e(text)}</strong></p>'
    tone = {"model": "good", "baseline": "bad"}.get(check.get("verdict"), "neutral")
    blocks = check.get("blocks")
    band = (f"noise band ±{_fmt(check.get('noise'), 4)} (two standard errors over {_int(blocks)} blocks of "
            "non-overlapping forecast targets)") if _num(check.get("noise")) is not None else \
        f"noise band n/a: {(check.get('undefined') or {}).get('noise') or 'not recorded'}"
    parts = [f'<p class="verdict {tone}" data-verdict="{_e(check.get("verdict"))}"><strong>'
             f'{_e(check.get("headline", ""))}</strong> — gain {_fmt(check.get("gain"), 4)} MSE, {_e(band)}.</p>']
    if check.get("advice"):
        parts.append('<p>What to try:</p><ul class="advice">'
                     + "".join(f"<li>{_e(a)}</li>" for a in check["advice"]) + "</ul>")
    return "\n".join(parts)


def _forecasts(examples: dict) -> str:
    windows = (examples or {}).get("windows") or []
    if not windows:
        return _muted("No forecast examples recorded.")
    data = [(w["history"], w["actual"], w["forecast"], w.get("baselines", {})) for w in windows]
    channel = examples.get("channel", "series")
    return _plot(lambda: plots.forecast_png(data, channel), "forecast vs actual", "Nothing to plot.") + _muted(
        f"{len(windows)} test windows, evenly spaced over the test period, of series {channel} (standardised).")


def _transfer(check: dict, domain: dict, formats: dict[str, str], reference: str | None = None) -> str:
    """The transfer verdict, its metric shown in the format the task declares for it (`formats`:
    metrics key → headline format), and the domain diagnostics: what they were measured on, and the
    reference shifts of the run's task (recorded with the run; `reference`, the task's, for a run
    saved before they were)."""
    parts = []
    if check:
        from ..diagnostics.transfer_gain import verdict_headline

        name, verdict = check.get("metric", "accuracy"), check.get("verdict")
        spec = formats.get(name, "")
        spec = spec if spec == "percent" or spec.startswith(".") else ".4f"  # undeclared: 4 decimals
        if spec == "percent":  # a proportion: differences in points, the binomial band of transfer_verdict
            value, diff = _pct, (lambda v: "—" if _num(v) is None else f"{100 * _num(v):+.1f} points")
            band = f"{100 * (_num(check.get('noise')) or 0):.1f} points (two standard errors"
            scored = f"examples, {metrics_estimate})" if (metrics_estimate := check.get("estimate")) else "test examples)"
            band += f" on {_int(check['n'])} {scored}" if check.get("n") else ")"
        else:
            value, diff = (lambda v: _formatted(v, spec)), (lambda v: "—" if _num(v) is None else f"{_num(v):+{spec}}")
            band = "±" + _formatted(check.get("noise"), spec)
        if _num(check.get("noise")) is None and (check.get("undefined") or {}).get("noise"):
            band = f"n/a ({check['undefined']['noise']})"  # the test set cannot estimate it
        elif spec == "percent":
            band = "±" + band
        # verdicts with no colour of their own (e.g. added later) render neutral
        tone = {"positive": "good", "negative": "bad", "inconclusive": "neutral"}.get(verdict, "plain")
        parts.append(f'<p class="verdict {tone}" data-verdict="{_e(verdict)}">'
                     f'<strong>{_e(verdict_headline(check))}</strong> — {_e(name)} {value(check.get("model"))} '
                     f'against {value(check.get("baseline"))} for the control ({_e(check.get("control", ""))}); '
                     f'gain {diff(check.get("gain"))}, noise band {band}.</p>')
        if check.get("advice"):
            parts.append('<p>What to try:</p><ul class="advice">'
                         + "".join(f"<li>{_e(a)}</li>" for a in check["advice"]) + "</ul>")
    shift = domain.get("batchnorm_shift")
    if shift:
        parts.append(f'<p>Domain shift against the source data (statistics of the last batch-norm layer '
                     f'<code>{_e(shift.get("layer", "?"))}</code>, {_int(shift.get("channels"))} channels): '
                     f'<strong>{_fmt(shift.get("shift"), 2)}</strong> source standard deviations (mean shift '
                     f'{_fmt(shift.get("mean_shift"), 2)}, mean |log variance ratio| '
                     f'{_fmt(shift.get("log_variance_ratio"), 2)}){_measured_on(shift)} — '
                     f'{_e(shift.get("interpretation", ""))}.'
                     + (f' For reference: {_e(known)}.' if (known := shift.get("reference", reference)) else "")
                     + '</p>')
    elif domain:
        parts.append(_muted("Domain shift: not measured (the backbone has no batch-norm statistics of its source data)."))
    sep = domain.get("separability")
    if sep:
        measured = _measured_on(sep).removeprefix(", measured on ") or f"{_int(sep.get('examples'))} training examples"
        parts.append(f'<p>Linear separability of the pretrained features ({measured}): '
                     f'cross-validated accuracy {_pct(sep.get("cv_accuracy"))}, training accuracy '
                     f'{_pct(sep.get("train_accuracy"))}, chance {_pct(sep.get("chance"))} — '
                     f'{_e(sep.get("interpretation", ""))}.</p>')
    return "\n".join(parts)


def _measured_on(figure: dict) -> str:
    """", measured on 255 of the 720 training images" (all of them when the sample is all): what a
    domain diagnostic was computed on; "" for a run saved before that was recorded."""
    n, total, unit = _num(figure.get("examples")), _num(figure.get("of")), figure.get("unit") or "example"
    if n is None or total is None:
        return ""
    if n >= total:
        return f", measured on all {_int(total)} training {unit}s"
    return f", measured on {_int(n)} of the {_int(total)} training {unit}s"


def _search(study: dict) -> str:
    """The study of `fit --search`: counts and gain, the trials and importances plot, the trials table."""
    metric, trials = study.get("metric", "validation score"), study.get("trials") or []
    best, gain = study.get("best") or {}, _num(study.get("gain"))
    counts = f"{len(trials)} trials ({_int(study.get('completed'))} completed, {_int(study.get('pruned'))} pruned" \
             + (f", {_int(study.get('failed'))} failed" if study.get("failed") else "") + ")"
    chosen = "the defaults (trial 0)" if best.get("defaults") else f"trial {best.get('number')}"
    gain_text = "" if gain is None else (
        f"; gain over the defaults on validation: <strong>{gain:+.4g}</strong> "
        f"({_fmt(study.get('default_value'), 4)} → {_fmt(best.get('value'), 4)})")
    intro = (f"<p>{counts} in {_duration(study.get('seconds'))} on {_e(study.get('backend', 'optuna'))} "
             f"({_e(study.get('sampler', ''))}, {_e(study.get('pruner', ''))} pruning). Best: {_e(chosen)}, "
             f"{_e(metric)} {_fmt(best.get('value'), 4)}{gain_text}.</p>")
    plot = _plot(lambda: plots.search_png(trials, study.get("importances"), study.get("default_value"),
                                          study.get("direction", "maximize"), metric),
                 "search trials and parameter importances", "No trial reported a value.")
    names = list(dict.fromkeys(k for t in trials for k in (t.get("params") or {})))
    rows = [[_int(t.get("number")) + (" (defaults)" if t.get("defaults") else "")]
            + [_e(_cell((t.get("params") or {}).get(k))) if k in (t.get("params") or {}) else "—" for k in names]
            + [_e(", ".join(f"{k} {_cell(v)}" for k, v in (t.get("used") or {}).items())),
               _fmt(t.get("value"), 4), _e(t.get("state", "")), _duration(t.get("seconds"))] for t in trials]
    best_row = [("kept" if t.get("number") == best.get("number") else "") for t in trials]  # highlighted
    table = _table(["Trial"] + [_e(n) for n in names] + ["Trained with", _e(metric), "State", "Time"], rows,
                   numeric_from=len(names) + 2, row_classes=best_row)
    folds = study.get("cross_validated")
    note = _muted(
        (f"Too few examples to hold a split out: every trial was scored by the {_int(folds)}-fold cross-validation "
         "that also estimates the final model's accuracy, so that estimate is optimistic. " if folds else
         "Every trial trained on the training split and was scored on the validation split; the test split was "
         "used once, by the final model. ")
        + "The final model was fitted with the best trial's parameters. Pruned trials show their last epoch's value."
        + ("" if study.get("importances") else " Parameter importances are estimated from "
           f"{MIN_TRIALS_FOR_IMPORTANCES} completed trials with sampled parameters on."))
    return intro + plot + f"<details><summary>Trials table ({len(trials)} rows)</summary>{table}</details>" + note


def _ranking(ranking: dict) -> str:
    metric = ranking.get("metric", "")
    rows = ranking.get("rows") or []
    metrics = list(dict.fromkeys(k for r in rows for k in (r.get("scores") or {})))
    table_rows = [[_e(r["candidate"]), _int(r.get("num_features"))] + [_fmt((r.get("scores") or {}).get(m), 3)
                  for m in metrics] + [_duration(r.get("seconds"))] for r in rows]
    sample = ranking.get("sample") or {}
    why = f" Ranked by {metric} because it measures best: {ranking['evidence']}." if ranking.get("evidence") else ""
    return (_table(["Candidate", "Features"] + [_e(m) for m in metrics] + ["Time"], table_rows)
            + _plot(lambda: plots.ranking_png(rows, metric), "backbone ranking", "")
            + _muted(f"Scored without training on {sample.get('examples', '?')} of {sample.get('of', '?')} training "
                     f"examples in {_duration(ranking.get('seconds'))}; the highest {metric} was fine-tuned.{why}"))


#: The reference candidates of a domain adaptation, as the strategy records them (method name →
#: how the report names them); the methods show under their own names.
SOURCE_ONLY = "source-only"
_REFERENCES = {SOURCE_ONLY: "source-only (logistic probe)", "none": "no adaptation (same bottleneck)"}
#: The per-candidate measures of an adaptation: key → (column title, what it is). Lower is better for
#: the unsupervised ones, which the strategy may choose by (its `criterion_metric` less "val_").
_ADAPTATION_MEASURES = {
    "source_val_accuracy": ("Source val. accuracy", "on the source's validation split"),
    "target_entropy": ("Target entropy", "mean entropy of the predictions on the unlabelled target (lower: "
                                         "more confident)"),
    "dev_risk": ("DEV score", "source validation errors importance-weighted towards the target by a domain "
                              "classifier on the features (deep embedded validation's weights, self-normalised): "
                              "a relative score to rank the candidates without target labels (lower is better), "
                              "not an estimate of the target error, which it can understate many times over; "
                              "in brackets its 95% bootstrap band over the source validation examples, so "
                              "candidates whose bands overlap are not told apart"),
}


def adaptation_settings(config: dict) -> dict:
    """The domain-adaptation results a run's strategy recorded (config.json `strategy.settings` holding
    `candidates` and a `chosen_method`), or {} for a run that did not adapt."""
    strategy = config.get("strategy") if isinstance(config, dict) else None
    settings = strategy.get("settings") if isinstance(strategy, dict) else None
    if isinstance(settings, dict) and settings.get("candidates") and settings.get("chosen_method"):
        return settings
    return {}


def adaptation_attention(config: dict) -> list[str]:
    """A warning when the kept adapted model scores below source-only on the labelled target data
    (adaptation made things worse), for the top of the report; [] otherwise."""
    s = adaptation_settings(config)
    rows = {r.get("method"): r for r in s.get("candidates") or [] if isinstance(r, dict)}
    kept, probe = rows.get(s.get("chosen_method"), {}), rows.get(SOURCE_ONLY, {})
    kept_acc, probe_acc = _num(kept.get("target_accuracy")), _num(probe.get("target_accuracy"))
    if kept is probe or kept_acc is None or probe_acc is None or kept_acc >= probe_acc:
        return []
    return [f"adaptation hurt on the labelled target data: the kept {kept.get('method')} scores {_pct(kept_acc)}, "
            f"{_REFERENCES[SOURCE_ONLY]} {_pct(probe_acc)}; see Domain adaptation"]


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
    from ..tasks.growth import growth_table

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


def _points(value: float) -> str:
    return f"{100 * value:+.1f} points".replace("-", "−")


def _adaptation(report: RunReport) -> str:
    """The "Domain adaptation" section: what was kept and why, every candidate's measures (target
    accuracy only where labelled target data were given), the domain shift before and after, and
    plots of the features and of the criterion per epoch; "" for a run without adaptation results."""
    s = adaptation_settings(report.config or {})
    if not s:
        return ""
    rows = [r for r in s["candidates"] if isinstance(r, dict)]
    kept = str(s["chosen_method"])
    kept_row = next((r for r in rows if r.get("method") == kept), {})
    probe = next((r for r in rows if r.get("method") == SOURCE_ONLY), {})

    def name(method: Any) -> str:
        return _REFERENCES.get(str(method), str(method))

    def epoch_of(row: dict) -> str:
        epoch = _num(row.get("epoch"))
        if epoch is None:
            return "—"
        run = _num(row.get("epochs_run"))
        return f"{int(epoch)} of {int(run)}" if run is not None else f"{int(epoch)}"

    parts = []
    epoch = _num(kept_row.get("epoch"))
    when = f" (epoch {epoch_of(kept_row)})" if epoch is not None else ""
    why = f" Why: {_e(s['reason'])}." if s.get("reason") else ""
    parts.append(f'<p class="adaptation-kept">Kept <strong>{_e(name(kept))}</strong>{when}.{why}</p>')

    # the target data: from config.json run.target, else the counts the strategy recorded
    target = report.target or {}
    unlabelled = _num(target.get("examples"))
    unlabelled = unlabelled if unlabelled is not None else _num(s.get("target_examples"))
    source = f" from <code>{_e(target['unlabeled'])}</code>" if target.get("unlabeled") else ""
    said = f"Target data: {_int(unlabelled)} unlabelled examples{source}"
    labelled_n = _num(target.get("labelled_examples"))
    labelled_n = labelled_n if labelled_n is not None else _num(s.get("target_labelled"))
    has_labels = any(_num(r.get("target_accuracy")) is not None for r in rows)
    if has_labels:
        where = f" from <code>{_e(target['labelled'])}</code>" if target.get("labelled") else ""
        said += (f"; {_int(labelled_n)} labelled target examples{where}, used only to evaluate (never to train "
                 "or to choose).")
    else:
        said += "; no labelled target data were given, so accuracy on the target is not measured."
    parts.append(f"<p>{said} The first headline figure is the target accuracy; the others and the Metrics "
                 "section score the source domain's test split.</p>")

    # adapted vs source-only on the labelled target: the comparison the user came for
    kept_acc, probe_acc = _num(kept_row.get("target_accuracy")), _num(probe.get("target_accuracy"))
    if kept_acc is not None and probe_acc is not None and kept != SOURCE_ONLY:
        gain = kept_acc - probe_acc
        tone = "good" if gain > 0 else "bad" if gain < 0 else "plain"
        parts.append(f'<p class="verdict {tone}"><strong>Target accuracy: {_e(name(SOURCE_ONLY))} '
                     f"{_pct(probe_acc)} → {_e(name(kept))} {_pct(kept_acc)} ({_points(gain)}).</strong></p>")
    elif kept_acc is not None:
        parts.append(f'<p class="verdict plain"><strong>Target accuracy of the kept {_e(name(kept))}: '
                     f"{_pct(kept_acc)}.</strong></p>")

    # the candidates' table: the kept row highlighted, any loss against source-only in red
    criterion = str(s.get("criterion_metric") or "").removeprefix("val_")
    head = ["Candidate", "Chosen epoch"] + [
        title + (" (criterion)" if key == criterion else "") for key, (title, _) in _ADAPTATION_MEASURES.items()]
    if has_labels:
        head += ["Target accuracy", "vs source-only"]
    table, classes, worse = [], [], []
    for r in rows:
        chosen = _num(r.get("chosen")) == 1 or r.get("method") == kept
        cell = _e(name(r.get("method"))) + (' <span class="kept-mark">✓ kept</span>' if chosen else "")
        row = [cell, epoch_of(r)] + [
            _pct(r.get(key)) if key.endswith("accuracy") else _dev_cell(r) if key == "dev_risk" else
            _fmt(r.get(key), 4) for key in _ADAPTATION_MEASURES]
        if has_labels:
            acc = _num(r.get("target_accuracy"))
            row.append(_pct(acc))
            if r is probe or acc is None or probe_acc is None:
                row.append("—")
            else:
                diff = acc - probe_acc
                row.append(f'<span class="{"bad" if diff < 0 else "good" if diff > 0 else ""}">{_points(diff)}</span>')
                if diff < 0:
                    worse.append((name(r.get("method")), diff, chosen))
        table.append(row)
        classes.append("kept" if chosen else "")
    parts.append(_table([_e(h) for h in head], table, numeric_from=1, row_classes=classes))
    if worse:
        items = ", ".join(f"{_e(m)} ({_points(d)}{', the kept one' if k else ''})" for m, d, k in worse)
        parts.append(f'<p class="bad">Below {_e(name(SOURCE_ONLY))} on the labelled target data: {items}.</p>')
    explained = "; ".join(f"<em>{_e(title)}</em>: {_e(what)}" for title, what in _ADAPTATION_MEASURES.values())
    chooser = _ADAPTATION_MEASURES.get(criterion, (criterion or "the criterion", ""))[0]
    parts.append(f'<p class="muted">{_e(name(SOURCE_ONLY))}: the logistic probe on the frozen encoder\'s features '
                 f"(what a plain fit ships); {_e(name('none'))}: the bottleneck and head trained without an "
                 f"adaptation loss (what each method's loss adds is measured against it). Chosen epoch: the epoch {_e(chooser)} picked "
                 f"for each candidate. {explained}."
                 + (" Target accuracy is measured after the choice and takes no part in it." if has_labels else "")
                 + "</p>")

    parts.append(_criterion_ranking(s, name, kept))
    parts.append(_adaptation_shift(s, name(kept), kept == SOURCE_ONLY))
    parts.append(_adaptation_curves(s, rows, name, kept, criterion))
    return "\n".join(p for p in parts if p)


def _dev_cell(row: dict) -> str:
    """A candidate's DEV score with its bootstrap band when recorded: "0.0079 [0.0000–0.0250]"."""
    band = row.get("dev_band")
    low, high = (band if isinstance(band, list) and len(band) == 2 else (None, None))
    if _num(low) is None or _num(high) is None:
        return _fmt(row.get("dev_risk"), 4)
    return f"{_fmt(row.get('dev_risk'), 4)} [{_fmt(low, 4)}–{_fmt(high, 4)}]"


def _criterion_ranking(s: dict, name: Callable[[Any], str], kept: str) -> str:
    """How the criterion ordered the candidates against their real target error (labelled target
    data given): Spearman over the candidates and the best one on the target; "" otherwise."""
    ranked = s.get("criterion_vs_target")
    if not isinstance(ranked, dict) or _num(ranked.get("spearman")) is None:
        return ""
    rho = _num(ranked["spearman"])
    best = ", ".join(name(m) for m in ranked.get("best_on_target") or [])
    tone = "good" if rho >= 0.5 else "bad" if rho <= 0 else "plain"
    tail = "" if ranked.get("kept_is_best") else f", not the kept {_e(name(kept))}"
    return (f'<p class="verdict {tone}">The {_e(s.get("criterion", "criterion"))} criterion against the real target '
            f"error over {_int(ranked.get('candidates'))} candidates: Spearman {rho:+.2f} (1: the same order, 0: "
            f"unrelated, below 0: reversed). Best on the labelled target: {_e(best)}{tail}.</p>")


def _a_distance(measure: Any) -> str:
    return _fmt(measure.get("a_distance"), 2) if isinstance(measure, dict) else "—"


def _adaptation_shift(s: dict, kept: str, features_unchanged: bool) -> str:
    """Proxy A-distance before → after (after: unchanged when source-only was kept, which uses the
    encoder's own features; None when the data were too few to measure) and the 2-D projection plot."""
    before = s.get("a_distance_before")
    after = s.get("a_distance_after")
    if features_unchanged:
        after_text = "features unchanged (the kept model uses the encoder's features)"
    elif isinstance(after, dict) and _num(after.get("a_distance")) is not None:
        after_text = f"<strong>{_a_distance(after)}</strong> after (the {_e(kept)} bottleneck's features)"
    else:  # None: too few examples to train a domain classifier on
        after_text = "not measured after" + (" (too few examples)" if "a_distance_after" in s else "")
    before_text = (f"<strong>{_a_distance(before)}</strong> before (the encoder's features)"
                   if isinstance(before, dict) and _num(before.get("a_distance")) is not None
                   else "not measured before (too few examples)")
    accuracy = [m for m in (before, after) if isinstance(m, dict) and _num(m.get("domain_accuracy")) is not None]
    detail = ""
    if accuracy:
        per_domain = _num(accuracy[0].get("examples_per_domain"))
        counted = f" ({_int(per_domain)} examples per domain)" if per_domain is not None else ""
        detail = (" Domain classifier accuracy " + " → ".join(_pct(m.get("domain_accuracy")) for m in accuracy)
                  + counted + ".")
    parts = [f"<h3>Domain shift</h3><p>Proxy A-distance between source and target: {before_text} → {after_text}."
             f"{detail}</p>",
             _muted("A domain classifier is trained to tell source from target features: 0 means the domains are "
                    "indistinguishable, 2 that they are perfectly separable; adaptation aims to lower it.")]
    projection = s.get("projection") or {}
    titles = {"before": "before: the encoder's features", "after": f"after: the {kept} bottleneck's features"}
    distances = {"before": before, "after": after}
    panels = [(titles[when] + (f" (A-distance {_a_distance(distances[when])})"
                               if _a_distance(distances[when]) != "—" else ""), projection[when])
              for when in titles if isinstance(projection.get(when), dict)]
    if panels:
        sizes = {len((p.get("source") or [])) for _, p in panels} | {len((p.get("target") or [])) for _, p in panels}
        parts.append(_plot(lambda: plots.domain_projection_png(panels), "source and target features before and after",
                           "No projection recorded."))
        parts.append(_muted(f"2-D PCA of up to {max(sizes)} source (training split) and target examples; each panel "
                            "is its own projection of its own features, so compare how much the colours overlap, "
                            "not the axes."))
    return "\n".join(parts)


def _adaptation_curves(s: dict, rows: list[dict], name: Callable[[Any], str], kept: str, criterion: str) -> str:
    """The criterion per epoch for each trained candidate, each one's chosen epoch circled."""
    metric = s.get("criterion_metric")
    by_method = s.get("epochs_by_method") or {}
    if not metric or not by_method:
        return ""
    title = _ADAPTATION_MEASURES.get(criterion, (str(metric), ""))[0]
    curves = {name(m): h for m, h in by_method.items() if isinstance(h, list)}
    chosen = {name(r.get("method")): r.get("epoch") for r in rows}
    probe = next((r for r in rows if r.get("method") == SOURCE_ONLY), {})
    reference = (name(SOURCE_ONLY), probe[criterion]) if _num(probe.get(criterion)) is not None else None
    body = _plot(lambda: plots.criterion_curves_png(curves, str(metric), f"{title} (lower is better)", chosen,
                                                    kept=name(kept), reference=reference),
                 f"{title} per epoch", "")
    if not body:
        return ""
    return (f"<h3>{_e(title)} per epoch</h3>" + body
            + _muted(f"Each candidate keeps the epoch with the lowest {title} (circled); the dashed line is "
                     f"{name(SOURCE_ONLY)}, which trains no epochs."))


def _metric_values(metrics: dict) -> str:
    """Every top-level numeric metric, for tasks that declare no layout of their own."""
    rows = [(_e(k), _cell(v)) for k, v in metrics.items() if _num(v) is not None]
    return _table(("Metric", "Value"), rows) if rows else _muted(f"Metrics: {NOT_EVALUATED}.")


def _head_metrics(metrics: dict) -> str:
    """The "head-metrics" section of a multi-task run: each head's accuracy and macro F1, then its
    per-class table ("" for a run with one head: the section is left out)."""
    heads: dict = metrics.get("heads") or {}
    if not heads:
        return ""
    summary = _table(("Head", "Accuracy", "Macro F1", "Classes", "Examples"), [
        (_e(head) + (" <em>(primary)</em>" if head == metrics.get("primary_head") else ""), _pct(m.get("accuracy")),
         _fmt(m.get("macro_f1")), _int(len(m.get("classes") or m.get("per_class") or [])), _int(m.get("n")))
        for head, m in heads.items()])
    parts = [summary, _muted("One head per label column on the shared backbone; the primary head (the first column) "
                             "gives the headline metrics, the Metrics and Confusion sections and the transfer check.")]
    for head, m in heads.items():
        parts.append(f"<h3>{_e(head)}</h3>" + _metrics_table(m))
    return "\n".join(parts)


def _confusion(metrics: dict) -> str:
    matrix = metrics.get("confusion_matrix")
    if not matrix:
        return _muted(f"Confusion matrix: {NOT_EVALUATED}.")
    classes = list(metrics.get("classes") or [])
    body = _plot(lambda: plots.confusion_matrix_png(matrix, classes), "confusion matrix", "")
    return body + _muted("Rows are true classes, columns predictions; cells show counts, "
                         "colours are normalised per row (recall).")


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


#: The sections a task may declare in `report_sections`: name → (title, body from the report).
SECTIONS: dict[str, tuple[str, Callable[[RunReport], str]]] = {
    "metrics-table": ("Metrics", lambda r: _metrics_table(r.metrics or {})),
    "confusion": ("Confusion matrix", lambda r: _confusion(r.metrics or {})),
    "forecast-metrics": ("Metrics", lambda r: _forecast_metrics(r.metrics or {})),
    "forecasts": ("Forecasts", lambda r: _forecasts(r.examples)),
    "metric-values": ("Metrics", lambda r: _metric_values(r.metrics or {})),
    "head-metrics": ("Metrics per head", lambda r: _head_metrics(r.metrics or {})),
}


def _task_section(name: str, report: RunReport) -> str:
    if name not in SECTIONS:
        raise ValueError(f"report section {name!r} is not one of {', '.join(SECTIONS)} "
                       "(transferkit.reporting.html.SECTIONS)")
    title, body = SECTIONS[name]
    html = body(report)
    return _section(title, html) if html else ""  # a section with nothing to show for this run is left out


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return _e(", ".join(str(v) for v in value))
    return _e(value)


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


_CSS = """
:root { --fg:#1f2328; --muted:#656d76; --border:#d0d7de; --bg-alt:#f6f8fa; --accent:#0969da; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg); background:#fff;
  font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 64px; }
h1 { margin: 0 0 4px; font-size: 1.8em; }
h2 { margin: 36px 0 12px; padding-bottom: 4px; border-bottom: 1px solid var(--border); font-size: 1.3em; }
.meta, .muted { color: var(--muted); }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin-top:16px; }
.card { border:1px solid var(--border); border-radius:8px; padding:12px 18px; min-width:140px; }
.card .big { font-size: 2em; font-weight: 600; color: var(--accent); line-height: 1.2; }
.card .big.na { font-size: 1.1em; color: var(--muted); font-weight: 400; padding: 8px 0; }
.card .label { color: var(--muted); font-size: .9em; }
.warnings { margin-top: 20px; padding: 12px 16px; background:#fff8c5; border:1px solid #d4a72c;
  border-radius: 8px; }
.notes { margin-top: 12px; padding: 12px 16px; background:var(--bg-alt); border:1px solid var(--border);
  border-radius: 8px; color: var(--muted); }
.notes strong { color: var(--fg); }
.warnings ul, .notes ul { margin: 6px 0 0; padding-left: 20px; }
table { border-collapse: collapse; margin: 8px 0; font-size: .93em; }
th, td { border: 1px solid var(--border); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); }
tbody tr:nth-child(even) { background: #fbfcfd; }
tfoot td { background: var(--bg-alt); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
pre { background: var(--bg-alt); padding: 12px; border-radius: 6px; overflow-x: auto; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
figure { margin: 8px 0; }
img { max-width: 100%; height: auto; }
ul.skipped { max-height: 320px; overflow-y: auto; }
p.good, span.good { color: #1a7f37; }
p.bad, span.bad { color: #cf222e; }
h3 { margin: 20px 0 8px; font-size: 1.05em; }
/* the kept candidate: marked, in a colour that says "chosen", not "good" (it may have lost) */
tr.kept td { background: #ddf4ff; font-weight: 600; }
.kept-mark { color: #0550ae; white-space: nowrap; }
/* verdict callouts: the colour says how to read it; only a real loss is red */
p.verdict { padding: 10px 14px; border-left: 4px solid var(--border); background: var(--bg-alt); color: var(--fg); }
p.verdict.good { border-color: #1a7f37; background: #dafbe1; }
p.verdict.good strong { color: #1a7f37; }
p.verdict.bad { border-color: #cf222e; background: #ffebe9; }
p.verdict.bad strong { color: #cf222e; }
p.verdict.neutral { border-color: #0969da; background: #ddf4ff; }
p.verdict.neutral strong { color: #0550ae; }
"""
