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
from ..rundir import (CONFIG_FILE, EXPORTS_FILE, LOCK_FILE, METRICS_FILE, REPORT_FILE, Evaluation, JsonProblem,
                      is_complete_run, parse_json, read_config, read_exports, read_metrics, run_parents)
from ..tasks.presentation import Table
from ..tasks.registry import TASKS, KeyMetric

#: How deep `find_runs` looks below the folder it is given (runs/<group>/<run> is two levels).
MAX_DEPTH = 4
#: Folders never searched: a run's own sub-folders and the usual bulky non-run ones.
_SKIPPED = {"checkpoints", "tokenizer", "lightning_logs", ".git", ".venv", "node_modules", "__pycache__"}
#: The config keys `compare` lists where they differ: the settings a run was made with and its data
#: (not what it measured on the way: per-epoch arrays, PCA points, timings, decisions' free text).
_COMPARED = ("task", "backbone.name", "weights", "params", "strategy.used", "strategy.settings", "run.data.root")
#: Settings that say where or how verbosely a run was made, not what it is.
_NOT_COMPARED = ("params.run_dir", "params.progress")
#: Words of strategy settings that are what the strategy measured while fitting, not how it was set.
_MEASURED = ("accuracy", "loss", "estimate", "examples_fitted", "chosen_by", "seconds", "epochs_run", "history")
#: A list setting longer than this is a measurement (per-epoch values, a grid's scores), not a setting.
_LONGEST_LIST = 8
#: z of the two-sided 95% band `compare` gives a difference.
_Z95 = 1.96
_BOOTSTRAP = 2000


@dataclass
class RunSummary:
    """One run directory as the `runs` table shows it."""

    path: Path
    task: str
    status: str  # "complete", "interrupted" (a checkpoint, no saved model) or "running" (a live lock)
    backbone: str = ""
    strategy: str = ""
    created: str = ""  # ISO time the run was saved
    metrics: dict[str, Any] = field(default_factory=dict)  # the metrics of its evaluation (metrics.json)
    evaluation: Evaluation | None = None  # how they were measured: test split or cross-validation, n
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
                "evaluation": self.evaluation.to_json() if self.evaluation else None,
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


def _walk(root: Path, depth: int, seen: set[Path] | None = None) -> Iterator[Path]:
    """Run directories under `root`, each once: a folder reached again through a symlink (a loop,
    or a second name for a run) is not listed again."""
    seen = {root.resolve()} if seen is None else seen
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in _SKIPPED)
    except OSError:
        return
    for child in children:
        try:
            real = child.resolve()
        except (OSError, RuntimeError):  # a symlink loop that cannot be resolved
            continue
        if real in seen:
            continue
        seen.add(real)
        if _is_run_dir(child):
            yield child
        elif depth > 1:
            yield from _walk(child, depth - 1, seen)


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
        evaluation = read_metrics(path)
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
                      created=str(config.get("created") or _mtime(path)),
                      metrics=evaluation.metrics if evaluation else {}, evaluation=evaluation, parents=parents,
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


def metric_cell(metric: KeyMetric, value: Any) -> str:
    """`value` of `metric` as every table shows it: the metric's one precision, "—" when absent."""
    number = _number(value)
    return "—" if number is None else format(number, metric.format)


def runs_table(runs: list[RunSummary], root: str | Path) -> Table:
    """The `transferkit runs` table: run, task, backbone, strategy, a column per key metric of the tasks
    listed, what they were measured on ("test n=8", "5-fold CV n=200"), date, status, and the exported
    models and the parent run where any run has them. A narrow terminal may leave out task, date,
    exports, parent and strategy (`Table.optional`), in that order."""
    root = Path(root)
    metrics = list({m.key: m for run in runs for m in run.key_metrics()}.values())
    with_parents = any(run.parents for run in runs)
    with_exports = any(run.exports for run in runs)
    rows = []
    for run in runs:
        values = [metric_cell(m, run.metrics.get(m.key)) for m in metrics]
        measured = [run.evaluation.short if run.evaluation else "—"] if metrics else []
        parent = [_relative(Path(run.parents[-1]["path"]), root) if run.parents else "—"] if with_parents else []
        exported = [", ".join(run.exports) or "—"] if with_exports else []
        status = run.status if not run.problem else f"{run.status}: {run.problem}"
        rows.append((_relative(run.path, root), run.task, run.backbone or "—", run.strategy or "—", *values,
                     *measured, _date(run.created), status, *exported, *parent))
    labels = tuple(m.label for m in metrics)
    tasks = sorted({run.task for run in runs})
    what = f" ({tasks[0]})" if len(tasks) == 1 else ""
    return Table(columns=("run", "task", "backbone", "strategy", *labels, *(("measured on",) if metrics else ()),
                          "date", "status", *(("exports",) if with_exports else ()),
                          *(("parent",) if with_parents else ())),
                 rows=rows, title=f"{len(runs)} run{'s' if len(runs) != 1 else ''}{what} under {root}", right=labels,
                 optional=("task", "date", *(("exports",) if with_exports else ()),
                           *(("parent",) if with_parents else ()), "strategy"))


