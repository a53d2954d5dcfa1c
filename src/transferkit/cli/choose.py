"""The commands that help choose before training: `rank` (which backbone) and `lr-find` (which
learning rate)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.text import Text

from .._format import Table as PlainTable
from .._format import counted
from ..strategies.lr_finder import MAX_LR, MIN_LR, STEPS
from . import app, console, err_console
from .json_output import json_text, print_json
from .options import QUIET_OPTION, _declared_without, _EstimatorOptionsCommand, given_params, parse_options, taken_params
from .render import _print_table
from .train import _check_environment, _check_output_file


@app.command()
def rank(
    data: str = typer.Argument(..., help="Image folder or text table, as for `fit`."),
    candidates: Optional[str] = typer.Option(None, help="Comma-separated backbone names or run directories "
                                             "(default: every installed backbone for the data)."),
    metric: Optional[str] = typer.Option(None, help="Score(s), comma-separated, 'ensemble' (mean rank of knn, "
                                         "linear, logme) or 'all' (see `transferkit list scores`); the first "
                                         "orders the ranking (default: the score `fit --backbone auto` uses, "
                                         "the best on the selection benchmark)."),
    layers: Optional[str] = typer.Option(None, help="Score these intermediate layers instead of the final features, "
                                         "e.g. stage2,stage3,stage4 (images) or layer2,layer4,layer6 (text)."),
    image_sizes: Optional[str] = typer.Option(None, help="Images: score each candidate at these input sizes, e.g. 96,128."),
    sample: int = typer.Option(1000, min=10, help="Training examples to encode (stratified sample)."),
    task: Optional[str] = typer.Option(None, help="image-classification or text-classification (default: detected)."),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the ranking as JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print the ranking as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Rank pretrained backbones on your data by transferability, before any training."""
    from ..selection import SCORES
    from ..selection.rank_backbones import DEFAULT_METRIC, ENSEMBLE, auto_metric, default_candidates, rank_backbones
    from ..tasks.registry import TASKS, detect_task

    task = task or detect_task(data)[0]
    chosen_by_default = metric is None
    metric = metric or DEFAULT_METRIC
    if metric == "all":  # every score (and the ensemble when it is the default), the default first
        metrics = SCORES.names() + ([ENSEMBLE] if DEFAULT_METRIC == ENSEMBLE else [])
        metrics.sort(key=lambda m: m != DEFAULT_METRIC)
    else:
        metrics = [m.strip() for m in metric.split(",")]
    for name in metrics:
        if name != ENSEMBLE:
            SCORES.entry(name)  # unknown names fail before the data are read
    source = TASKS.get(task).ranking_source_of(data, seed=seed)
    names = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else default_candidates(source.modality)
    ranking = rank_backbones(
        source, names, metrics=metrics, sample_size=sample, seed=seed, progress=not quiet,
        layers=layers.split(",") if layers else None,
        image_sizes=[int(v) for v in image_sizes.split(",")] if image_sizes else None)
    result = ranking.to_dict()
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json_text(result) + "\n", encoding="utf-8")
    if as_json:
        print_json(result)
        return
    from .._format import column_format

    metrics = list(ranking.rows[0].scores) if ranking.rows else metrics  # an ensemble adds its members
    formats = {m: column_format([row.scores[m] for row in ranking.rows]) for m in metrics}
    _print_table(PlainTable(
        columns=("rank", "candidate", *metrics, "time"), right=("rank", *metrics, "time"), optional=("time",),
        title=f"{counted(len(ranking.rows), 'candidate')} on {counted(ranking.sample['examples'], 'training example')} "
              f"({ranking.seconds:.0f} s), ordered by {ranking.metric}",
        rows=[(str(i), row.candidate, *("n/a" if row.scores[m] is None else format(row.scores[m], formats[m])
                                        for m in metrics), f"{row.seconds:.0f} s")
              for i, row in enumerate(ranking.rows, 1)]))
    if any(row.scores.get(m) is None for row in ranking.rows for m in metrics):
        console.print("n/a: LEEP and NCE need the source classifier's predictions (packaged ImageNet backbones and "
                      "classification runs have one; text encoders and cut layers do not); imagenet_top1 needs a "
                      "registered image backbone.")
    if chosen_by_default:
        console.print(f"ordered by {escape(auto_metric().evidence())}", highlight=False, soft_wrap=True)
    console.print(f"best: [bold]{escape(ranking.best.candidate)}[/] — fit it with --backbone {escape(ranking.best.backbone)}, "
                  "or let `fit --backbone auto` rank and choose.")


