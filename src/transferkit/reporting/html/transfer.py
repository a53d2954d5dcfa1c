"""The Transfer check section: the transfer verdict and the domain diagnostics."""
from __future__ import annotations

from .blocks import _e, _fmt, _formatted, _int, _muted, _num, _pct


def _transfer(check: dict, domain: dict, formats: dict[str, str], reference: str | None = None) -> str:
    """The transfer verdict, its metric shown in the format the task declares for it (`formats`:
    metrics key → headline format), and the domain diagnostics: what they were measured on, and the
    reference shifts of the run's task (recorded with the run; `reference`, the task's, for a run
    saved before they were)."""
    parts = []
    if check:
        from ...diagnostics.transfer_gain import verdict_headline

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