def runs_tables(runs: list[RunSummary], root: str | Path) -> list[Table]:
    """One `runs_table` per task (each with only its own task's metric columns)."""
    return [runs_table(group, root) for group in by_task(runs).values()]


# ---------------------------------------------------------------------------------- compare


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _compared(key: str, value: Any) -> bool:
    """Whether config key `key` is a setting `compare` lists: a run's settings and data, not a
    measurement such as per-epoch values (a long list, or a list of records)."""
    if not _under(key, _COMPARED) or _under(key, _NOT_COMPARED):
        return False
    if key.startswith("strategy.settings.") and any(word in key.rsplit(".", 1)[-1] for word in _MEASURED):
        return False
    if isinstance(value, (list, tuple)):
        if len(value) > _LONGEST_LIST or any(isinstance(v, (list, tuple, Mapping)) for v in value):
            return False
        # fractional numbers in a list are measured values (per-epoch losses), unless it is a grid searched
        measured = any(isinstance(v, float) and not v.is_integer() for v in value)
        return not measured or key.endswith("_grid")
    return True


#: How `compare` bands each metric's difference (the metrics it has no method for get no band, and no verdict).
BAND_METHODS = {
    "accuracy": "95% band of the difference of two proportions (Agresti–Caffo: binomial standard error of "
                "each evaluation on its n, combined)",
    "top5_accuracy": "as accuracy",
    "macro_f1": f"95% band from a bootstrap of each evaluation's confusion matrix ({_BOOTSTRAP} resamples of its "
                "n examples), standard errors combined",
}


def _proportion_variance(p: float, n: int) -> float:
    """Agresti–Caffo: one success and one failure added, so 0% or 100% on few examples still has a spread."""
    adjusted = (p * n + 1) / (n + 2)
    return adjusted * (1 - adjusted) / (n + 2)


