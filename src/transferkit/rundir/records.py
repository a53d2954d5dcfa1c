"""What a run records about itself: where its data are, metrics.json, its lineage and its exports."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import RunDirectoryError
from ..safe_json import JsonProblem, parse_json, schema_problem
from .files import CONFIG_FILE, EXPORTS_FILE, METRICS_FILE, SPLIT_FILE, read_json

# ------------------------------------------------------------- data locations
def record_data_location(summary: dict | None, run_dir: str | Path) -> dict | None:
    """The data summary a run saves with its data root made absolute (as seen from the working directory
    of the command that saves it) and also recorded relative to the run directory ("root_from_run"), so
    the run finds its data from any working directory, and after the run and its data moved together."""
    if not isinstance(summary, dict) or not summary.get("root"):
        return summary
    root = os.path.abspath(Path(str(summary["root"])).expanduser())
    try:
        from_run = os.path.relpath(root, os.path.abspath(run_dir))
    except ValueError:  # another drive (Windows): no relative path exists
        from_run = None
    return {**summary, "root": root, "root_from_run": from_run}


def resolve_data_root(summary: Mapping[str, Any] | None, run_dir: str | Path, out_as_given: str | None = None) -> str | None:
    """The data root of a saved run as an absolute path that exists, else the recorded one (None when none
    is recorded). Tried in turn: the recorded root (absolute since data locations are recorded), the root
    relative to the run directory ("root_from_run"), and for a run saved with a relative root, the
    working directory the fit ran in (the run directory less its --out as given, `out_as_given`), then
    the current one."""
    if not isinstance(summary, Mapping) or not summary.get("root"):
        return None
    recorded = Path(str(summary["root"])).expanduser()
    run = Path(os.path.abspath(Path(run_dir).expanduser()))
    candidates = [recorded] if recorded.is_absolute() else []
    if summary.get("root_from_run"):
        candidates.append(run / str(summary["root_from_run"]))
    if not recorded.is_absolute():
        out = Path(str(out_as_given)) if out_as_given else None
        if out is not None and not out.is_absolute() and out.parts and run.parts[-len(out.parts):] == out.parts:
            candidates.append(Path(*run.parts[:-len(out.parts)]) / recorded)
        candidates.append(Path(os.path.abspath(recorded)))
    candidates = [Path(os.path.normpath(c)) for c in candidates]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    return str(candidates[0]) if candidates else str(recorded)


# ------------------------------------------------------------------ metrics.json
#: metrics.json holds one block named after how its figures were measured: "test" (a held-out test
#: split) or "cross_validation" (out-of-fold predictions of every example); each block states `n`, the
#: examples (or windows) scored, and a cross-validation block its `folds`.
TEST, CROSS_VALIDATION = "test", "cross_validation"
#: metrics.json "format": absent in files written before the kinds were told apart (a cross-validated
#: estimate was then kept under "test")
METRICS_FORMAT = 2
METRICS_SCHEMAS: dict[str, dict[str, Any]] = {TEST: {"n": int}, CROSS_VALIDATION: {"n": int, "folds": int}}


@dataclass(frozen=True)
class Evaluation:
    """A run's evaluation as metrics.json records it: `kind` ("test" or "cross_validation"), `n`
    (examples scored), `folds` (cross-validation only) and the `metrics` themselves."""

    kind: str
    n: int | None
    metrics: dict
    folds: int | None = None

    @property
    def cross_validated(self) -> bool:
        return self.kind == CROSS_VALIDATION

    @property
    def domain(self) -> str:
        """"source " for a domain-adapted run, whose figures score the source domain (the target's are
        under "target_domain"), else ""."""
        return "source " if isinstance(self.metrics.get("target_domain"), Mapping) else ""

    def describe(self) -> str:
        """What the figures were measured on: "test split, n=120", "5-fold cross-validation, n=200"."""
        n = "" if self.n is None else f", n={self.n}"
        if self.cross_validated:
            return f"{self.domain}{self.folds or '?'}-fold cross-validation{n}"
        return f"{self.domain}test split{n}"

    def label(self, metric: str) -> str:
        """`metric` named as measured: "test accuracy (n=120)", "cross-validated accuracy (5-fold, n=200)"."""
        n = "" if self.n is None else f"n={self.n}"
        if self.cross_validated:
            return f"{self.domain}cross-validated {metric} ({self.folds or '?'}-fold{', ' + n if n else ''})"
        return f"{self.domain}test {metric}" + (f" ({n})" if n else "")

    @property
    def short(self) -> str:
        """The kind in a table cell: "test n=120", "5-fold CV n=200"."""
        n = "" if self.n is None else f" n={self.n}"
        return f"{self.domain}{self.folds or '?'}-fold CV{n}" if self.cross_validated else f"{self.domain}test{n}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "n": self.n, **({"folds": self.folds} if self.cross_validated else {})}


def metrics_record(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What `save` writes to metrics.json: `metrics` under "cross_validation" (with their `folds`)
    when they are a cross-validated estimate (`evaluation_of`), else under "test"."""
    folds = evaluation_of(metrics).folds
    if folds:
        return {"format": METRICS_FORMAT, CROSS_VALIDATION: {**metrics, "folds": int(folds)}}
    return {"format": METRICS_FORMAT, TEST: dict(metrics)}


