"""Tiny detection folders in each format, written from boxes given in pixels (shared by the tests)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image


def write_image(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 150)).save(path)
    return path


def voc_xml(filename: str, size: tuple[int, int] | None, objects: list[tuple[str, tuple]]) -> str:
    """A Pascal VOC annotation; `objects` are (name, (xmin, ymin, xmax, ymax))."""
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    objs = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>" for name, b in objects)
    return f"<annotation><filename>{filename}</filename>{size_xml}{objs}</annotation>"


def write_voc(root: Path, images: dict[str, list[tuple[str, tuple]]], size=(64, 48)) -> Path:
    """`images`: file name → objects; each image is written `size` and annotated with that size."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for name, objects in images.items():
        write_image(root / "images" / name, size)
        (root / "annotations" / f"{Path(name).stem}.xml").write_text(voc_xml(name, size, objects))
    return root


def items_to_coco(items, classes: list[str], root: Path, copy: bool = True) -> Path:
    """A COCO folder (images beside annotations.json) holding `items` (DetectionItem list)."""
    root.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id, item in enumerate(items, 1):
        if copy:
            shutil.copy(item.image, root / item.image.name)
        images.append({"id": image_id, "file_name": item.image.name, "width": item.width, "height": item.height})
        for (x1, y1, x2, y2), label in zip(item.boxes.tolist(), item.labels.tolist()):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": label + 1,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0, "area": (x2 - x1) * (y2 - y1)})
    categories = [{"id": i + 1, "name": c} for i, c in enumerate(classes)]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                       "categories": categories}))
    return root


def items_to_yolo(items, classes: list[str], root: Path) -> Path:
    """A YOLO folder (images/, labels/, data.yaml) holding `items`."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for item in items:
        shutil.copy(item.image, root / "images" / item.image.name)
        lines = []
        for (x1, y1, x2, y2), label in zip(item.boxes.tolist(), item.labels.tolist()):
            w, h = item.width, item.height
            lines.append(f"{label} {(x1 + x2) / 2 / w:.8f} {(y1 + y2) / 2 / h:.8f} {(x2 - x1) / w:.8f} {(y2 - y1) / h:.8f}")
        (root / "labels" / f"{item.image.stem}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text("names:\n" + "".join(f"  {i}: {c}\n" for i, c in enumerate(classes)))
    return root