def _macro_f1_variance(confusion: Any, seed: int = 0) -> float | None:
    """Variance of macro-F1 over bootstrap resamples of the examples behind `confusion` (rows: true
    class, columns: predicted)."""
    import numpy as np

    try:
        counts = np.asarray(confusion, dtype=float)
    except (TypeError, ValueError):
        return None
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.sum() < 2:
        return None
    n = int(counts.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, (counts / n).ravel(), size=_BOOTSTRAP).reshape(_BOOTSTRAP, *counts.shape)
    tp = np.diagonal(draws, axis1=1, axis2=2)
    predicted, actual = draws.sum(1), draws.sum(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(predicted + actual > 0, 2 * tp / (predicted + actual), 0.0)
    return float(f1.mean(1).var(ddof=1))


def _variance(key: str, evaluation: Evaluation | None) -> float | None:
    """The sampling variance of metric `key` of one evaluation, where `BAND_METHODS` has a method."""
    if evaluation is None or not evaluation.n:
        return None
    value = _number(evaluation.metrics.get(key))
    if value is None:
        return None
    if key in ("accuracy", "top5_accuracy"):
        return _proportion_variance(value, evaluation.n)
    if key == "macro_f1":
        return _macro_f1_variance(evaluation.metrics.get("confusion_matrix"))
    return None


#: Bookkeeping numbers of an evaluation, shown in its description rather than as metrics.
_NOT_METRICS = ("n", "folds", "n_windows", "skipped_files")


@dataclass
class Comparison:
    """Two runs side by side: their metrics with the difference's noise band and a verdict, whether
    their evaluations can be compared at all, and the settings that differ."""

    a: Path
    b: Path
    metrics: list[dict[str, Any]]  # {"metric", "a", "b", "difference", "band", "better", "verdict"} per metric
    config: list[dict[str, Any]]  # {"key", "a", "b"} per differing setting
    evaluations: tuple[Evaluation | None, Evaluation | None] = (None, None)
    not_comparable: list[str] = field(default_factory=list)  # why the two evaluations cannot be compared

    def to_dict(self) -> dict[str, Any]:
        return {"a": str(self.a), "b": str(self.b),
                "evaluations": [e.to_json() if e else None for e in self.evaluations],
                "comparable": not self.not_comparable, "not_comparable": self.not_comparable,
                "band_methods": {r["metric"]: BAND_METHODS[r["metric"]] for r in self.metrics
                                 if r["metric"] in BAND_METHODS},
                "metrics": self.metrics, "config_differences": self.config}


def _comparability(evaluations: list[Evaluation | None], configs: list[dict], tasks: list[Any]) -> list[str]:
    """Why two runs' figures cannot be set against each other (none when they can)."""
    ea, eb = evaluations
    if ea is None or eb is None:
        return []
    reasons = []
    if tasks[0] != tasks[1]:
        reasons.append(f"different tasks ({tasks[0]} vs {tasks[1]})")
    if ea.kind != eb.kind:
        reasons.append(f"a {ea.describe()} against a {eb.describe()}")
    elif ea.n != eb.n or (ea.folds or 0) != (eb.folds or 0):
        reasons.append(f"different numbers of examples scored ({ea.describe()} vs {eb.describe()})")
    roots = [((c.get("run") or {}).get("data") or {}).get("root") if isinstance(c.get("run"), Mapping) else None
             for c in configs]
    if all(roots) and roots[0] != roots[1]:
        reasons.append(f"different data ({roots[0]} vs {roots[1]})")
    return reasons


def compare_runs(a: str | Path, b: str | Path) -> Comparison:
    """Metrics and settings of runs `a` and `b` side by side; raises one line when either is not a run.

    Each difference gets a 95% noise band where `BAND_METHODS` has one; a run is called better only
    when the two evaluations are comparable (same kind, n and data) and the gap is outside the band."""
    paths = [Path(a).expanduser(), Path(b).expanduser()]
    configs = []
    for path in paths:
        if not (path / CONFIG_FILE).is_file():
            raise RunDirectoryError(f"{path}: not a run directory (no {CONFIG_FILE}); pass folders written by "
                                    "`transferkit fit`, `adapt` or `extend` (see `transferkit runs`).")
        configs.append(read_config(path, {}))
    evaluations = [read_metrics(p) for p in paths]
    metrics = [e.metrics if e else {} for e in evaluations]
    tasks = [c.get("task") for c in configs]
    order = [m for t in dict.fromkeys(tasks) for m in _key_metrics(t)]
    directions = {m.key: m.higher_is_better for m in order}
    keys = list(dict.fromkeys([m.key for m in order] + [k for m in metrics for k, v in m.items()
                                                        if _number(v) is not None and k not in _NOT_METRICS]))
    not_comparable = _comparability(evaluations, configs, tasks)
    rows = []
    for key in keys:
        va, vb = _number(metrics[0].get(key)), _number(metrics[1].get(key))
        variances = [_variance(key, e) for e in evaluations]
        band = None if None in variances else _Z95 * math.sqrt(variances[0] + variances[1])
        difference = None if va is None or vb is None else vb - va
        better, verdict = "", ""
        if difference is not None:
            if not_comparable:
                verdict = "not comparable"
            elif band is None:
                verdict = "no noise band"
            elif abs(difference) <= band:
                verdict = "within noise"
            elif key in directions:
                better = "a" if (va > vb) == directions[key] else "b"
                verdict = "better"
        rows.append({"metric": key, "a": metrics[0].get(key), "b": metrics[1].get(key), "difference": difference,
                     "band": band, "better": better, "verdict": verdict})
    flat = [_flatten(c) for c in configs]
    differing = [{"key": k, "a": flat[0].get(k), "b": flat[1].get(k)}
                 for k in dict.fromkeys([*flat[0], *flat[1]])
                 if flat[0].get(k) != flat[1].get(k) and _compared(k, flat[0].get(k)) and _compared(k, flat[1].get(k))]
    return Comparison(a=paths[0], b=paths[1], metrics=rows, config=differing, evaluations=tuple(evaluations),
                      not_comparable=not_comparable)


def _metric_label(key: str, metrics: tuple[KeyMetric, ...]) -> str:
    return next((m.label for m in metrics if m.key == key), key)


def _cell(key: str, value: Any, metrics: tuple[KeyMetric, ...]) -> str:
    metric = next((m for m in metrics if m.key == key), None)
    return metric_cell(metric or KeyMetric(key, key, format=".4f"), value)


def comparison_tables(comparison: Comparison) -> list[Table]:
    """The `transferkit compare` tables: each metric of both runs, b − a with its 95% noise band and
    the verdict (better only outside the band, and only between comparable evaluations), then the
    settings that differ."""
    name_a, name_b = comparison.a.name or str(comparison.a), comparison.b.name or str(comparison.b)
    if name_a == name_b:
        name_a, name_b = str(comparison.a), str(comparison.b)
    known = tuple(m for t in (_config_task(comparison.a), _config_task(comparison.b)) for m in _key_metrics(t))
    ea, eb = comparison.evaluations
    difference = f"{name_b} − {name_a}"

    def verdict(r: dict) -> str:
        return f"{ {'a': name_a, 'b': name_b}[r['better']]} better" if r["better"] else r["verdict"]

    def spec(key: str) -> str:  # the metric's own precision, for its difference and band too
        return next((m.format for m in known if m.key == key), ".4f")

    metric_rows = [(_metric_label(r["metric"], known), _cell(r["metric"], r["a"], known),
                    _cell(r["metric"], r["b"], known),
                    "—" if r["difference"] is None else format(r["difference"], "+" + spec(r["metric"])),
                    "—" if r["band"] is None else "±" + format(r["band"], spec(r["metric"])), verdict(r))
                   for r in comparison.metrics]
    measured = (f"{name_a}: {ea.describe() if ea else 'not evaluated'}; "
                f"{name_b}: {eb.describe() if eb else 'not evaluated'}")
    title = f"metrics ({measured})" if metric_rows else "metrics: neither run was evaluated"
    config_rows = [(r["key"], format_value(r["a"]), format_value(r["b"])) for r in comparison.config]
    return [
        Table(columns=("metric", name_a, name_b, difference, "95% band", "verdict"), rows=metric_rows,
              title=title, right=(name_a, name_b, difference, "95% band")),
        Table(columns=("setting", name_a, name_b), rows=config_rows,
              title=f"{len(config_rows)} setting{'s differ' if len(config_rows) != 1 else ' differs'}"
              if config_rows else "the settings do not differ"),
    ]


def comparison_notes(comparison: Comparison) -> list[str]:
    """The lines below the `compare` tables: whether the evaluations can be compared, and how each band
    was computed."""
    lines = []
    if comparison.not_comparable:
        lines.append("not comparable: " + "; ".join(comparison.not_comparable)
                     + " — no run is called better; evaluate both on the same data (`transferkit evaluate RUN DATA`)")
    methods = dict.fromkeys(BAND_METHODS[r["metric"]] for r in comparison.metrics
                            if r["metric"] in BAND_METHODS and r["band"] is not None)
    for key in ("accuracy", "macro_f1"):
        if BAND_METHODS[key] in methods:
            lines.append(f"band ({_metric_label(key, _CLASSIFICATION_LABELS)}): {BAND_METHODS[key]}")
    if any(r["verdict"] == "no noise band" for r in comparison.metrics):
        lines.append("no noise band: the runs keep no per-example scores for that metric, so no run is called better")
    return lines


_CLASSIFICATION_LABELS = (KeyMetric("accuracy", "accuracy"), KeyMetric("macro_f1", "macro F1"))


def _config_task(path: Path) -> Any:
    try:
        return read_config(path, {}).get("task")
    except RunDirectoryError:
        return None


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
