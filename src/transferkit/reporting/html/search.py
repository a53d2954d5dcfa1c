"""The Hyper-parameter search and Backbone ranking sections."""
from __future__ import annotations

from ...tuning.study import MIN_TRIALS_FOR_IMPORTANCES
from .. import plots
from .blocks import _cell, _duration, _e, _fmt, _int, _muted, _num, _plot, _table


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