def evaluation_of(metrics: Mapping[str, Any]) -> Evaluation:
    """The `Evaluation` of metrics `evaluate()` returned on the run's own data: cross-validated when
    they state an estimate's method ("5-fold cross-validation"), else on the test split."""
    folds = metrics.get("folds") or _folds_of(metrics.get("estimate"))
    n = metrics.get("n") if isinstance(metrics.get("n"), int) else None
    return Evaluation(kind=CROSS_VALIDATION if folds else TEST, n=n, metrics=dict(metrics), folds=folds or None)


def _folds_of(text: Any) -> int | None:
    """5 from "5-fold cross-validation" (the method an estimate states)."""
    head = str(text or "").split("-fold", 1)[0].strip().split(" ")[-1]
    return int(head) if "-fold" in str(text or "") and head.isdigit() else None


def _recorded_folds(run_dir: Path) -> int | None:
    """The folds split.json (or config.json's split) records for a cross-validated run, else None."""
    for name, key in ((SPLIT_FILE, None), (CONFIG_FILE, "split")):
        try:
            data = parse_json((run_dir / name).read_bytes(), max_bytes=1 << 30)
        except (OSError, JsonProblem):
            continue
        data = data.get(key) if key and isinstance(data, dict) else data
        folds = data.get("cross_validation_folds") if isinstance(data, dict) else None
        if isinstance(folds, int) and not isinstance(folds, bool) and folds > 1:
            return folds
    return None


def read_metrics(run_dir: str | Path) -> Evaluation | None:
    """The evaluation of a run (None when it has no metrics.json), its file checked against
    `METRICS_SCHEMAS`: a bad one raises one `RunDirectoryError` line. A run saved before the two kinds
    were told apart kept a cross-validated estimate under "test": its "estimate" method or its
    split.json's folds tell, and it is read as the cross-validation it was."""
    run_dir = Path(run_dir).expanduser()
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    data = read_json(path, {})
    kinds = [k for k in METRICS_SCHEMAS if k in data]
    if not kinds:
        raise RunDirectoryError(f"{path}: not a valid transferkit {METRICS_FILE}: missing key 'test' or "
                                f"'cross_validation'; re-run `transferkit fit`.")
    kind = kinds[-1]  # both: the cross-validation one (a file of ours never has both)
    block = data[kind]
    problem = schema_problem(block, METRICS_SCHEMAS[kind], kind)
    if problem:
        raise RunDirectoryError(f"{path}: not a valid transferkit {METRICS_FILE}: {problem}; re-run `transferkit fit`.")
    folds = block.get("folds")
    if kind == TEST and "format" not in data:  # written before the kinds were told apart
        folds = _folds_of(block.get("estimate")) or _recorded_folds(run_dir)
        if folds:
            kind = CROSS_VALIDATION
    metrics = dict(block)
    if folds:  # as `evaluate()` states a cross-validated estimate
        metrics.update(folds=folds, estimate=metrics.get("estimate") or f"{folds}-fold cross-validation")
    return Evaluation(kind=kind, n=block["n"], metrics=metrics, folds=folds)


# ------------------------------------------------------------------ lineage and exports
#: One `extend` step of config.json's run.lineage: the keys its readers rely on (the report, `runs`, the
#: next `extend`), and those that may be absent or null but have their type when given. Other keys
#: are free (they are shown as they are).
LINEAGE_STEP_SCHEMA: dict[str, Any] = {"old_classes": list[str], "added": list[str], "metrics": dict}
LINEAGE_STEP_OPTIONAL: dict[str, Any] = {"parent": str, "comparison": dict}


def read_lineage(config: Mapping[str, Any], run_dir: str | Path) -> list[dict]:
    """The `extend` steps of a run (config.json run.lineage, [] when none), each checked against
    `LINEAGE_STEP_SCHEMA`; a damaged one raises one `RunDirectoryError` line."""
    run = config.get("run") if isinstance(config.get("run"), Mapping) else {}
    lineage = run.get("lineage") or []
    path = Path(run_dir) / CONFIG_FILE
    if not isinstance(lineage, list):
        raise RunDirectoryError(f"{path}: 'run.lineage' must be a list of extend steps, not "
                                f"{type(lineage).__name__}; the run is damaged, re-run `transferkit extend`.")
    for n, step in enumerate(lineage):
        problem = schema_problem(step, LINEAGE_STEP_SCHEMA, f"run.lineage[{n}]", optional=LINEAGE_STEP_OPTIONAL)
        if problem:
            raise RunDirectoryError(f"{path}: not a valid transferkit {CONFIG_FILE}: {problem}; the run is damaged, "
                                    "re-run `transferkit extend`.")
    return lineage


#: One record of exports.json (`transferkit export`); "status" is "ok" for a kept export.
EXPORT_ENTRY_SCHEMA: dict[str, Any] = {"path": str, "format": str, "precision": str, "status": str}


def read_exports(run_dir: str | Path) -> list[dict]:
    """The exports recorded in RUN/exports.json ([] when absent), each checked against
    `EXPORT_ENTRY_SCHEMA`; a damaged file raises one `RunDirectoryError` line."""
    path = Path(run_dir) / EXPORTS_FILE
    if not path.is_file():
        return []
    entries = read_json(path, {"exports": list})["exports"]
    for n, entry in enumerate(entries):
        problem = schema_problem(entry, EXPORT_ENTRY_SCHEMA, f"exports[{n}]")
        if problem:
            raise RunDirectoryError(f"{path}: not a valid transferkit {EXPORTS_FILE}: {problem}; delete it and "
                                    "run `transferkit export` again.")
    return entries
