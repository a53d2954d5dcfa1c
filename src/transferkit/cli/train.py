"""The commands that write a run: `fit`, `adapt` (fit on a source, adapted to a target domain) and
`extend` (new classes for a trained classifier)."""
from __future__ import annotations

import contextlib
import logging
import time
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.markup import escape
from rich.text import Text

from ..errors import TrainingInterrupted, TransferkitError
from . import app, console, err_console
from .options import (ADAPT_FLAGS, ONNX_TWIN_OPTION, OUT_OPTION, OVERWRITE_OPTION, QUIET_OPTION, TARGET_HELP,
                      TARGET_LABELS_OPTION, _AdaptCommand, _declared_without, _EstimatorOptionsCommand, given_params,
                      parse_options, taken_params)
from .render import (_markup, _print_baseline_check, _print_metrics, _print_search, _print_summary, _print_table,
                     _print_transfer, _print_twin)


class _PlanPrinter(logging.Handler):
    """Prints the plan an estimator logs before training starts (logger `transferkit.plan`), and
    keeps what it printed so the decisions after training do not say it again."""

    def __init__(self) -> None:
        super().__init__()
        self.printed: set[tuple[str, str]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(record, "plan", None) or [(record.getMessage(), "")]
        if len(lines) > 1:
            console.print("[bold]plan[/]")
        self.printed.update((str(d), str(w)) for d, w in lines)
        for decision, why in lines:
            console.print(f"  [bold]{escape(decision)}[/]" + (f" — {escape(why)}" if why else ""), highlight=False)


@contextlib.contextmanager
def _printing_plan(enabled: bool) -> Iterator[set[tuple[str, str]]]:
    """While fitting from the CLI (not --quiet), print each plan as it is logged; yields the set of
    (decision, why) lines printed."""
    log = logging.getLogger("transferkit.plan")
    handler, state = _PlanPrinter(), (log.level, log.propagate)
    if enabled:
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False  # printed here, not again as a `warning:` line
    try:
        yield handler.printed
    finally:
        log.removeHandler(handler)
        log.level, log.propagate = state


def run_fit(data: Path | str, out: Path, task: str | None = None, quiet: bool = False, unlabeled: Path | None = None,
            target_labels: Path | None = None, onnx_twin: bool = True, **params) -> dict:
    """Fit the task's estimator, evaluate on the held-out test split, save the run (with its ONNX
    twin unless `onnx_twin=False`) and its report; returns the test metrics. `task=None` detects it from the data path; params the task's
    estimator does not take raise (with the task's valid names). `unlabeled` (and `target_labels`,
    only to report) adapt the model to a target domain (`fit(data, unlabeled=...)`)."""
    from ..reporting import write_run_report
    from ..tasks import TASKS, detect_task
    from ..strategies.summary import strategy_summary

    if task is None:
        task, why = detect_task(data)
        if not quiet:
            console.print(f"[bold]task: {escape(task)}[/] — {escape(why)} (override with --task)", highlight=False)
    cls = TASKS.get(task)
    est = cls(run_dir=out, progress=not quiet, **taken_params(task, cls, params))
    with _printing_plan(not quiet) as planned:
        est.fit(data, unlabeled=unlabeled, target_labels=target_labels)
    from ..strategies.distributed import is_global_zero

    if not is_global_zero():  # another process of a distributed run: rank 0 evaluates, saves and reports
        return {}
    metrics = est.evaluate()
    est.save(out)
    twin = _write_twin(out, onnx_twin)
    report = write_run_report(out)
    summary = strategy_summary({"strategy": {"used": est.strategy_, "settings": est.strategy_settings_}},
                               (getattr(est, "target_", None) or {}).get("summary"), metrics)
    if not quiet:
        for decision, why in est.decisions_:
            if (str(decision), str(why)) not in planned:  # the plan said it already
                console.print(f"[bold]{escape(str(decision))}[/] — {escape(str(why))}", highlight=False)
        for note in est.notes_:
            if not summary or note not in summary.covers_notes:  # the strategy's summary says it
                console.print(f"[dim]note:[/] {escape(note)}", highlight=False)
    for warning in getattr(est, "warnings_", []):  # need attention, so shown even with --quiet
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if summary and summary.lead is not None:  # e.g. the domain adapted to, before the source's test split
        console.print(_markup(summary.lead), highlight=False, soft_wrap=True)
    _print_metrics(est, metrics, summary.scored_on if summary else None)
    _print_search(getattr(est, "search_", None))
    _print_baseline_check(metrics.get("baseline_check"))
    _print_transfer(metrics.get("transfer"))
    if summary:
        _print_summary(summary.terminal)
    _print_twin(twin, quiet)
    console.print(Text(f"run saved to {out}\nreport: {report}"), soft_wrap=True)
    return metrics


def _write_twin(run_dir: Path, enabled: bool):
    """The run's ONNX twin written and checked (`transferkit.export.write_twin`), or None when not asked."""
    if not enabled:
        return None
    from ..export import write_twin

    return write_twin(run_dir)



def _existing(path: Path | None, flag: str, what: str) -> None:
    """Refuse a data path that does not exist before anything slow starts (or a run folder is made)."""
    if path is not None and not Path(path).expanduser().exists():
        raise TransferkitError(f"{flag} {path}: no such file or folder; give {what}.")


def _check_output_file(path: Path, flag: str) -> None:
    """Refuse an output file path that cannot be written, before the work that produces it: a folder,
    a path under a file, or a folder that cannot be created or written in."""
    import tempfile

    if path.is_dir():
        raise TransferkitError(f"{flag} {path}: is a folder; name a file, e.g. {flag} {path / 'lr_find.png'}.")
    from ..rundir import file_above

    blocking = file_above(path)
    if blocking is not None:
        raise TransferkitError(f"{flag} {path}: {blocking} is a file, so nothing can be written under it; "
                               "choose another path.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".transferkit-write-test-"):
            pass
    except OSError as exc:
        raise TransferkitError(f"{flag} {path}: cannot write in {path.parent} ({exc.strerror or exc}); choose a "
                               "writable location.") from None


def _check_environment() -> None:
    """The environment variables a fit reads, checked before the run folder is made (one line each)."""
    from ..data.datasets import image_cache_bytes
    from ..models.feature_cache import check_cache_environment

    image_cache_bytes()
    check_cache_environment()


def _check_strategy_options(strategy: Any, adapting: bool, options: dict[str, Any], default: Any = None) -> None:
    """Check --option names and values against the strategy that will run, before any data are read:
    the one named. Left to choose (none named, or the tasks' `default`, which picks a strategy from the
    data and hands it the options, checked then), nothing, unless adapting: then the strategy the
    registry marks `unlabelled` runs, and checks them now."""
    name = getattr(strategy, "value", strategy)
    if not options:
        return
    from ..strategies import STRATEGIES, create_strategy
    from ..strategies.registry import strategies_with

    if name in (None, default):
        if not adapting:
            return
        name = strategies_with("unlabelled")[0]
    if name in STRATEGIES.names():  # an unknown name is the estimator's to refuse, in its words
        create_strategy(name, **options)


def _default(ctx: typer.Context, name: str) -> Any:
    """The default of the command's parameter `name` (None when it has none)."""
    return next((p.default for p in ctx.command.params if p.name == name), None)


def _fit_command(ctx: typer.Context, data: str, out: Path, task: str | None, option: list[str], overwrite: bool,
                 quiet: bool, params: dict[str, Any], target: tuple[str, Path | None] = ("--adapt-to", None),
                 target_labels: Path | None = None, strategy_flags: dict[str, Any] | None = None,
                 onnx_twin: bool = True) -> None:
    """What `fit` and `adapt` run: check the target-domain paths, prepare and lock `out`, fit with
    the options given on the command line (`target` = (its flag, the path) adapts to that domain;
    `strategy_flags` are strategy options given as flags of their own), save, report."""
    from ..rundir import prepare_out
    from ..strategies.distributed import launch_rank

    flag, unlabeled = target
    if target_labels is not None and unlabeled is None:
        raise TransferkitError(f"--target-labels {target_labels}: labelled target data only evaluate a domain "
                               "adaptation; give the unlabelled target data too (--adapt-to TARGET, or "
                               "`transferkit adapt SOURCE TARGET`).")
    _existing(unlabeled, flag, "the target domain's unlabelled data (a folder of images, or a text file with one "
                               "text per line)")
    _existing(target_labels, "--target-labels", "labelled target data (a folder of class folders, or a labelled "
                                                "text table)")
    strategy_options = parse_options(option)
    for name, value in (strategy_flags or {}).items():
        if value is None:
            continue
        value = value.value if isinstance(value, Enum) else value
        if strategy_options.get(name, value) != value:
            raise TransferkitError(f"--{name} {value} and --option {name}={strategy_options[name]} disagree; "
                                   f"give the {name} once.")
        strategy_options[name] = value
    _check_strategy_options(params.get("strategy"), unlabeled is not None, strategy_options,
                            default=_default(ctx, "strategy"))
    _check_environment()
    resume = bool(params.get("resume"))
    if launch_rank() != 0:
        # another process of a distributed run (started by Lightning's launcher, torchrun or srun): it
        # trains with rank 0, which alone checks, locks and writes `out` and prints
        run_fit(data, out, task=task, quiet=True, strategy_options=strategy_options, unlabeled=unlabeled,
                target_labels=target_labels, **given_params(ctx, params))
        return
    prepared = prepare_out(out, data, overwrite=overwrite, resume=resume)  # checked and locked until the end
    if prepared.complete:
        prepared.release()
        console.print(Text(prepared.message), soft_wrap=True)
        return
    try:
        run_fit(data, out, task=task, quiet=quiet, strategy_options=strategy_options, unlabeled=unlabeled,
                target_labels=target_labels, onnx_twin=onnx_twin, **given_params(ctx, params))
    except TrainingInterrupted as exc:
        if not quiet:  # the progress bar's line is left open (no newline): the message starts its own
            err_console.file.write("\n")
        err_console.print(Text(f"interrupted: {exc}"), soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        prepared.release()


@app.command(cls=_EstimatorOptionsCommand)
@_declared_without
def fit(
    ctx: typer.Context,
    data: str = typer.Argument(..., help="Image folder (class sub-folders), text table (CSV/TSV/JSONL or a folder "
                               "with train/dev files, or a Hugging Face data set name), a time-series CSV, or a "
                               "folder of boxed photos (Pascal VOC, COCO or YOLO)."),
    out: Path = OUT_OPTION,
    task: Optional[str] = typer.Option(None, help="The task, one of `transferkit list tasks` (default: detected "
                                       "from the data)."),
    option: list[str] = typer.Option([], "--option", help="Strategy knob KEY=VALUE, repeatable (e.g. layer_decay=0.7)."),
    overwrite: bool = OVERWRITE_OPTION,
    quiet: bool = QUIET_OPTION,
    adapt_to: Optional[Path] = typer.Option(None, "--adapt-to", metavar="TARGET", rich_help_panel="Domain adaptation",
                                            help=f"{TARGET_HELP} Strategy auto becomes adapt (as `adapt` does)."),
    target_labels: Optional[Path] = TARGET_LABELS_OPTION,
    onnx_twin: bool = ONNX_TWIN_OPTION,
    **params: Any,
) -> None:
    """Adapt a pretrained backbone to your data; writes a run directory with model, metrics and report."""
    _fit_command(ctx, data, out, task, option, overwrite, quiet, params, target=("--adapt-to", adapt_to),
                 target_labels=target_labels, onnx_twin=onnx_twin)


@app.command(cls=_AdaptCommand)
@_declared_without
def adapt(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="Labelled source data: an image folder (class sub-folders) or a text "
                                 "table, as for `fit`."),
    target_data: Path = typer.Argument(..., metavar="target", help=TARGET_HELP),
    out: Path = OUT_OPTION,
    task: Optional[str] = typer.Option(None, help="image-classification or text-classification (default: detected "
                                       "from the source data)."),
    option: list[str] = typer.Option([], "--option", help="Strategy knob KEY=VALUE, repeatable (e.g. bottleneck=64, "
                                     "trade_off=0.5, criterion=entropy)."),
    overwrite: bool = OVERWRITE_OPTION,
    quiet: bool = QUIET_OPTION,
    target_labels: Optional[Path] = TARGET_LABELS_OPTION,
    onnx_twin: bool = ONNX_TWIN_OPTION,
    **params: Any,
) -> None:
    """Adapt to a target domain from its unlabelled data: DANN, CDAN, CORAL, MMD or self-training.

    Epochs, and under --method auto the method, are chosen without target labels; source-only stays unless one helps.
    """
    strategy_flags = {name: params.pop(name, None) for name in ADAPT_FLAGS}
    _fit_command(ctx, source, out, task, option, overwrite, quiet, params, target=("TARGET", target_data),
                 target_labels=target_labels, strategy_flags=strategy_flags, onnx_twin=onnx_twin)


@app.command()
def extend(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run directory of a classifier (`transferkit fit`)."),
    data: str = typer.Argument(..., help="Labelled new data, read as `fit` reads it (class folders, a labelled "
                               "table): its new classes are added, examples of old classes are learned too."),
    out: Path = OUT_OPTION,
    compare: bool = typer.Option(False, "--compare", help="Also measure naive fine-tuning on the new data alone and "
                                 "retraining on all data (the upper bound; costs a full fit)."),
    train_backbone: bool = typer.Option(False, "--train-backbone", help="Fine-tuned runs: fine-tune the whole model "
                                        "(exemplar replay, distillation of the old classes' logits, weight aligning) "
                                        "instead of refitting the head on the stored exemplar features; slower, and "
                                        "it forgets more (benchmarks/incremental.py)."),
    overwrite: bool = OVERWRITE_OPTION,
    quiet: bool = QUIET_OPTION,
    onnx_twin: bool = ONNX_TWIN_OPTION,
) -> None:
    """Add the classes of new data to a trained classifier without forgetting the old ones."""
    from ..reporting import write_run_report
    from ..rundir import prepare_out
    from ..tasks import load_run
    from ..tasks.growth import growth_table

    _existing(Path(data), "DATA", "labelled new data (a folder of class folders, or a labelled text table)")
    if Path(out).expanduser().resolve() == Path(run_dir).expanduser().resolve():
        raise TransferkitError(f"--out {out}: is the run being extended; write the extended run to a new folder "
                               "(the parent stays as it was, and the new run records it as its parent).")
    started = time.perf_counter()
    est = load_run(run_dir)
    if not hasattr(est, "extend"):
        raise TransferkitError(f"{run_dir}: a {est.task} run; only classifiers can be extended with new classes.")
    loaded = time.perf_counter() - started
    prepared = prepare_out(out, data, overwrite=overwrite)
    try:
        est.progress = not quiet
        est.extend(data, compare=compare, train_backbone=train_backbone)
        metrics = est.metrics_  # scored as a fit is: its cross-validated estimate, else the merged test split
        est.timings_ = {"loading the parent run": loaded, **est.timings_}
        est.timings_["total extend"] = time.perf_counter() - started  # the whole command, but saving the run
        est.save(out)
        twin = _write_twin(out, onnx_twin)
        report = write_run_report(out)
    finally:
        prepared.release()
    step = est.lineage_[-1]
    if not quiet:
        for note in est.notes_:
            console.print(f"[dim]note:[/] {escape(note)}")
    for warning in est.warnings_:  # one line each, whatever the terminal's width (paths may hold brackets)
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True, highlight=False)
    _print_table(growth_table(step))
    if metrics is not None:
        _print_metrics(est, metrics)
    _print_twin(twin, quiet)
    console.print(Text(f"run saved to {out} (parent: {run_dir})\nreport: {report}"), soft_wrap=True)
