"""`export_run`: a run directory to a self-contained ONNX file (fp32, and int8 when asked), checked first.

Every export is checked before it is called done: the written file is run by onnxruntime through
`transferkit.runtime` (the same decoding, resizing and tokenising a device does) on held-out
examples of the run and compared with the PyTorch estimator's own predictions (max |Δprob| and
top-1 agreement; forecasts: max |Δ| and relative error). An fp32 file off by more than the
tolerance is deleted and the export fails. The int8 variant (which layers stay float) is chosen
on the run's validation split, and kept only when its accuracy there and then on the run's test
split is within `max_drop` of the fp32 file's; otherwise the fp32 file is the result and the
reason is recorded. Each export is listed in the run's exports.json. What differs per task is in `specs`.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import RunDirectoryError
from ..rundir import EXPORTS_FILE, ONNX_FILE, file_above, read_exports, write_text
from .specs import (PARITY_TOLERANCE, SPECS, ExportError, _evenly, _ForecastExport, _ImageExport,  # noqa: F401 (importable from here)
                    _TaskExport, _TextExport)

log = logging.getLogger(__name__)
#: Held-out examples the parity check compares (evenly spaced over the split).
PARITY_SAMPLES = 64
#: Held-out examples accuracy is measured on, at most.
SCORE_SAMPLES = 2000
#: Training examples the static int8 ranges are calibrated on.
CALIBRATION_SAMPLES = 64
#: Training examples the per-layer int8 sensitivity is measured on.
SENSITIVITY_SAMPLES = 32


@dataclass
class ExportResult:
    """What `export_run` wrote: `path` is the file to ship (the int8 file when it was kept, else the
    fp32 one), `exports` the exports.json entries of this call, `warnings` lines for the user."""

    path: Path
    exports: list[dict]
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- the file
def _write_metadata(path: Path, meta: dict) -> None:
    """Put `meta` (JSON) into the model file's metadata_props under the runtime's key, replacing an older one."""
    import onnx

    from ..runtime.predictor import METADATA_KEY

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(meta, default=float))
    model.producer_name, model.doc_string = "transferkit", f"{meta['task']} model exported from run {meta['run']}"
    onnx.save(model, str(path))


def _size_mb(path: Path) -> float:
    return round(path.stat().st_size / 1e6, 3)


@dataclass
class _Check:
    """Held-out examples and their PyTorch predictions, computed once for every file checked."""

    split: str
    items: Any
    targets: Any
    parity_items: Any
    reference: list[np.ndarray]
    scored: int


def _held_out(spec: _TaskExport, samples: int, score_samples: int = SCORE_SAMPLES) -> _Check:
    """The first non-empty of the test, validation and training splits; `samples` evenly spaced
    examples for parity (with PyTorch's predictions), at most `score_samples` for the score."""
    for name in ("test", "val", "train"):
        items, targets = spec.split(name)
        if len(items):
            break
    else:
        raise ExportError(f"{spec.run_dir}: none of the run's recorded examples can be read (moved or deleted data: "
                          f"{getattr(spec.est, 'data_root_', None) or getattr(spec, 'data', None)}); the export is "
                          "checked on them, so restore the data first.")
    scored = _evenly(len(items), score_samples)
    items, targets = spec.subset(items, targets, scored)
    parity_items, _ = spec.subset(items, targets, _evenly(len(items), samples))
    return _Check(name, items, targets, parity_items, spec.reference(parity_items), len(scored))


def _measure(spec: _TaskExport, path: Path, check: _Check, threads: int | None) -> tuple[dict, float]:
    """(parity against PyTorch, score on the held-out split) of the model file at `path`."""
    from ..runtime import OnnxPredictor

    predictor = OnnxPredictor.load(path, threads=threads)
    outputs = spec.onnx_outputs(predictor, check.parity_items)
    parity = spec.parity(check.reference, outputs)
    parity.update(samples=len(check.reference[0]), split=check.split)
    if len(check.reference[0]) != check.scored:  # the scored examples are more than those compared
        outputs = spec.onnx_outputs(predictor, check.items)
    return parity, spec.score(outputs, check.targets)


def export_run(run_dir: str | Path, format: str = "onnx", quantize: str | None = None, out: str | Path | None = None,
               max_drop: float = 0.01, tta: bool | None = None, samples: int = PARITY_SAMPLES,
               calibration: int = CALIBRATION_SAMPLES, threads: int | None = None,
               score_samples: int = SCORE_SAMPLES) -> ExportResult:
    """Export the run at `run_dir` to ONNX at `out` (default RUN/model.onnx), checked against PyTorch;
    with `quantize="int8"` also to `<out stem>.int8.onnx`, kept only if its accuracy (forecasts:
    MSE, relative) is within `max_drop` of the fp32 file's. `tta` (images) puts the flip average in
    the graph (default: as the run predicts). Appends each export to RUN/exports.json. An fp32 file
    that predicts as the run does records the run's fingerprint: at RUN/model.onnx it is the run's
    ONNX twin (`transferkit.tasks.twin`), which predict and serve use instead of PyTorch."""
    from ..tasks import load_run

    if format != "onnx":
        raise ExportError(f"--format {format}: only onnx is supported.")
    if quantize not in (None, "int8"):
        raise ExportError(f"--quantize {quantize}: only int8 is supported (or leave it out for fp32).")
    run_dir = Path(run_dir).expanduser()
    out = Path(out).expanduser() if out else run_dir / ONNX_FILE
    check_export_target(out, quantize, max_drop)  # before the minutes of tracing and checking
    est = load_run(run_dir)
    spec_class = SPECS.get(est.task)
    if spec_class is None:
        raise ExportError(f"{run_dir}: a {est.task} run; export supports {', '.join(SPECS)} runs.")
    spec = spec_class(est, run_dir, tta)
    check = _held_out(spec, samples, score_samples)
    result = ExportResult(path=out, exports=[])

    start = time.perf_counter()
    partial = out.with_name(out.name + ".partial")
    module, example, inputs, outputs, dynamic = spec.graph()
    try:
        from .graphs import OPSET, write_onnx

        exporter = write_onnx(module, example, partial, inputs, outputs, dynamic)
    except ExportError:
        raise
    except Exception as exc:  # the tracer's own errors: one line saying what could not be traced
        partial.unlink(missing_ok=True)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ExportError(f"{run_dir}: the {est.strategy_} model could not be traced to ONNX ({reason}).") from None
    meta = _metadata(est, spec, run_dir, exporter)
    if spec.tta == bool(getattr(est, "tta", False)):  # predicts as the run does: it may stand in for PyTorch
        from ..tasks.twin import run_fingerprint

        meta["source"] = run_fingerprint(run_dir)
    _write_metadata(partial, {**meta, "precision": "fp32"})
    try:
        parity, fp32_score = _measure(spec, partial, check, threads)
    except BaseException:  # nothing half-checked is left behind (a 13 MB .partial beside the user's files)
        partial.unlink(missing_ok=True)
        raise
    parity.update(tolerance=PARITY_TOLERANCE, passed=spec.parity_ok(parity))
    if not parity["passed"]:
        partial.unlink(missing_ok=True)
        raise ExportError(f"{run_dir}: the ONNX model disagrees with PyTorch on {parity['samples']} {check.split} "
                          f"examples (max |Δ| {parity['max_abs_diff']:.2e} > {PARITY_TOLERANCE:g}); nothing written.")
    score = {"metric": spec.metric, "value": fp32_score, "split": check.split, "samples": check.scored,
             "held_out": check.split != "train"}
    if check.split == "train":
        result.warnings.append(
            f"{run_dir}: the run holds no held-out examples (no test or validation split: cross-validated, its model "
            f"trained on every example), so the export is scored on {check.scored} training examples the model has "
            "seen; these figures are not held-out accuracy" + (" and the int8 check compares int8 with fp32 there"
                                                               if quantize == "int8" else ""))
    _write_metadata(partial, {**meta, "precision": "fp32", "parity": parity, "score": score})
    partial.replace(out)
    entry = {"path": str(out), "format": "onnx", "precision": "fp32", "opset": OPSET, "exporter": exporter,
             "tta": spec.tta, "size_mb": _size_mb(out), "parity": parity, "score": score,
             "seconds": round(time.perf_counter() - start, 2), "created": _now(), "status": "ok",
             **({"source": meta["source"]} if "source" in meta else {})}
    result.exports.append(entry)

    if quantize == "int8":
        int8 = _int8(spec, est, out, meta, check, fp32_score, max_drop, calibration, threads, result)
        if int8 is not None:
            result.path = int8
    _record(run_dir, result.exports)
    return result


def check_export_target(out: Path, quantize: str | None, max_drop: float) -> None:
    """Refuse, in one line and before any work, what would fail or do harm only at the end: an --out
    that is not *.onnx, is a folder, lies under a file or cannot be created, a file there (or at the
    int8 path beside it) that is not a transferkit export (overwriting it would lose it), and a
    --max-drop that is negative, NaN or infinite (no accuracy loss compares to it meaningfully)."""
    import math

    if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float)) or not math.isfinite(max_drop) \
            or max_drop < 0:
        raise ExportError(f"--max-drop {max_drop}: must be a finite number of at least 0 (the largest accuracy "
                          "loss int8 may show, e.g. 0.01 = 1 point).")
    if out.suffix != ".onnx":
        raise ExportError(f"--out {out}: name the file *.onnx.")
    for target in (out, *([out.with_name(out.stem + ".int8.onnx")] if quantize == "int8" else [])):
        if target.is_dir():
            raise ExportError(f"--out {out}: {target} is a folder; name a file, e.g. --out {target / 'model.onnx'}.")
        if target.exists() and not _is_export(target):
            raise ExportError(f"--out {out}: {target} exists and is not a model written by `transferkit export`; "
                              "choose another --out (it is not overwritten).")
    blocking = file_above(out)
    if blocking is not None:
        raise ExportError(f"--out {out}: {blocking} is a file, so no file can be written under it; choose another path.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"--out {out}: cannot create {out.parent} ({exc.strerror or exc}); choose a writable "
                          "location.") from None
    try:  # a trial file: permissions, a read-only mount or a pseudo file system (/proc) all show here
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".transferkit-write-test-"):
            pass
    except OSError as exc:
        raise ExportError(f"--out {out}: cannot write in {out.parent} ({exc.strerror or exc}); choose a writable "
                          "location.") from None


