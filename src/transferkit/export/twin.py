"""`write_twin`: the ONNX twin a run keeps beside its PyTorch weights, written at the end of fit and extend.

The twin is the fp32 export at RUN/model.onnx, made by `export_run` (same graph, same parity
check, listed in exports.json) with the run's own test-time augmentation, so `predict` and
`serve` can answer with onnxruntime alone. It is a convenience, never a condition: when the
model cannot be traced or disagrees with PyTorch, the run still stands, the outcome says why,
and predictions come from PyTorch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import TransferkitError
from ..rundir import ONNX_FILE

#: Held-out examples the twin's parity check compares (and scores): enough to catch a wrong graph,
#: few enough that the check adds seconds, not minutes, to a fit on two CPU cores.
TWIN_SAMPLES = 32


@dataclass
class TwinOutcome:
    """What `write_twin` did: `path` of the twin (None when it was not written) and one line for the user."""

    path: Path | None
    message: str
    seconds: float
    size_mb: float | None = None
    parity: dict | None = None


def write_twin(run_dir: str | Path, samples: int = TWIN_SAMPLES, threads: int | None = None) -> TwinOutcome:
    """Export the saved run at `run_dir` to its ONNX twin RUN/model.onnx, checked on `samples`
    held-out examples against PyTorch; never raises for a model that cannot be exported: the
    outcome's message says why and the run keeps predicting with PyTorch."""
    from .onnx_export import export_run

    run_dir = Path(run_dir).expanduser()
    start = time.perf_counter()
    try:
        result = export_run(run_dir, samples=samples, score_samples=samples, threads=threads)
    except TransferkitError as exc:  # not traceable, parity failed, data moved, onnx not installed...
        reason = str(exc).removeprefix(f"{run_dir}: ")
        return TwinOutcome(None, f"no ONNX twin: {reason} predict and serve use PyTorch.",
                           round(time.perf_counter() - start, 2))
    except Exception as exc:  # an exporter's own failure must not fail a run that trained fine
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        return TwinOutcome(None, f"no ONNX twin: the export failed ({type(exc).__name__}: {reason}); predict and "
                                 "serve use PyTorch.", round(time.perf_counter() - start, 2))
    entry = result.exports[0]
    seconds = round(time.perf_counter() - start, 2)
    parity = entry["parity"]
    message = (f"ONNX twin {run_dir / ONNX_FILE}: {entry['size_mb']:.1f} MB, {seconds:.1f} s; vs PyTorch max |Δ| "
               f"{parity['max_abs_diff']:.1e} on {parity['samples']} {parity['split']} examples "
               "(predict and serve use it; --engine torch for PyTorch)")
    return TwinOutcome(Path(entry["path"]), message, seconds, entry["size_mb"], parity)
