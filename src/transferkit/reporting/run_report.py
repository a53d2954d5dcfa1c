"""The report of a run directory, built from its files alone (config.json, metrics.json, history.csv)."""
from __future__ import annotations

from pathlib import Path

from ..rundir import (EXAMPLES_FILE, HISTORY_FILE, REPORT_FILE, read_config, read_history, read_json,
                      read_metrics, run_parents)
from .html import RunReport, write_report
from .runs import relative_report_link


def _json(path: Path) -> dict:
    """A run's JSON object file ({} when absent); a corrupt one raises `RunDirectoryError`."""
    return read_json(path, {}) if path.is_file() else {}


def write_run_report(run_dir: str | Path, title: str | None = None) -> Path:
    """Write `run_dir/report.html` from the run's saved files; returns its path.

    Only the run's files are read (through `transferkit.rundir`); the layout is what the task
    named in config.json declares (see `transferkit.reporting.html.render_html`)."""
    run_dir = Path(run_dir)
    config = read_config(run_dir, {})  # runs of older versions lack keys: every one is optional here
    evaluation = read_metrics(run_dir)
    metrics = evaluation.metrics if evaluation else {}
    run = config.get("run", {})
    data = run.get("data") or {}
    root = Path(data.get("root", "")).name or run_dir.name
    lineage = [s for s in run.get("lineage") or [] if isinstance(s, dict)]
    if lineage:  # an extended run: what it grew from and what was added, not the folder its data share
        first = lineage[0].get("parent")
        added = [c for step in lineage for c in step.get("added") or []]
        root = f"{Path(first).name if first else run_dir.name} + {', '.join(added) or 'no new class'}"
    adapted_to = (run.get("target") or {}).get("unlabeled")
    if adapted_to:  # a domain-adapted run is named after the domain it was adapted to
        root = f"{root} → {Path(str(adapted_to)).name}"
    return write_report(
        run_dir / REPORT_FILE,
        RunReport(
            title=title or f"{root} — {config.get('task', 'run').replace('-', ' ')}"
            + (" adapted" if adapted_to else ""),
            task=config.get("task", ""),
            config={k: v for k, v in config.items() if k != "run"},
            metrics=metrics,
            history=read_history(run_dir / HISTORY_FILE),
            decisions=[tuple(d) for d in run.get("decisions", [])],
            data_summary=data,
            timings=run.get("timings", {}),
            notes=run.get("notes", []),
            warnings=run.get("warnings", []),  # absent in runs saved before notes and warnings were told apart
            examples=_json(run_dir / EXAMPLES_FILE),
            ranking=run.get("ranking") or {},
            domain=run.get("domain") or {},
            target=run.get("target") or {},
            lineage=run.get("lineage") or [],
            parents=[{**p, "link": relative_report_link(run_dir, p["path"])} for p in run_parents(config)],
            search=run.get("search") or {},
        ),
    )
