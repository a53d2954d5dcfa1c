"""A run's ONNX twin: RUN/model.onnx, exported from the run's current weights and checked against PyTorch.

`fit` and `extend` write it (`transferkit.export.write_twin`); `predict`, `serve` and
`load_predictor` answer with it instead of rebuilding the PyTorch model, which saves importing
torch (seconds) and most of the memory. A twin counts only while it matches the run: its metadata
records a fingerprint of the run's config.json (rewritten by every save, with a new `created`
time) and weights size, and the parity check it passed; a refit, resume or overwrite that saves
new weights makes an old file stale, and a stale file is never used.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TransferkitError
from ..rundir import CONFIG_FILE, ONNX_FILE, WEIGHTS_FILE

#: --engine values: auto (the twin when valid, else PyTorch), onnx (the twin or an error), torch.
ENGINES = ("auto", "onnx", "torch")


class TwinUnavailable(TransferkitError):
    """`--engine onnx` on a run without a valid ONNX twin (the message says why and what to run)."""


def run_fingerprint(run_dir: str | Path) -> dict[str, Any]:
    """What identifies the weights a run holds now: the SHA-256 of its config.json (written last by
    every save) and the size of its weights file. Cheap: neither reads the weights."""
    run_dir = Path(run_dir).expanduser()
    config = (run_dir / CONFIG_FILE).read_bytes()
    weights = run_dir / WEIGHTS_FILE
    return {"config_sha256": hashlib.sha256(config).hexdigest(),
            "weights_bytes": weights.stat().st_size if weights.is_file() else None}


@dataclass
class TwinChoice:
    """What answers a run's predictions: `predictor` (an `OnnxPredictor`) when its twin is used,
    else None with `reason` saying why PyTorch answers."""

    engine: str  # "onnx" | "torch"
    predictor: Any = None
    reason: str = ""

    def describe(self, run_dir: Path) -> str:
        """One line for `predict --verbose` and logs: which engine answers and why."""
        if self.predictor is None:
            return f"engine: torch ({self.reason})"
        parity = self.predictor.meta.get("parity") or {}
        check = (f"; parity max |Δ| {parity['max_abs_diff']:.1e} on {parity.get('samples')} {parity.get('split')} "
                 "examples" if isinstance(parity.get("max_abs_diff"), (int, float)) else "")
        return f"engine: onnx ({run_dir / ONNX_FILE}, {self.predictor.meta.get('precision', 'fp32')}{check})"


def twin_problem(meta: dict, run_dir: Path) -> str | None:
    """Why the model file with metadata `meta` is not the valid twin of the run at `run_dir` (None: it is)."""
    source = meta.get("source")
    if not isinstance(source, dict):
        return (f"{run_dir / ONNX_FILE} records no source fingerprint (an export with other settings or from an "
                "older version); `transferkit export RUN` makes it the run's twin")
    try:
        current = run_fingerprint(run_dir)
    except OSError as exc:
        return f"{run_dir / CONFIG_FILE} cannot be read ({exc.strerror or exc})"
    if source != current:
        return (f"{run_dir / ONNX_FILE} was exported from other weights than the run holds now (refitted or "
                "overwritten since); `transferkit export RUN` writes it again")
    parity = meta.get("parity")
    if meta.get("precision") != "fp32" or not isinstance(parity, dict) or parity.get("passed") is not True:
        return f"{run_dir / ONNX_FILE} has no passed fp32 parity check; `transferkit export RUN` writes it again"
    return None


def choose_engine(run_dir: str | Path, engine: str = "auto", threads: int | None = None) -> TwinChoice:
    """Which engine answers predictions of the run at `run_dir`: "torch" as asked; otherwise the
    run's ONNX twin when present and valid (loaded, `predictor` set). Without a valid twin,
    "auto" falls back to PyTorch (the reason recorded) and "onnx" raises `TwinUnavailable`."""
    if engine not in ENGINES:
        raise TransferkitError(f"--engine {engine}: choose one of {', '.join(ENGINES)}.")
    run_dir = Path(run_dir).expanduser()
    if engine == "torch":
        return TwinChoice("torch", reason="--engine torch")
    path = run_dir / ONNX_FILE
    reason = None
    if not path.is_file():
        reason = (f"no ONNX twin {path} (the run was fitted with --no-onnx-twin, its export failed, or it predates "
                  "twins); `transferkit export RUN` writes one")
    else:
        try:
            from ..runtime.predictor import OnnxPredictor

            predictor = OnnxPredictor.load(path, threads=threads)
        except (TransferkitError, ImportError) as exc:  # no onnxruntime here, or an unreadable file
            reason = f"{path} cannot be run here ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        else:
            reason = twin_problem(predictor.meta, run_dir)
            if reason is None:
                return TwinChoice("onnx", predictor)
    if engine == "onnx":
        raise TwinUnavailable(f"--engine onnx: {reason}.")
    return TwinChoice("torch", reason=reason)
