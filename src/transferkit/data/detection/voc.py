"""Pascal VOC: `images/` and `annotations/*.xml` (one file per image, boxes in pixels, 1-based).

XML from user files is parsed without a DTD: a document type or entity declaration is refused
(an entity that expands to gigabytes, or reads a local file, is the classic XML attack), through
defusedxml when it is installed and a check of the raw text before the standard parser otherwise.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..images import IMAGE_EXTENSIONS, is_junk
from .base import FormatReader, Problems, ReadResult, check_box, image_size, make_item

ANNOTATIONS = "annotations"
IMAGES = "images"
#: far above a VOC file of thousands of objects; a larger file is not an annotation
MAX_XML_BYTES = 16 * 2**20
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)


class XmlRefused(ValueError):
    """A file the safe XML parser will not read (malformed, or with a DTD/entities)."""


def parse_xml(data: bytes):
    """The root element of XML `data`, refusing document type and entity declarations."""
    import xml.etree.ElementTree as ET

    probe = data.decode("utf-16", "ignore") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data
    if _DECLARATION.search(probe if isinstance(probe, bytes) else probe.encode("utf-8", "ignore")):
        raise XmlRefused("declares a DTD or entities, which are not read from user files")
    try:
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import fromstring
    except ImportError:  # the raw-text check above already refused any declaration
        fromstring, DefusedXmlException = ET.fromstring, XmlRefused
    try:
        return fromstring(data)
    except ET.ParseError as exc:
        raise XmlRefused(f"malformed XML ({exc})") from None
    except DefusedXmlException as exc:
        raise XmlRefused(f"declares a DTD or entities ({type(exc).__name__}), which are not read") from None


def _text(node, path: str) -> str | None:
    found = node.find(path)
    return found.text.strip() if found is not None and found.text else None


def _number(node, path: str) -> float | None:
    value = _text(node, path)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _find_image(images: Path, xml: Path, filename: str | None) -> Path:
    """The image an annotation names (`<filename>`), else the one with the annotation's stem."""
    if filename and (images / Path(filename).name).is_file():
        return images / Path(filename).name
    for ext in sorted(IMAGE_EXTENSIONS):
        for candidate in (images / f"{xml.stem}{ext}", images / f"{xml.stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return images / Path(filename or f"{xml.stem}.jpg").name


def matches(root: Path) -> bool:
    """Whether `root` holds `annotations/*.xml`."""
    return (root / ANNOTATIONS).is_dir() and any((root / ANNOTATIONS).glob("*.xml"))


def read_voc(root: Path, classes: list[str] | None, problems: Problems) -> ReadResult:
    """Every `annotations/*.xml` with its image in `images/`; images without an annotation file
    are background. Class names come from the files (sorted) unless `classes` is given."""
    images_dir = root / IMAGES
    parsed = []
    for xml in sorted(p for p in (root / ANNOTATIONS).glob("*.xml") if not is_junk(p)):
        try:
            if xml.stat().st_size > MAX_XML_BYTES:
                raise XmlRefused(f"{xml.stat().st_size} bytes, over the {MAX_XML_BYTES} read from one annotation")
            element = parse_xml(xml.read_bytes())
        except (OSError, XmlRefused) as exc:
            problems.add(xml, f"{exc}; file skipped", "fix or regenerate the annotation file")
            continue
        if element.tag != "annotation":
            problems.add(xml, f"root element <{element.tag}> is not <annotation>; file skipped",
                         "write Pascal VOC XML (<annotation><object><bndbox>…)")
            continue
        parsed.append((xml, element))
    names = sorted({_text(o, "name") or "" for _, e in parsed for o in e.iter("object")} - {""})
    known = list(classes) if classes is not None else names
    index = {name: i for i, name in enumerate(known)}
    items, seen = [], set()
    for xml, element in parsed:
        image = _find_image(images_dir, xml, _text(element, "filename"))
        seen.add(image.name)
        size = image_size(image, problems, where=xml)
        if size is None:
            continue
        width, height = size
        stated = (_number(element, "size/width"), _number(element, "size/height"))
        if all(stated) and stated != (width, height):
            problems.add(xml, f"<size> says {stated[0]:g}x{stated[1]:g} but {image.name} is {width}x{height}; "
                         "boxes read as pixels of the image as it is",
                         "rescale the boxes to the image or re-export the annotation")
        boxes, labels = [], []
        for number, obj in enumerate(element.iter("object"), 1):
            name = _text(obj, "name")
            where = f"{xml}: object {number}" + (f" ({name!r})" if name else "")
            if name not in index:
                problems.add(where, "no class <name>; box skipped" if not name else
                             f"unknown class {name!r} (classes: {', '.join(known)}); box skipped",
                             "name one of the classes" if name else "add <name>CLASS</name> to the object")
                continue
            coords = [_number(obj, f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
            if any(c is None for c in coords):
                problems.add(where, "<bndbox> lacks a numeric xmin, ymin, xmax or ymax; box skipped",
                             "write all four corners in pixels")
                continue
            box = check_box(coords, width, height, where, problems)
            if box is not None:
                boxes.append(box)
                labels.append(index[name])
        items.append(make_item(image, boxes, labels, width, height))
    # images nobody annotated: background (no objects), as in YOLO's convention
    if images_dir.is_dir():
        for image in sorted(p for p in images_dir.iterdir()
                            if p.suffix.lower() in IMAGE_EXTENSIONS and not is_junk(p) and p.name not in seen):
            size = image_size(image, problems)
            if size is not None:
                items.append(make_item(image, [], [], *size))
    return ReadResult(classes=known, items=items, names=[it.image.name for it in items])


FORMAT = FormatReader(matches=matches, read=read_voc)
