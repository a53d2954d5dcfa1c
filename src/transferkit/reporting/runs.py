"""Runs you can browse: every run under a folder in one table, and two runs side by side.

Read from the run directories' JSON files alone (config.json, metrics.json, exports.json), without
importing torch, so `transferkit runs` answers in well under a second.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import DataError, RunDirectoryError, UnknownNameError
from ..rundir import (CONFIG_FILE, LOCK_FILE, METRICS_FILE, REPORT_FILE, JsonProblem, is_complete_run, parse_json,
                      read_config, read_exports, run_parents)
from ..tasks.presentation import Table
from ..tasks.registry import TASKS, KeyMetric

#: How deep `find_runs` looks below the folder it is given (runs/<group>/<run> is two levels).
MAX_DEPTH = 4
#: Folders never searched: a run's own sub-folders and the usual bulky non-run ones.
_SKIPPED = {"checkpoints", "tokenizer", "lightning_logs", ".git", ".venv", "node_modules", "__pycache__"}
#: Config keys too long or too volatile to compare (free text, timings, ranking tables).
_NOT_COMPARED = ("created", "run.decisions", "run.notes", "run.warnings", "run.timings", "run.ranking",
                 "run.lineage", "run.domain", "run.control", "run.target", "params.run_dir", "params.progress")


@dataclass
class RunSummary:
    """One run directory as the `runs` table shows it."""

    path: Path
    task: str
    status: str  # "complete", "interrupted" (a checkpoint, no saved model) or "running" (a live lock)
    backbone: str = ""
    strategy: str = ""
    created: str = ""  # ISO time the run was saved
    metrics: dict[str, Any] = field(default_factory=dict)  # the test metrics (metrics.json "test")
    parents: list[dict[str, str]] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)  # the exported models kept ("onnx fp32", "onnx int8")
    problem: str = ""  # why the run could not be read, when it could not

    def key_metrics(self) -> tuple[KeyMetric, ...]:
        """The metrics its task lists (none for a task not registered here)."""
        return _key_metrics(self.task)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "task": self.task, "status": self.status, "backbone": self.backbone,
                "strategy": self.strategy, "created": self.created, "parents": self.parents, "exports": self.exports,
                "metrics": {m.key: self.metrics.get(m.key) for m in self.key_metrics() if m.key in self.metrics},
                **({"problem": self.problem} if self.problem else {})}


def _key_metrics(task: Any) -> tuple[KeyMetric, ...]:
    try:
        return TASKS.entry(str(task)).info.key_metrics
    except UnknownNameError:  # a plug-in task not installed here, or a damaged config
        return ()


def by_task(runs: list[RunSummary]) -> dict[str, list[RunSummary]]:
    """`runs` grouped by task name (in their order)."""
    groups: dict[str, list[RunSummary]] = {}
    for run in runs:
        groups.setdefault(run.task, []).append(run)
    return groups


def _is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() or (path / LOCK_FILE).is_file()


def _walk(root: Path, depth: int) -> Iterator[Path]:
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in _SKIPPED)
    except OSError:
        return
    for child in children:
        if _is_run_dir(child):
            yield child
        elif depth > 1:
            yield from _walk(child, depth - 1)


def find_runs(root: str | Path = "runs", depth: int = MAX_DEPTH) -> list[RunSummary]:
    """Every run directory under `root` (or `root` itself), newest first; a run whose files cannot
    be read is listed with the reason rather than hidden."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such folder; pass the folder that holds your runs (transferkit runs DIR).")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; pass the folder that holds your runs (transferkit runs DIR).")
    paths = [root] if _is_run_dir(root) else list(_walk(root, depth))
    summaries = [summarise_run(p) for p in paths]
    return sorted(summaries, key=lambda s: s.created, reverse=True)


def _status(path: Path) -> str:
    if is_complete_run(path):
        return "complete"
    return "running" if (path / LOCK_FILE).is_file() else "interrupted"


