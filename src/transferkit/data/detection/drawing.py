"""Boxes drawn on images with Pillow: `predict --save-images` and the report's grid of test images."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

#: outline colours: predictions, and the true boxes beside them in the report
PREDICTED = (230, 60, 40)
TRUE = (40, 200, 80)


def draw_boxes(image: Image.Image, boxes: Sequence[dict], colour: tuple[int, int, int] = PREDICTED,
               scale: float = 1.0, width: int = 2) -> Image.Image:
    """`image` (drawn on in place, and returned) with each box {"x1", "y1", "x2", "y2", "label"[,
    "score"]} outlined and captioned; `scale` maps the boxes' pixels to the image's."""
    draw = ImageDraw.Draw(image)
    for box in boxes:
        x1, y1, x2, y2 = (float(box[k]) * scale for k in ("x1", "y1", "x2", "y2"))
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        caption = str(box.get("label", "")) + (f" {box['score']:.2f}" if box.get("score") is not None else "")
        if caption:
            left, top, right, bottom = draw.textbbox((x1, y1), caption)
            lift = min(bottom - top + 2, y1)
            draw.rectangle((left, top - lift, right + 2, bottom - lift), fill=colour)
            draw.text((x1 + 1, y1 - lift), caption, fill=(255, 255, 255))
    return image


def save_drawn(path: str | Path, boxes: Sequence[dict], out_dir: str | Path) -> Path:
    """The image at `path` with `boxes` (its original pixels) drawn, written to `out_dir` under the
    same name as a PNG; returns the written file."""
    from ..images import open_rgb

    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    image = open_rgb(Path(path))
    target = out / (Path(path).stem + ".png")
    draw_boxes(image, boxes).save(target)
    return target
