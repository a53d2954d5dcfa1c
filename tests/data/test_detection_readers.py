"""Detection data: each format on real and generated folders, splits, and one line per bad annotation."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from transferkit.data.detection import DETECTION_FORMATS, detect_format, load_detection
from transferkit.errors import DataError

from tests.helpers import shared_dataset
from tests.helpers.detection import items_to_coco, items_to_yolo, voc_xml, write_image, write_voc


@pytest.fixture(scope="module")
def raccoon():
    return load_detection(shared_dataset("detection", "raccoon"))


def test_raccoon_voc_with_split_lists(raccoon):
    """raccoon: VOC, its train.txt/test.txt kept (validation carved from train), 44 test boxes."""
    assert raccoon.format == "voc" and raccoon.classes == ["raccoon"]
    assert len(raccoon.subset("test")) == 40 and raccoon.box_counts("test") == {"raccoon": 44}
    assert len(raccoon.splits["train"]) + len(raccoon.splits["val"]) == 160
    assert not set(raccoon.splits["train"]) & set(raccoon.splits["val"])
    assert "train.txt" in raccoon.split["description"] and raccoon.split["seed"] == 0
    assert raccoon.problems == []
    first = next(it for it in raccoon.items if it.image.name == "raccoon-1.jpg")
    assert (first.width, first.height) == (650, 417)
    assert first.boxes.dtype == np.float32 and first.labels.dtype == np.int64
    np.testing.assert_allclose(first.boxes, [[81, 88, 522, 408]])
    record = raccoon.split_record()
    assert record["test"][0].startswith("images/") and len(record["test"]) == 40


def test_kangaroo_truncated_image_is_one_line_and_skipped(caplog):
    """kangaroo/images/00090.jpg is truncated: said once, skipped; the rest split with a seed."""
    with caplog.at_level(logging.WARNING):
        data = load_detection(shared_dataset("detection", "kangaroo"), seed=3)
    assert len(data.problems) == 1
    line = data.problems[0]
    assert "00090.jpg" in line and "truncated" in line and "\n" not in line
    assert sum(line in r.getMessage() for r in caplog.records) == 1
    assert all(it.image.name != "00090.jpg" for it in data.items)
    assert len(data.items) == 163 and data.split["seed"] == 3
    assert sorted(sum(data.splits.values(), [])) == list(range(163))
    again = load_detection(shared_dataset("detection", "kangaroo"), seed=3)
    assert again.splits == data.splits  # the seed makes the split
    assert load_detection(shared_dataset("detection", "kangaroo"), seed=4).splits != data.splits


def test_coco_and_yolo_read_the_same_boxes_as_voc(raccoon, tmp_path):
    """A few raccoon annotations converted to COCO and YOLO read back to the same pixel boxes."""
    items = raccoon.subset("test")[:5]
    coco = items_to_coco(items, raccoon.classes, tmp_path / "coco")
    yolo = items_to_yolo(items, raccoon.classes, tmp_path / "yolo")
    assert detect_format(coco) == "coco" and detect_format(yolo) == "yolo"
    for folder in (coco, yolo):
        data = load_detection(folder)
        assert data.classes == ["raccoon"] and data.problems == []
        by_name = {it.image.name: it for it in data.items}
        for item in items:
            np.testing.assert_allclose(by_name[item.image.name].boxes, item.boxes, atol=1e-3)
            assert by_name[item.image.name].labels.tolist() == item.labels.tolist()
        assert sorted(len(v) for v in data.splits.values()) == [1, 1, 3]


def test_detect_format_names_every_layout_when_none_matches(tmp_path):
    with pytest.raises(DataError) as err:
        detect_format(tmp_path)
    message = str(err.value)
    assert "\n" not in message and all(name in message for name in DETECTION_FORMATS.names())
    with pytest.raises(DataError, match="no such directory"):
        detect_format(tmp_path / "absent")


def test_background_images_are_valid(tmp_path):
    root = write_voc(tmp_path / "voc", {"a.jpg": [("cat", (5, 5, 30, 30))], "b.jpg": [], "c.jpg": [("cat", (1, 1, 9, 9))]})
    write_image(root / "images" / "d.jpg")  # no annotation file: background too
    data = load_detection(root)
    assert data.problems == [] and len(data.items) == 4
    assert sum(len(it.labels) == 0 for it in data.items) == 2


def _one_line_naming(data, *parts: str) -> str:
    """The single problem line that contains every one of `parts`."""
    lines = [p for p in data.problems if all(part in p for part in parts)]
    assert len(lines) == 1, data.problems
    assert "\n" not in lines[0] and "; " in lines[0]  # what, then the fix
    return lines[0]


def test_voc_bad_annotations_one_line_each(tmp_path):
    root = write_voc(tmp_path / "voc", {
        "good.jpg": [("cat", (5, 5, 30, 30)), ("cat", (0, 0, 65, 49))],  # 1 px over: clipped silently
        "outside.jpg": [("cat", (70, 5, 90, 30)), ("cat", (10, 10, 80, 40)), ("cat", (5, 5, 20, 20))],
        "zero.jpg": [("cat", (30, 5, 30, 20)), ("cat", (30, 20, 10, 30))],
        "noname.jpg": [("", (5, 5, 20, 20))],
    })
    (root / "annotations" / "broken.xml").write_text("<annotation><object>")
    (root / "annotations" / "bomb.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><annotation><filename>&e;</filename></annotation>')
    (root / "annotations" / "missing.xml").write_text(voc_xml("missing.jpg", (64, 48), [("cat", (1, 1, 5, 5))]))
    write_image(root / "images" / "resized.jpg", (64, 48))
    (root / "annotations" / "resized.xml").write_text(voc_xml("resized.jpg", (128, 96), [("cat", (1, 1, 5, 5))]))
    data = load_detection(root)
    good = next(it for it in data.items if it.image.name == "good.jpg")
    np.testing.assert_allclose(good.boxes, [[5, 5, 30, 30], [0, 0, 64, 48]])
    assert "outside the 64x48 image; box skipped" in _one_line_naming(data, "outside.xml: object 1", "(70, 5, 90, 30)")
    assert "clipped" in _one_line_naming(data, "outside.xml: object 2", "16 px outside")
    outside = next(it for it in data.items if it.image.name == "outside.jpg")
    np.testing.assert_allclose(outside.boxes, [[10, 10, 64, 40], [5, 5, 20, 20]])
    _one_line_naming(data, "zero.xml: object 1", "zero or negative area")
    _one_line_naming(data, "zero.xml: object 2", "zero or negative area")
    _one_line_naming(data, "noname.xml: object 1", "no class <name>")
    assert "malformed XML" in _one_line_naming(data, "broken.xml")
    assert "DTD or entities" in _one_line_naming(data, "bomb.xml")
    assert "not found" in _one_line_naming(data, "missing.xml", "missing.jpg")
    assert "128x96" in _one_line_naming(data, "resized.xml", "<size>")
    assert len(data.problems) == 9


def test_voc_unknown_class_when_classes_given(tmp_path):
    root = write_voc(tmp_path / "voc", {f"{i}.jpg": [("cat", (5, 5, 30, 30)), ("dog", (1, 1, 9, 9))] for i in range(3)})
    assert load_detection(root).classes == ["cat", "dog"]
    data = load_detection(root, classes=["cat"])
    assert "unknown class 'dog'" in _one_line_naming(data, "0.xml: object 2")
    assert data.classes == ["cat"] and len(data.problems) == 3


def test_coco_bad_annotations_one_line_each(tmp_path):
    root = tmp_path / "coco"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(root / name)
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
                   {"id": 2, "file_name": "b.jpg", "width": 100, "height": 48},
                   {"id": 3, "file_name": "c.jpg"}, {"id": 4, "file_name": "gone.jpg"}],
        "categories": [{"id": 7, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [5, 5, 20, 20]},
            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [5, 5, 20, 20]},
            {"id": 3, "image_id": 1, "category_id": 7, "bbox": [5, 5, 0, 20]},
            {"id": 4, "image_id": 1, "category_id": 7, "bbox": "5 5 20 20"},
            {"id": 5, "image_id": 99, "category_id": 7, "bbox": [5, 5, 20, 20]},
            {"id": 6, "image_id": 3, "category_id": 7, "bbox": [50, 5, 40, 20]},
            {"id": 7, "image_id": 3, "category_id": 7, "bbox": [1, 1, 200, 200], "iscrowd": 1},
        ],
    }
    (root / "annotations.json").write_text(json.dumps(coco))
    data = load_detection(root)
    assert data.format == "coco" and data.classes == ["cat"]
    assert "unknown category_id 9" in _one_line_naming(data, "annotations[1] (id 2)")
    assert "zero or negative area" in _one_line_naming(data, "annotations[2] (id 3)")
    assert "not 4 numbers" in _one_line_naming(data, "annotations[3] (id 4)")
    assert "image_id 99" in _one_line_naming(data, "annotations[4] (id 5)")
    assert "clipped" in _one_line_naming(data, "annotations[5] (id 6)")
    assert "100x48" in _one_line_naming(data, "image id 2", "b.jpg is 64x48")
    assert "gone.jpg not found" in _one_line_naming(data, "image id 4")
    assert len(data.problems) == 7 and len(data.items) == 3
    assert str(root / "annotations.json") in data.problems[0]


@pytest.mark.parametrize("text", ["{not json", '{"images": [], "categories": 3}', "[" * 500 + "]" * 500])
def test_coco_unreadable_file_is_an_error(tmp_path, text):
    (tmp_path / "annotations.json").write_text(text)
    with pytest.raises(DataError) as err:
        load_detection(tmp_path)
    assert "annotations.json" in str(err.value) and "\n" not in str(err.value)


def test_yolo_bad_lines_one_line_each_with_line_numbers(tmp_path):
    root = tmp_path / "yolo"
    for name in ("a", "b", "c"):
        write_image(root / "images" / f"{name}.jpg")
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text(
        "0 0.5 0.5 0.25 0.25\n"   # fine: (24, 18, 40, 30)
        "0 0.5 0.5 0.2\n"         # four fields
        "cat 0.5 0.5 0.2 0.2\n"   # class is not a number
        "3 0.5 0.5 0.2 0.2\n"     # unknown class id
        "\n"
        "0 0.5 0.5 0 0.2\n"       # zero width
        "0 1.5 0.5 0.2 0.2\n"     # outside
        "1 0.9 0.5 0.4 0.2\n")    # 0.1 of 64 = 6.4 px over: clipped
    (root / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (root / "data.yaml").write_text("names: [cat, dog]\n")
    data = load_detection(root)
    a = root / "labels" / "a.txt"
    assert "not 'class cx cy w h'" in _one_line_naming(data, f"{a}:2:")
    assert "not 'class cx cy w h'" in _one_line_naming(data, f"{a}:3:")
    assert "unknown class id 3" in _one_line_naming(data, f"{a}:4:")
    assert "zero or negative area" in _one_line_naming(data, f"{a}:6:")
    assert "outside" in _one_line_naming(data, f"{a}:7:")
    assert "clipped" in _one_line_naming(data, f"{a}:8:")
    assert "no image orphan" in _one_line_naming(data, "orphan.txt")
    assert len(data.problems) == 7
    item = next(it for it in data.items if it.image.name == "a.jpg")
    np.testing.assert_allclose(item.boxes, [[24, 18, 40, 30], [44.8, 19.2, 64, 28.8]], atol=1e-4)
    assert item.labels.tolist() == [0, 1]


def test_yolo_needs_class_names(tmp_path):
    write_image(tmp_path / "images" / "a.jpg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DataError, match="data.yaml"):
        load_detection(tmp_path)
    (tmp_path / "data.yaml").write_text("names: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(DataError, match="cannot read it"):  # safe_load: no Python objects from YAML
        load_detection(tmp_path)


def test_nothing_usable_is_an_error(tmp_path):
    root = tmp_path / "voc"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "a.xml").write_text(voc_xml("a.jpg", (64, 48), [("cat", (1, 1, 5, 5))]))
    with pytest.raises(DataError, match="no usable image"):
        load_detection(root)
    write_voc(tmp_path / "empty", {"a.jpg": [], "b.jpg": [("cat", (5, 5, 5, 9))], "c.jpg": []})
    with pytest.raises(DataError, match="no usable box"):
        load_detection(tmp_path / "empty")


def test_split_folders_and_split_lists(tmp_path):
    objects = [("cat", (5, 5, 30, 30))]
    root = tmp_path / "folders"
    write_voc(root / "train", {f"t{i}.jpg": objects for i in range(6)})
    write_voc(root / "test", {f"s{i}.jpg": objects for i in range(2)})
    data = load_detection(root)
    assert detect_format(root) == "voc" and [len(data.splits[s]) for s in ("train", "val", "test")] == [5, 1, 2]
    assert {it.image.name for it in data.subset("test")} == {"s0.jpg", "s1.jpg"}
    assert "given train/test folders" in data.split["description"]

    listed = write_voc(tmp_path / "lists", {f"x{i}.jpg": objects for i in range(6)})
    (listed / "val.txt").write_text("x0\nx1.jpg\nnope\nx0\n")
    data = load_detection(listed)
    assert {it.image.name for it in data.subset("val")} == {"x0.jpg", "x1.jpg"}
    assert "'nope' names no usable image" in _one_line_naming(data, f"{listed / 'val.txt'}:3:")
    assert "already in val.txt" in _one_line_naming(data, f"{listed / 'val.txt'}:4:")
    assert len(data.splits["train"]) + len(data.splits["test"]) == 4


def test_too_few_images_to_split(tmp_path):
    write_voc(tmp_path / "voc", {"a.jpg": [("cat", (5, 5, 30, 30))]})
    with pytest.raises(DataError, match="cannot also give a test split"):
        load_detection(tmp_path / "voc")


def test_yolo_splits_from_data_yaml_folders(tmp_path):
    """Ultralytics' layout: images/train, images/val and data.yaml naming them."""
    root = tmp_path / "yolo"
    for split, count in (("train", 4), ("val", 2)):
        for i in range(count):
            write_image(root / "images" / split / f"{split}{i}.jpg")
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split / f"{split}{i}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [cat]\n")
    data = load_detection(root)
    assert data.problems == [] and {it.image.parent.name for it in data.subset("val")} == {"val"}
    assert len(data.splits["val"]) == 2 and len(data.splits["train"]) + len(data.splits["test"]) == 4
    assert "data.yaml's train/val folders" in data.split["description"]