def summarise_run(path: str | Path) -> RunSummary:
    """What `runs` lists of one run directory (a damaged one is summarised with its `problem`)."""
    path = Path(path)
    status = _status(path)
    try:
        config = read_config(path, {}) if (path / CONFIG_FILE).is_file() else {}
        metrics = _read_metrics(path)
        exports = _read_exports(path)
    except RunDirectoryError as exc:
        return RunSummary(path=path, task="?", status=status, problem=str(exc))
    backbone = config.get("backbone") if isinstance(config.get("backbone"), Mapping) else {}
    strategy = config.get("strategy") if isinstance(config.get("strategy"), Mapping) else {}
    params = config.get("params") if isinstance(config.get("params"), Mapping) else {}
    name = str(backbone.get("name") or params.get("backbone") or "")
    parents = run_parents(config)
    if any(p["relation"] == "backbone" for p in parents):  # the parent's name says more than its path
        name = f"run {Path(name).name} ({(backbone.get('meta') or {}).get('parent', '?')})"
    return RunSummary(path=path, task=str(config.get("task") or "?"), status=status, backbone=name,
                      strategy=str(strategy.get("used") or params.get("strategy") or ""),
                      created=str(config.get("created") or _mtime(path)), metrics=metrics, parents=parents,
                      exports=exports)


def _read_object(file: Path) -> dict[str, Any]:
    """A run's JSON object file ({} when absent or not an object); an unreadable one raises one line."""
    if not file.is_file():
        return {}
    try:
        data = parse_json(file.read_bytes())
    except OSError as exc:
        raise RunDirectoryError(f"{file}: unreadable ({type(exc).__name__}).") from None
    except JsonProblem as exc:
        raise RunDirectoryError(f"{file}: corrupt JSON ({exc}).") from None
    return data if isinstance(data, dict) else {}


def _read_metrics(path: Path) -> dict[str, Any]:
    test = _read_object(path / METRICS_FILE).get("test")
    return test if isinstance(test, dict) else {}


def _read_exports(path: Path) -> list[str]:
    """The exports `transferkit export` kept (exports.json), as "onnx fp32", "onnx int8"; refused
    int8 attempts are not exports."""
    kept = [e for e in read_exports(path) if e["status"] == "ok"]
    return list(dict.fromkeys(f"{e['format']} {e['precision']}" for e in kept))


def _mtime(path: Path) -> str:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(timespec="seconds")
    except OSError:
        return ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def format_value(value: Any) -> str:
    """A metric or config value in a table cell: numbers to 4 significant digits, lists shortened."""
    number = _number(value)
    if number is not None:
        return str(int(number)) if isinstance(value, int) else f"{number:.4g}"
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(format_value(v) for v in value[:6])
        return f"[{shown}{', …' if len(value) > 6 else ''}] ({len(value)})" if len(value) > 6 else f"[{shown}]"
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _date(created: str) -> str:
    try:
        return datetime.fromisoformat(created).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return created or "—"


def _relative(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root) if path != root else path.name or str(path)
    except ValueError:  # another drive (Windows)
        return str(path)


def runs_table(runs: list[RunSummary], root: str | Path) -> Table:
    """The `transferkit runs` table: run, task, backbone, strategy, a column per key test metric of
    the tasks listed, date, status, and the exported models and the parent run where any run has them."""
    root = Path(root)
    metrics = list({m.key: m for run in runs for m in run.key_metrics()}.values())
    with_parents = any(run.parents for run in runs)
    with_exports = any(run.exports for run in runs)
    rows = []
    for run in runs:
        values = [format_value(run.metrics[m.key]) if _number(run.metrics.get(m.key)) is not None else "—"
                  for m in metrics]
        parent = [_relative(Path(run.parents[-1]["path"]), root) if run.parents else "—"] if with_parents else []
        exported = [", ".join(run.exports) or "—"] if with_exports else []
        status = run.status if not run.problem else f"{run.status}: {run.problem}"
        rows.append((_relative(run.path, root), run.task, run.backbone or "—", run.strategy or "—", *values,
                     _date(run.created), status, *exported, *parent))
    labels = tuple(m.label for m in metrics)
    return Table(columns=("run", "task", "backbone", "strategy", *labels, "date", "status",
                          *(("exports",) if with_exports else ()), *(("parent",) if with_parents else ())),
                 rows=rows, title=f"{len(runs)} run{'s' if len(runs) != 1 else ''} under {root}", right=labels)


