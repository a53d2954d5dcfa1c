"""The sections a task declares in `report_sections` (`SECTIONS`): metrics tables, the confusion
matrix, forecasts and the metrics of each head."""
from __future__ import annotations

from typing import Callable

from .. import plots
from . import detection
from .blocks import NOT_EVALUATED, _cell, _e, _fmt, _int, _muted, _num, _pct, _plot, _section, _table
from .model import RunReport


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


#: The sections a task may declare in `report_sections`: name → (title, body from the report).
SECTIONS: dict[str, tuple[str, Callable[[RunReport], str]]] = {
    "metrics-table": ("Metrics", lambda r: _metrics_table(r.metrics or {})),
    "confusion": ("Confusion matrix", lambda r: _confusion(r.metrics or {})),
    "forecast-metrics": ("Metrics", lambda r: _forecast_metrics(r.metrics or {})),
    "forecasts": ("Forecasts", lambda r: _forecasts(r.examples)),
    "metric-values": ("Metrics", lambda r: _metric_values(r.metrics or {})),
    "head-metrics": ("Metrics per head", lambda r: _head_metrics(r.metrics or {})),
    "detection-metrics": ("Metrics", lambda r: detection.detection_metrics(r.metrics or {})),
    "pr-curves": ("Precision-recall curves", lambda r: detection.precision_recall(r.metrics or {})),
    "box-grid": ("Test images, worst first", lambda r: detection.box_grid(r.metrics or {})),
}


def _task_section(name: str, report: RunReport) -> str:
    if name not in SECTIONS:
        raise ValueError(f"report section {name!r} is not one of {', '.join(SECTIONS)} "
                       "(transferkit.reporting.html.SECTIONS)")
    title, body = SECTIONS[name]
    html = body(report)
    return _section(title, html) if html else ""  # a section with nothing to show for this run is left out