def test_coco_class_outside_the_given_classes(tmp_path):
    root = tmp_path / "coco"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(root / name)
    coco = {"images": [{"id": i, "file_name": n} for i, n in enumerate(("a.jpg", "b.jpg", "c.jpg"), 1)],
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            "annotations": [{"id": i, "image_id": i, "category_id": 1 + (i == 3), "bbox": [5, 5, 20, 20]}
                            for i in (1, 2, 3)]}
    (root / "annotations.json").write_text(json.dumps(coco))
    data = load_detection(root, classes=["cat"])
    assert "class 'dog' is not among the classes ['cat']" in _one_line_naming(data, "annotations[2] (id 3)")


@pytest.mark.parametrize("defused", [True, False])
def test_xml_declarations_are_refused_with_or_without_defusedxml(monkeypatch, defused):
    import sys

    from transferkit.data.detection.voc import XmlRefused, parse_xml

    if not defused:
        monkeypatch.setitem(sys.modules, "defusedxml", None)  # import fails: the raw-text check alone
        monkeypatch.setitem(sys.modules, "defusedxml.ElementTree", None)
    laughs = '<?xml version="1.0"?><!doctype a [<!entity b "bbbb">]><annotation>&b;</annotation>'
    for data in (laughs.encode(), laughs.encode("utf-16"), b'<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>'):
        with pytest.raises(XmlRefused, match="DTD or entities"):
            parse_xml(data)
    assert parse_xml(b"<annotation><filename>a.jpg</filename></annotation>").find("filename").text == "a.jpg"
    with pytest.raises(XmlRefused, match="malformed"):
        parse_xml(b"<annotation>")


def test_sizes_for_choosing_an_input_size(tmp_path, raccoon):
    root = write_voc(tmp_path / "voc", {f"{i}.jpg": [("cat", (0, 0, 32, 24))] for i in range(3)})
    data = load_detection(root)
    assert data.sizes() == {"median_image_side": 48.0, "median_box_fraction": pytest.approx(0.5)}
    assert data.summary()["median_box_fraction"] == pytest.approx(0.5)
    assert 0.5 < raccoon.sizes()["median_box_fraction"] < 0.9  # raccoons fill most of their photos