# ---------------------------------------------------------------------------------- compare


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _compared(key: str) -> bool:
    return not any(key == skip or key.startswith(skip + ".") for skip in _NOT_COMPARED)


@dataclass
class Comparison:
    """Two runs side by side: their metrics (with which is better) and where their configs differ."""

    a: Path
    b: Path
    metrics: list[dict[str, Any]]  # {"metric", "a", "b", "difference", "better"} per scalar test metric
    config: list[dict[str, Any]]  # {"key", "a", "b"} per differing config key

    def to_dict(self) -> dict[str, Any]:
        return {"a": str(self.a), "b": str(self.b), "metrics": self.metrics, "config_differences": self.config}


def compare_runs(a: str | Path, b: str | Path) -> Comparison:
    """Metrics and config of runs `a` and `b` side by side; raises one line when either is not a run."""
    paths = [Path(a).expanduser(), Path(b).expanduser()]
    configs = []
    for path in paths:
        if not (path / CONFIG_FILE).is_file():
            raise RunDirectoryError(f"{path}: not a run directory (no {CONFIG_FILE}); pass folders written by "
                                    "`transferkit fit`, `adapt` or `extend` (see `transferkit runs`).")
        configs.append(read_config(path, {}))
    metrics = [_read_metrics(p) for p in paths]
    order = [m for t in dict.fromkeys(c.get("task") for c in configs) for m in _key_metrics(t)]
    directions = {m.key: m.higher_is_better for m in order}
    keys = list(dict.fromkeys([m.key for m in order] + [k for m in metrics for k, v in m.items()
                                                        if _number(v) is not None]))
    rows = []
    for key in keys:
        va, vb = _number(metrics[0].get(key)), _number(metrics[1].get(key))
        better = ""
        if va is not None and vb is not None and key in directions and va != vb:
            better = "a" if (va > vb) == directions[key] else "b"
        rows.append({"metric": key, "a": metrics[0].get(key), "b": metrics[1].get(key),
                     "difference": None if va is None or vb is None else vb - va, "better": better})
    flat = [_flatten(c) for c in configs]
    differing = [{"key": k, "a": flat[0].get(k), "b": flat[1].get(k)}
                 for k in dict.fromkeys([*flat[0], *flat[1]]) if _compared(k) and flat[0].get(k) != flat[1].get(k)]
    return Comparison(a=paths[0], b=paths[1], metrics=rows, config=differing)


def comparison_tables(comparison: Comparison) -> list[Table]:
    """The `transferkit compare` tables: test metrics (b − a, and which is better), then the config
    keys whose values differ."""
    name_a, name_b = comparison.a.name or str(comparison.a), comparison.b.name or str(comparison.b)
    if name_a == name_b:
        name_a, name_b = str(comparison.a), str(comparison.b)
    metric_rows = [(r["metric"], format_value(r["a"]), format_value(r["b"]),
                    "—" if r["difference"] is None else f"{r['difference']:+.4g}",
                    {"a": name_a, "b": name_b}.get(r["better"], "")) for r in comparison.metrics]
    config_rows = [(r["key"], format_value(r["a"]), format_value(r["b"])) for r in comparison.config]
    return [
        Table(columns=("test metric", name_a, name_b, f"{name_b} − {name_a}", "better"), rows=metric_rows,
              title="test metrics" if metric_rows else "test metrics: neither run was evaluated",
              right=(name_a, name_b, f"{name_b} − {name_a}")),
        Table(columns=("config", name_a, name_b), rows=config_rows,
              title=f"{len(config_rows)} config difference{'s' if len(config_rows) != 1 else ''}"
              if config_rows else "the configs do not differ"),
    ]


def relative_report_link(run_dir: Path, parent: str) -> str | None:
    """The parent run's report as a link relative to `run_dir`'s report (so a moved runs folder keeps
    working), or None when the parent has no report here."""
    report = Path(parent) / REPORT_FILE
    if not report.is_file():
        return None
    try:
        return Path(os.path.relpath(report.resolve(), Path(run_dir).resolve())).as_posix()
    except ValueError:
        return report.resolve().as_uri()
