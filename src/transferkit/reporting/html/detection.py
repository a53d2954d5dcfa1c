"""The sections an object-detection run declares (`report_sections`): per-class AP, a precision-
recall curve per class, and a grid of test images with true and predicted boxes, worst first.

Everything comes from metrics.json (`evaluate()` records the curves and the worst images' boxes);
the images are read from where the data were when the run was evaluated, and a missing file is
said, not drawn.
"""
from __future__ import annotations

import io
from pathlib import Path

from .blocks import NOT_EVALUATED, _e, _fmt, _img, _int, _muted, _plot, _table

#: side of a grid image in the report (px): enough to see a box, small enough for dozens of them
THUMBNAIL = 240


def _ap(value) -> str:
    return "n/a" if value is not None and isinstance(value, (int, float)) and value < 0 else _fmt(value)


def detection_metrics(metrics: dict) -> str:
    """Per class AP@[.5:.95], AP@.5, recall and true boxes, mAP in the footer, and what was measured."""
    per_class = metrics.get("per_class") or {}
    if not per_class:
        return _muted(f"Detection metrics: {NOT_EVALUATED}.")
    counts = metrics.get("box_counts") or {}
    rows = [(_e(name), _ap(m.get("ap")), _ap(m.get("ap_50")), _ap(m.get("recall")), _int(counts.get(name)))
            for name, m in per_class.items()]
    foot = ("<strong>mAP</strong>", _ap(metrics.get("map")), _ap(metrics.get("map_50")), _ap(metrics.get("mar_100")),
            _int(metrics.get("boxes")))
    measured = metrics.get("measured_on") or "the test split"
    return _table(("Class", "AP@[.5:.95]", "AP@.5", "Recall (AR@100)", "True boxes"), rows, foot) + _muted(
        f"COCO evaluation (torchmetrics MeanAveragePrecision, pycocotools) on {measured}; n/a: no true box of "
        "that class there.")


def _curves_png(curves: dict) -> bytes | None:
    from ..plots import _to_png, plt

    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, curve in curves.items():
        ax.plot(curve["recall"], curve["precision"], label=name)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="IoU 0.5")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    return _to_png(fig)


def precision_recall(metrics: dict) -> str:
    """Each class's interpolated precision at COCO's 101 recall points, at IoU 0.5."""
    curves = metrics.get("curves")
    if curves is None:
        return _muted(f"Precision-recall curves: {NOT_EVALUATED}.")
    return _plot(lambda: _curves_png(curves), "precision-recall curve per class",
                 "No class has a true box in the test split.")


def _thumbnail(record: dict) -> bytes | None:
    from PIL import Image

    from ...data.detection.drawing import PREDICTED, TRUE, draw_boxes

    path = Path(record["path"])
    if not path.is_file():
        return None
    with Image.open(path) as image:
        image = image.convert("RGB")
    scale = THUMBNAIL / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    # the photo's pixels may differ from the recorded size when it decodes rotated (EXIF): scale to it
    scale = image.width / float(record.get("width") or image.width / scale)
    draw_boxes(image, [{**b, "label": ""} for b in record.get("true", [])], TRUE, scale)
    draw_boxes(image, record.get("predicted", []), PREDICTED, scale)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def box_grid(metrics: dict) -> str:
    """The test images scored worst (per-image F1 at IoU 0.5), true boxes green, predictions red."""
    records = metrics.get("images")
    if records is None:
        return _muted(f"Test images: {NOT_EVALUATED}.")
    if not records:
        return _muted("No test images.")
    cells, missing = [], 0
    for record in records:
        png = _thumbnail(record)
        if png is None:
            missing += 1
            continue
        caption = f"{Path(record['path']).name} · F1 {_fmt(record.get('f1'), 2)}"
        cells.append(f'<figure class="box-image">{_img(png, caption)}<figcaption>{_e(caption)}</figcaption></figure>')
    note = _muted(f"{len(records)} test images with the lowest F1 (boxes at the run's conf threshold, IoU ≥ 0.5, "
                  "same class), worst first: true boxes green, predictions red with their scores."
                  + (f" {missing} image(s) no longer found where the data were." if missing else ""))
    return f'<div class="box-grid" style="display:flex;flex-wrap:wrap;gap:8px">{"".join(cells)}</div>' + note