def _fit_hint(data: str, task: str | None, option: list[str], given: dict[str, Any], lr: float) -> str:
    """The `fit` command with the same data and options, at learning rate `lr`."""
    import shlex

    parts = ["transferkit", "fit", shlex.quote(data), *(["--task", task] if task else [])]
    for item in option:
        parts += ["--option", shlex.quote(item)]
    for name, value in given.items():
        flag = "--" + name.replace("_", "-")
        if name == "lr" or value is None:
            continue
        parts += [flag if value else f"--no-{flag[2:]}"] if isinstance(value, bool) else [flag, shlex.quote(str(value))]
    return " ".join([*parts, "--lr", f"{lr:.2g}", "--out", "RUN"])


@app.command("lr-find", cls=_EstimatorOptionsCommand)
@_declared_without
def lr_find(
    ctx: typer.Context,
    data: str = typer.Argument(..., help="Training data, as for `fit` (image folder, text table, time-series CSV, boxed photos)."),
    task: Optional[str] = typer.Option(None, help="The task, one of `transferkit list tasks` (default: detected "
                                       "from the data)."),
    option: list[str] = typer.Option([], "--option", help="Strategy knob KEY=VALUE, repeatable (e.g. "
                                     "layer_decay=0.7)."),
    min_lr: float = typer.Option(MIN_LR, "--min-lr", help="Learning rate of the first step.",
                                 rich_help_panel="Range test"),
    max_lr: float = typer.Option(MAX_LR, "--max-lr", help="Learning rate of the last step (the test stops earlier "
                                 "when the loss diverges).", rich_help_panel="Range test"),
    steps: int = typer.Option(STEPS, "--steps", help="Training batches; the LR grows exponentially over them.",
                              rich_help_panel="Range test"),
    plot: Optional[Path] = typer.Option(Path("lr_find.png"), "--out", "-o", metavar="PLOT.png",
                                        help="Where to write the plot of loss against learning rate.",
                                        rich_help_panel="Range test"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (learning rates, losses, "
                                 "suggestion)."),
    quiet: bool = QUIET_OPTION,
    **params: Any,
) -> None:
    """Learning-rate range test: a few training steps at growing learning rates; suggests a --lr for `fit`.

    The model fine-tuning would train (strategy fine-tune, full, or auto's fine-tuning) trains while the top
    layer group's LR grows from --min-lr to --max-lr (lower groups and the head keep their ratios to it);
    the suggestion is where the loss falls fastest. Nothing is saved but the plot.
    """
    from ..reporting.plots import lr_find_png
    from ..strategies.lr_finder import check_range
    from ..tasks import TASKS, detect_task

    check_range(min_lr, max_lr, steps)  # before the data are read
    if plot is not None:
        _check_output_file(plot.expanduser(), "--out")
    _check_environment()
    detected = task
    if task is None:
        task, why = detect_task(data)
        if not (quiet or as_json):
            console.print(f"[bold]task: {escape(task)}[/] — {escape(why)} (override with --task)", highlight=False)
    cls = TASKS.get(task)
    given = given_params(ctx, params)  # as `fit`: the rest are the task's defaults
    est = cls(progress=not (quiet or as_json), strategy_options=parse_options(option), **taken_params(task, cls, given))
    result = est.lr_find(data, min_lr=min_lr, max_lr=max_lr, steps=steps)
    written = None
    if plot is not None:
        png = lr_find_png(result.lrs, result.losses, result.suggestion, result.default_lr,
                          title=f"Learning-rate range test: {result.strategy}, {counted(result.steps_run, 'step')}")
        if png is not None:
            plot.expanduser().parent.mkdir(parents=True, exist_ok=True)
            plot.expanduser().write_bytes(png)
            written = plot
    hint = _fit_hint(data, detected, option, given, result.suggestion) if result.suggestion else None
    if as_json:
        print_json({"task": task, **result.to_dict(), "plot": str(written) if written else None, "fit": hint})
        return
    ran = (f"{counted(result.steps_run, 'step')} from {result.min_lr:.2g} to {result.lrs[-1]:.2g}"
           + (" (stopped early: the loss diverged)" if result.stopped_early else "") + f", {result.seconds:.0f} s")
    source = "--lr" if "lr" in given else f"{result.strategy}'s default"
    current = (f"current learning rate: [bold]{result.default_lr:.2g}[/] ({source}, top layer group; the head at "
               f"{result.head_lr_ratio:g}×, lower groups at decreasing shares)")
    if result.suggestion is None:
        err_console.print(f"[yellow]warning:[/] no suggestion: too few finite losses ({ran}); raise --steps or widen "
                          "--min-lr/--max-lr.")
        console.print(current)
    else:
        console.print(f"suggested learning rate: [bold]{result.suggestion:.2g}[/] (steepest descent of the loss; {ran})")
        console.print(current)
        console.print(f"use it: {escape(hint)}", soft_wrap=True)
    if written:
        console.print(Text(f"plot: {written}"), soft_wrap=True)
