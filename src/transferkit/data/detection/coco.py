"""COCO: one `annotations.json` (or `instances*.json`) beside the images, boxes as x, y, w, h pixels.

The JSON is read through `safe_json.parse_json` (size, depth and number limits), so a hostile or
damaged file is one line, never a crash. Images the file lists without annotations are background;
crowd regions (`iscrowd: 1`) mark areas to ignore, not objects, and are left out.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ...safe_json import JsonProblem, parse_json
from .base import FormatReader, Problems, ReadResult, check_box, image_size, make_item

NAMES = ("annotations.json", "instances*.json", "_annotations.coco.json", "annotations/instances*.json",
         "annotations/annotations.json")


def annotation_file(root: Path) -> Path | None:
    """The COCO file of a folder: `annotations.json`, else the first `instances*.json` (sorted), else
    `_annotations.coco.json` (as annotation services export it), also in an `annotations/` folder."""
    for pattern in NAMES:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
    return None


def matches(root: Path) -> bool:
    """Whether `root` holds a COCO annotation file."""
    return annotation_file(root) is not None


def _image_path(root: Path, json_file: Path, file_name: str) -> Path:
    """Where an image listed as `file_name` lies: beside the JSON, in the folder, or in `images/`."""
    name = Path(file_name)
    candidates = [json_file.parent / name, root / name, root / "images" / name, root / "images" / name.name,
                  root / name.name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_coco(root: Path, classes: list[str] | None, problems: Problems) -> ReadResult:
    """The images and boxes of the folder's COCO file; categories become classes in id order."""
    json_file = annotation_file(root)
    try:
        data = parse_json(json_file.read_bytes())
    except (OSError, JsonProblem) as exc:
        raise DataError(f"{json_file}: cannot read the COCO file ({exc}); fix or regenerate it.") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("categories"), list):
        raise DataError(f"{json_file}: not a COCO detection file (no 'images' and 'categories' lists); "
                        "export COCO JSON with images, annotations and categories.")
    categories: dict[int, str] = {}
    for number, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            problems.add(f"{json_file}: categories[{number}]", "needs an integer 'id' and a string 'name'; skipped",
                         "fix the category")
            continue
        categories[cat["id"]] = cat["name"]
    names = [categories[k] for k in sorted(categories)]
    known = list(classes) if classes is not None else names
    index = {name: i for i, name in enumerate(known)}
    images: dict[int, dict] = {}
    for number, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not isinstance(img.get("id"), int) or not isinstance(img.get("file_name"), str):
            problems.add(f"{json_file}: images[{number}]", "needs an integer 'id' and a string 'file_name'; skipped",
                         "fix the image entry")
            continue
        images[img["id"]] = img
    boxes: dict[int, list] = {i: [] for i in images}
    annotations = data.get("annotations", [])
    for number, ann in enumerate(annotations if isinstance(annotations, list) else []):
        where = f"{json_file}: annotations[{number}]" + (f" (id {ann['id']})" if isinstance(ann, dict)
                                                         and isinstance(ann.get("id"), int) else "")
        if not isinstance(ann, dict):
            problems.add(where, "is not an object; skipped", "write {image_id, category_id, bbox}")
            continue
        if ann.get("iscrowd"):
            continue
        bbox = ann.get("bbox")
        if ann.get("image_id") not in images:
            problems.add(where, f"image_id {ann.get('image_id')!r} is not in 'images'; box skipped",
                         "list the image or fix the image_id")
            continue
        cat = ann.get("category_id")
        if cat not in categories:
            known_ids = ", ".join(f"{k} {v!r}" for k, v in sorted(categories.items()))
            problems.add(where, f"unknown category_id {cat!r} (categories: {known_ids}); box skipped",
                         "use a category id from 'categories'")
            continue
        if categories[cat] not in index:
            problems.add(where, f"class {categories[cat]!r} is not among the classes {known}; box skipped",
                         "keep to the model's classes, or retrain with this one")
            continue
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            problems.add(where, f"bbox {str(bbox)[:40]} is not 4 numbers [x, y, width, height]; box skipped",
                         "write bbox as [x, y, width, height] in pixels")
            continue
        boxes[ann["image_id"]].append((where, bbox, index[categories[ann["category_id"]]]))
    items = []
    for image_id, img in images.items():
        path = _image_path(root, json_file, img["file_name"])
        size = image_size(path, problems, where=f"{json_file}: image id {image_id}")
        if size is None:
            continue
        width, height = size
        stated = (img.get("width"), img.get("height"))
        if all(_is_number(v) for v in stated) and tuple(stated) != (width, height):
            problems.add(f"{json_file}: image id {image_id}", f"width/height say {stated[0]}x{stated[1]} but "
                         f"{path.name} is {width}x{height}; boxes read as pixels of the image as it is",
                         "rescale the boxes to the image or fix the sizes")
        kept, labels = [], []
        for where, (x, y, w, h), label in boxes[image_id]:
            box = check_box((x, y, x + w, y + h), width, height, where, problems)
            if box is not None:
                kept.append(box)
                labels.append(label)
        items.append(make_item(path, kept, labels, width, height))
    return ReadResult(classes=known, items=items, names=[it.image.name for it in items])


FORMAT = FormatReader(matches=matches, read=read_coco)