def _is_export(path: Path) -> bool:
    """Whether `path` is an ONNX model carrying transferkit's metadata (one `transferkit export` wrote)."""
    import onnx

    from ..runtime.predictor import METADATA_KEY

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not a protobuf at all: onnx raises DecodeError, ValueError, ...
        return False
    return any(p.key == METADATA_KEY for p in model.metadata_props)


def _metadata(est: Any, spec: _TaskExport, run_dir: Path, exporter: str) -> dict:
    from .graphs import OPSET
    from ..runtime.predictor import METADATA_FORMAT

    return {"format": METADATA_FORMAT, "task": est.task, **spec.metadata(), "run": run_dir.resolve().name,
            "backbone": est.backbone_info_.get("name"), "strategy": est.strategy_, "metrics": est.metrics_ or {},
            "tta": "flip average in the graph" if spec.tta else "none", "opset": OPSET, "exporter": exporter,
            "transferkit_version": __version__, "created": _now()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _loss(spec: _TaskExport, fp32: float, int8: float) -> float:
    """What int8 loses: accuracy points (absolute), or for forecasts the relative increase of the MSE."""
    if spec.metric == "mse":
        return (int8 - fp32) / max(fp32, 1e-12)
    return fp32 - int8


def _choice(spec: _TaskExport, check: _Check) -> tuple[str, Any, Any]:
    """(split, items, targets) the int8 variant is chosen on: the run's validation split when the
    check's split is the test split (so the test score reported stays unbiased by the choice), else
    the check's own examples."""
    if check.split == "test":
        items, targets = spec.split("val")
        if len(items):
            items, targets = spec.subset(items, targets, _evenly(len(items), SCORE_SAMPLES))
            return "val", items, targets
    return check.split, check.items, check.targets


def _int8(spec: _TaskExport, est: Any, fp32_path: Path, meta: dict, check: _Check, fp32_score: float,
          max_drop: float, calibration: int, threads: int | None, result: ExportResult) -> Path | None:
    """Quantise the fp32 file, trying variants in turn and choosing on the validation split
    (`_choice`): the backbone int8 with the head in float first (`first_variant`), then the layers
    measured most sensitive kept in float too (at
    most `MAX_VARIANTS` in all). The first within `max_drop` there is checked once on the held-out
    split (parity, score); within `max_drop` there too, it is written beside the fp32 file as
    <stem>.int8.onnx and returned; otherwise None (and a warning): the fp32 file is the result."""
    import tempfile

    from ..runtime import OnnxPredictor
    from .quantize import (MAX_VARIANTS, _load, first_variant, layer_sensitivity, prepare, quantize_dynamic_int8,
                           quantize_static_qdq, sensitivity_variants, within_max_drop)

    start = time.perf_counter()
    target = fp32_path.with_name(fp32_path.stem + ".int8.onnx")
    target.unlink(missing_ok=True)  # an older int8 file must not pass for this export's
    static = spec.quantization == "static"
    feeds = spec.calibration(calibration) if static else []
    method = (f"static QDQ: int8 weights per channel (7-bit range, safe from the int16 saturation of x86 "
              f"CPUs without VNNI), uint8 activations calibrated (min/max) on "
              f"{sum(len(next(iter(f.values()))) for f in feeds)} training examples" if static
              else "dynamic: int8 weights per channel, activations quantised per batch at run time")
    unit = "relative MSE increase" if spec.metric == "mse" else "accuracy points"
    split, items, targets = _choice(spec, check)
    fp32 = OnnxPredictor.load(fp32_path, threads=threads)
    base = fp32_score if split == check.split else spec.score(spec.onnx_outputs(fp32, items), targets)
    tried: list[dict] = []
    chosen, sensitivity = None, None
    with tempfile.TemporaryDirectory(prefix="transferkit-int8-") as scratch:
        prepared = prepare(fp32_path, Path(scratch) / "prepared.onnx")
        first = first_variant(_load(prepared).graph)
        variants = [first]
        while variants and len(tried) < MAX_VARIANTS:
            variant = variants.pop(0)
            candidate = Path(scratch) / f"int8-{len(tried)}.onnx"
            if static:
                quantize_static_qdq(prepared, candidate, feeds, variant)
            else:
                quantize_dynamic_int8(prepared, candidate, variant)
            _write_metadata(candidate, {**meta, "precision": "int8"})
            try:
                score = spec.score(spec.onnx_outputs(OnnxPredictor.load(candidate, threads=threads), items), targets)
            except Exception as exc:  # onnxruntime cannot run this int8 graph (a kernel's shape limits)
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
                tried.append({"variant": variant.name, "excluded_nodes": len(variant.exclude),
                              "error": f"onnxruntime could not run it: {reason}", "within_max_drop": False})
                score = None
            if score is not None:
                loss = _loss(spec, base, score)
                within = within_max_drop(spec.metric, base, score, len(targets), max_drop)
                tried.append({"variant": variant.name, "excluded_nodes": len(variant.exclude),
                              "excluded": list(variant.exclude), "split": split, "score": score, "loss": loss,
                              **_counts(spec, base, score, len(targets), max_drop),
                              "size_mb": _size_mb(candidate), "within_max_drop": within})
                if within:
                    chosen = (variant, candidate)
                    break
            if sensitivity is None and score is not None:
                # measured once, on the all-int8 model: which layers lose the most signal to int8
                sensitivity = layer_sensitivity(prepared, candidate, spec.sample_feeds(fp32, SENSITIVITY_SAMPLES),
                                                threads=threads)
                variants += sensitivity_variants(sensitivity, keep=first.exclude)
        entry = {"path": str(target), "format": "onnx", "precision": "int8", "quantization": method,
                 "max_drop": max_drop, "loss_unit": unit, "chosen_on": {"split": split, "fp32_score": base},
                 "variants": tried, "created": _now()}
        if sensitivity is not None:
            entry["layer_sensitivity"] = [r.record() for r in sensitivity[:12]]
        kept, reason = None, None
        if chosen is None:
            ran = [t for t in tried if "loss" in t]
            best = min(ran, key=lambda t: t["loss"]) if ran else None
            reason = (f"int8 refused: at best ({best['variant']}) it loses {_shown(best['loss'], spec)} {unit}"
                      f"{_lost(best)} on {len(targets)} {_split_name(split)} examples, more than --max-drop "
                      f"{max_drop:g}{_allowed(best)}" if best else
                      f"int8 refused: no int8 variant runs in onnxruntime ({tried[0]['error']})")
        else:
            variant, candidate = chosen
            parity, score = _measure(spec, candidate, check, threads)
            loss = _loss(spec, fp32_score, score)
            entry.update(variant=variant.name, parity=parity, loss=loss,
                         score={"metric": spec.metric, "value": score, "split": check.split, "samples": check.scored,
                                "held_out": check.split != "train"})
            counts = _counts(spec, fp32_score, score, check.scored, max_drop)
            entry.update(counts)
            if split != check.split and not within_max_drop(spec.metric, fp32_score, score, check.scored, max_drop):
                # the choice does not hold on the held-out split
                reason = (f"int8 refused: {variant.name}, chosen on the {split} split, loses {_shown(loss, spec)} "
                          f"{unit}{_lost(counts)} on {check.scored} {_split_name(check.split)} examples, more than "
                          f"--max-drop {max_drop:g}{_allowed(counts)}")
            else:
                kept = (variant, candidate, parity, entry["score"])
        if kept is None:
            reason += f"; keeping the fp32 model {fp32_path}"
            entry.update(status="refused", reason=reason, seconds=round(time.perf_counter() - start, 2))
            result.exports.append(entry)
            result.warnings.append(reason)
            return None
        variant, candidate, parity, score_entry = kept
        _write_metadata(candidate, {**meta, "precision": "int8", "parity": parity, "score": score_entry,
                                    "quantization": method, "variant": variant.name})
        shutil.move(str(candidate), str(target))  # across file systems: the scratch folder may be elsewhere
    entry.update(status="ok", size_mb=_size_mb(target), seconds=round(time.perf_counter() - start, 2))
    result.exports.append(entry)
    return target


def _counts(spec: _TaskExport, fp32: float, int8: float, n: int, max_drop: float) -> dict:
    """Accuracy: the examples int8 loses and the most `max_drop` allows on `n` (the decision's
    units); {} for forecasts, whose MSE has no count."""
    from .quantize import examples_allowed, examples_lost

    if spec.metric == "mse":
        return {}
    return {"examples_lost": examples_lost(fp32, int8, n), "examples_allowed": examples_allowed(max_drop, n),
            "examples": n}


def _lost(counts: dict) -> str:
    return f" ({counts['examples_lost']} of {counts['examples']} examples)" if "examples_lost" in counts else ""


def _allowed(counts: dict) -> str:
    return f" (it allows {counts['examples_allowed']})" if "examples_allowed" in counts else ""


def _split_name(split: str) -> str:
    """A split as the messages name it: the training split says that it is not held out."""
    return "training (not held-out)" if split == "train" else split


def _shown(loss: float, spec: _TaskExport) -> str:
    return f"{100 * loss:.1f} %" if spec.metric == "mse" else f"{100 * loss:.1f}"


def _record(run_dir: Path, entries: list[dict]) -> None:
    """Add `entries` to RUN/exports.json (an entry for the same file replaces the older one)."""
    path = run_dir / EXPORTS_FILE
    try:
        old = read_exports(run_dir)
    except RunDirectoryError as exc:  # a damaged record is rewritten rather than blocking the export
        log.warning("%s; it is rewritten with this export only", exc)
        old = []
    paths = {e["path"] for e in entries}
    write_text(path, json.dumps({"exports": [e for e in old if e.get("path") not in paths] + entries},
                                indent=2, default=float))
