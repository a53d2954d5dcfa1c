"""ONNX export of an object-detection run: one square image in, boxes, scores and labels out, with
non-maximum suppression inside the graph (torchvision's post-processing is traced with the model),
checked against PyTorch before the file is kept.

The graph reads what `DetectionDataset` gives the model at evaluation: a (1, 3, S, S) float 0-1
image, the photo resized to the run's input size S. Its boxes are in that input's pixels (the
runtime maps them back to the photo with `to_original`, as `predict` does); labels are 0-based
class indices (the architecture's background class removed inside the graph).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .specs import ExportError

#: Largest |Δ| an fp32 export may show against PyTorch: box corners in input pixels, and scores
BOX_TOLERANCE = 1e-2
SCORE_TOLERANCE = 1e-4
#: Images the parity check compares (the run's test split, else the given images)
PARITY_IMAGES = 8


class _Graph(nn.Module):
    """The detector on one image tensor, returning (boxes, scores, labels) with 0-based labels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.detector = model.detector
        self.label_offset = int(model.label_offset)

    def forward(self, image: torch.Tensor):
        out = self.detector([image[0]])[0]
        return out["boxes"], out["scores"], out["labels"] - self.label_offset


def _inputs(est: Any, images: Sequence[str | Path] | None) -> list[torch.Tensor]:
    """(1, 3, S, S) tensors as the model reads them: the given images, else the run's test split."""
    from ..data.detection import DetectionDataset
    from ..data.detection.base import make_item

    if images is None:
        from ..rundir import SPLIT_FILE, read_json

        split = read_json(est.run_path_ / SPLIT_FILE, {}) if (est.run_path_ / SPLIT_FILE).is_file() else {}
        root = Path(est.data_root_) if getattr(est, "data_root_", None) else None
        images = [root / p for p in split.get("test", [])][:PARITY_IMAGES] if root else []
        images = [p for p in images if p.is_file()]
    if not images:
        raise ExportError("no images to check the export on: the run's test images are not where they were; pass "
                          "images=[...].")
    items = [make_item(Path(p), [], [], 1, 1) for p in images]
    dataset = DetectionDataset(items, est.image_size_)
    return [dataset[i][0].unsqueeze(0) for i in range(len(dataset))]


def _compare(reference: list[tuple], outputs: list[tuple]) -> dict:
    """Largest differences between PyTorch's and onnxruntime's (boxes, scores, labels) per image."""
    worst = {"max_box_diff": 0.0, "max_score_diff": 0.0, "count_mismatches": 0, "label_mismatches": 0}
    for (b, s, l), (ob, os_, ol) in zip(reference, outputs):
        if len(b) != len(ob):
            worst["count_mismatches"] += 1
            continue
        if len(b):
            worst["max_box_diff"] = max(worst["max_box_diff"], float(np.abs(b - ob).max()))
            worst["max_score_diff"] = max(worst["max_score_diff"], float(np.abs(s - os_).max()))
            worst["label_mismatches"] += int((l != ol).sum())
    return worst


def export_detector(run_dir: str | Path, out: str | Path, images: Sequence[str | Path] | None = None) -> dict:
    """Export the detection run at `run_dir` to ONNX at `out` (inputs "image" (1, 3, S, S); outputs
    "boxes" (n, 4) in input pixels, "scores" (n,), "labels" (n,) 0-based, NMS inside), kept only if
    onnxruntime gives the same boxes as PyTorch on `images` (default: the run's test images).
    Returns what was checked: {"path", "nms_inside", "parity": {...}, "seconds", ...}."""
    import onnxruntime as ort

    from ..tasks import load_run
    from .graphs import OPSET, write_onnx

    start = time.perf_counter()
    est = load_run(run_dir)
    if not hasattr(est.model_, "detector"):
        raise ExportError(f"{run_dir}: a {est.task} run; export_detector exports object-detection runs.")
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    inputs = _inputs(est, images)
    graph = _Graph(est.model_).eval()
    partial = out.with_name(out.name + ".partial")
    exporter = write_onnx(graph, (inputs[0],), partial, ["image"], ["boxes", "scores", "labels"],
                          {"boxes": {0: "boxes"}, "scores": {0: "boxes"}, "labels": {0: "boxes"}})
    try:
        session = ort.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
        with torch.no_grad():
            reference = [tuple(t.numpy() for t in graph(x)) for x in inputs]
        outputs = [tuple(session.run(None, {"image": x.numpy()})) for x in inputs]
        parity = {**_compare(reference, outputs), "images": len(inputs), "box_tolerance": BOX_TOLERANCE,
                  "score_tolerance": SCORE_TOLERANCE}
        parity["passed"] = (parity["count_mismatches"] == 0 and parity["label_mismatches"] == 0
                            and parity["max_box_diff"] <= BOX_TOLERANCE and parity["max_score_diff"] <= SCORE_TOLERANCE)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if not parity["passed"]:
        partial.unlink(missing_ok=True)
        raise ExportError(f"{run_dir}: the ONNX detector disagrees with PyTorch on {len(inputs)} images "
                          f"({json.dumps({k: parity[k] for k in ('count_mismatches', 'label_mismatches', 'max_box_diff', 'max_score_diff')})}); "
                          "nothing written.")
    partial.replace(out)
    return {"path": str(out), "opset": OPSET, "exporter": exporter, "nms_inside": True, "image_size": est.image_size_,
            "classes": list(est.classes_), "parity": parity, "seconds": round(time.perf_counter() - start, 2)}
