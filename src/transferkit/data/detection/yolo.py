"""YOLO: `images/`, `labels/*.txt` (one `class cx cy w h` line per box, normalised to 0-1) and
`data.yaml` naming the classes (`names:` as a list or an id → name mapping; a `classes.txt` with
one name per line also works). An image without a label file, or with an empty one, is background.
"""
from __future__ import annotations

import math
from pathlib import Path

from ...errors import DataError
from ..images import IMAGE_EXTENSIONS, is_junk
from .base import FormatReader, Problems, ReadResult, check_box, image_size, make_item

YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml")


def matches(root: Path) -> bool:
    """Whether `root` holds `images/` and `labels/` folders."""
    return (root / "labels").is_dir() and (root / "images").is_dir()


def yaml_file(root: Path) -> Path | None:
    """The data set's data.yaml: in `root`, or above it when `root` is a split folder."""
    for name in YAML_NAMES:
        for folder in (root, root.parent):  # a split folder (train/) reads the data set's data.yaml
            if (folder / name).is_file():
                return folder / name
    return None


def read_yaml(path: Path) -> dict:
    """`data.yaml` as a mapping (`yaml.safe_load`: plain data only, never Python objects)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        if len(text) > 2**20:
            raise DataError(f"{path}: {len(text)} characters, too large for a data.yaml; keep names and paths only.")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise DataError(f"{path}: cannot read it{at} ({type(exc).__name__}); write valid YAML with a "
                        "'names:' list.") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a YAML mapping; write 'names: [class0, class1, ...]'.")
    return data


def class_names(root: Path) -> list[str]:
    """Class names by id from data.yaml's `names` (list or {id: name}), else classes.txt."""
    path = yaml_file(root)
    if path is not None:
        names = read_yaml(path).get("names")
        if isinstance(names, dict) and all(isinstance(k, int) for k in names) \
                and sorted(names) == list(range(len(names))):
            return [str(names[k]) for k in sorted(names)]
        if isinstance(names, list) and names:
            return [str(n) for n in names]
        raise DataError(f"{path}: 'names' must list the class names in id order "
                        "(names: [cat, dog] or names: {0: cat, 1: dog}).")
    for folder in (root, root.parent):
        if (folder / "classes.txt").is_file():
            return [line.strip() for line in (folder / "classes.txt").read_text(encoding="utf-8").splitlines()
                    if line.strip()]
    raise DataError(f"{root}: YOLO labels need class names; add data.yaml with 'names: [class0, class1, ...]'.")


def _label_file(images: Path, labels: Path, image: Path) -> Path:
    return (labels / image.relative_to(images)).with_suffix(".txt")


def read_yolo(root: Path, classes: list[str] | None, problems: Problems) -> ReadResult:
    """Every image under `images/` with its `labels/` file; normalised centre boxes → pixel corners."""
    names = class_names(root)
    known = list(classes) if classes is not None else names
    index = {name: i for i, name in enumerate(known)}
    images_dir, labels_dir = root / "images", root / "labels"
    images = sorted(p for p in images_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                    and not any(is_junk(Path(part)) for part in p.relative_to(images_dir).parts))
    with_image = {_label_file(images_dir, labels_dir, p) for p in images}
    for label in sorted(labels_dir.rglob("*.txt")):
        if label not in with_image and not is_junk(label) and label.name != "classes.txt":
            problems.add(label, f"no image {label.stem}.* in {images_dir}; labels skipped",
                         "put the image there or remove the label file")
    items = []
    for image in images:
        size = image_size(image, problems)
        if size is None:
            continue
        width, height = size
        label_file = _label_file(images_dir, labels_dir, image)
        boxes, labels = [], []
        if label_file.is_file():
            try:
                lines = label_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                problems.add(label_file, f"unreadable ({type(exc).__name__}); image used without boxes",
                             "save the labels as UTF-8 text")
                lines = []
            for number, line in enumerate(lines, 1):
                where = f"{label_file}:{number}"
                fields = line.split()
                if not fields:
                    continue
                values = _floats(fields)
                if len(fields) != 5 or values is None or not float(values[0]).is_integer():
                    problems.add(where, f"{line.strip()[:60]!r} is not 'class cx cy w h' (an integer class and "
                                 "four numbers); line skipped", "write one box per line, normalised to 0-1")
                    continue
                cls = int(values[0])
                if not 0 <= cls < len(names) or names[cls] not in index:
                    problems.add(where, f"unknown class id {cls} (data.yaml names ids 0-{len(names) - 1}); "
                                 "box skipped", "use a class id listed in data.yaml's names")
                    continue
                cx, cy, w, h = values[1:]
                box = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
                box = check_box(box, width, height, where, problems)
                if box is not None:
                    boxes.append(box)
                    labels.append(index[names[cls]])
        items.append(make_item(image, boxes, labels, width, height))
    given = _yaml_splits(root, images_dir, items)
    return ReadResult(classes=known, items=items, names=[it.image.name for it in items], given=given,
                      source="data.yaml's " + "/".join(given) + " folders" if given else "")


def _yaml_splits(root: Path, images_dir: Path, items: list) -> dict[str, list[int]]:
    """Splits data.yaml names as folders of images (Ultralytics: `train: images/train`,
    relative to its `path:` or to the yaml's folder); {} when it names none that hold images."""
    path = yaml_file(root)
    if path is None:
        return {}
    config = read_yaml(path)
    base = path.parent / str(config.get("path") or ".")
    given = {}
    for split in ("train", "val", "test"):
        folder = config.get(split)
        if not isinstance(folder, str):
            continue
        target = (base / folder).resolve()
        inside = [i for i, it in enumerate(items) if it.image.resolve().is_relative_to(target)]
        if inside and target != images_dir.resolve():
            given[split] = inside
    return given if "train" in given else {}


def _floats(fields: list[str]) -> list[float] | None:
    try:
        values = [float(f) for f in fields]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


FORMAT = FormatReader(matches=matches, read=read_yolo)
