import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferkit.data import ImageDataset, load_image_folder, open_rgb, scan_class_folders
from transferkit.errors import DataError

from transferkit.testing import make_image_folder


def test_stratified_split_is_deterministic_and_recorded(colour_folder):
    a = load_image_folder(colour_folder, val_fraction=0.2, test_fraction=0.25, seed=0)
    b = load_image_folder(colour_folder, val_fraction=0.2, test_fraction=0.25, seed=0)
    assert a.classes == ["blue", "green", "red"]
    assert a.test.paths == b.test.paths and a.val.paths == b.val.paths
    assert len(a.train) + len(a.val) + len(a.test) == 36
    assert a.test.counts(a.classes) == {"blue": 3, "green": 3, "red": 3}
    assert not set(a.train.paths) & set(a.test.paths)
    record = a.split_record()
    assert record["seed"] == 0 and len(record["test"]) == 9
    assert record["test"][0][0].split("/")[0] in a.classes  # relative paths
    c = load_image_folder(colour_folder, val_fraction=0.2, test_fraction=0.25, seed=1)
    assert c.test.paths != a.test.paths


def test_given_train_val_test_folders_are_kept(tmp_path):
    for split in ("train", "val", "test"):
        make_image_folder(tmp_path / split, per_class=4, seed=len(split))
    data = load_image_folder(tmp_path)
    assert data.split["from_folders"] and data.split["description"] == "given train/val/test folders"
    assert all(p.parts[-3] == "test" for p in data.test.paths)
    assert len(data.train) == len(data.val) == len(data.test) == 12


def test_missing_val_split_is_carved_from_train(tmp_path):
    make_image_folder(tmp_path / "train", per_class=10)
    make_image_folder(tmp_path / "test", per_class=3)
    data = load_image_folder(tmp_path, val_fraction=0.2)
    assert len(data.test) == 9 and len(data.val) == 6 and len(data.train) == 24
    assert "validation" in data.split["description"]


def test_bad_single_files_are_skipped_and_counted(colour_folder):
    (colour_folder / "red" / "notes.txt").write_text("not an image")
    good = (colour_folder / "red" / "red_00.jpg").read_bytes()
    (colour_folder / "red" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (colour_folder / "blue" / "garbage.png").write_bytes(b"\x89PNG not really")
    data = load_image_folder(colour_folder)
    reasons = {Path(s.path).name: s.reason for s in data.skipped}
    assert set(reasons) == {"notes.txt", "truncated.jpg", "garbage.png"}
    assert "not an image file" in reasons["notes.txt"]
    assert "truncated" in reasons["truncated.jpg"] or "corrupt" in reasons["truncated.jpg"]
    assert len(data.train) + len(data.val) + len(data.test) == 36
    assert len(data.summary()["skipped"]) == 3


def test_empty_class_folder_is_named(colour_folder):
    (colour_folder / "purple").mkdir()
    with pytest.raises(DataError, match=r"purple: class folder has no readable images"):
        load_image_folder(colour_folder)


def test_single_class_is_rejected(tmp_path):
    make_image_folder(tmp_path, classes=("red",))
    with pytest.raises(DataError, match="only one class"):
        load_image_folder(tmp_path)


def test_flat_folder_without_classes_is_rejected(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    with pytest.raises(DataError, match="no class sub-folders"):
        load_image_folder(tmp_path)


def test_missing_and_file_paths_are_clear(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        load_image_folder(tmp_path / "nope")
    f = tmp_path / "f.jpg"
    f.write_bytes(b"x")
    with pytest.raises(DataError, match="is a file"):
        load_image_folder(f)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read unreadable files")
def test_unreadable_folder(colour_folder):
    os.chmod(colour_folder, 0)
    try:
        with pytest.raises(DataError, match="permission denied"):
            load_image_folder(colour_folder)
    finally:
        os.chmod(colour_folder, 0o755)


def test_too_few_images_per_class_says_how_many(tmp_path):
    make_image_folder(tmp_path, per_class=2)
    with pytest.raises(DataError, match="only 2 usable image"):
        load_image_folder(tmp_path)


@pytest.mark.parametrize("mode", ["CMYK", "L", "RGBA", "P", "LA", "I;16", "1"])
def test_any_mode_opens_as_rgb(tmp_path, mode):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype="uint8")).convert(
        "RGB" if mode == "I;16" else mode)
    if mode == "I;16":
        image = Image.fromarray(np.full((20, 30), 40000, dtype=np.uint16))
    path = tmp_path / ("x.tiff" if mode in ("CMYK", "I;16") else "x.png")
    image.save(path)
    out = open_rgb(path)
    assert out.mode == "RGB" and out.size == (30, 20)


def test_transparent_pixels_become_white(tmp_path):
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "t.png")
    assert open_rgb(tmp_path / "t.png").getpixel((0, 0)) == (255, 255, 255)


def test_large_images_are_shrunk_once_and_cached(tmp_path):
    Image.new("RGB", (800, 600), (10, 20, 30)).save(tmp_path / "big.jpg")
    ds = ImageDataset([tmp_path / "big.jpg"], [0], transform=None, cache_side=64)
    first = ds[0][0]
    assert min(first.size) < 200 and ds[0][0] is first


def test_scan_with_known_classes_rejects_new_class(colour_folder):
    with pytest.raises(DataError, match="were not in the training classes"):
        scan_class_folders(colour_folder, ["red", "green"])


def test_unreadable_file_names_the_fix(tmp_path, monkeypatch):
    """Root (as in CI) can read any file, so the permission failure is simulated."""
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(DataError, match=r"locked\.jpg: permission denied; make the file readable"):
        open_rgb(tmp_path / "locked.jpg")


def sideways_photo(path, orientation: int = 6, size=(60, 30)):
    """A landscape JPEG stored as the sensor saw it: left half red, right half blue, with an EXIF
    orientation tag (6: turn 90 degrees clockwise to view, as phones write for portrait shots)."""
    pixels = np.zeros((size[1], size[0], 3), dtype="uint8")
    pixels[:, : size[0] // 2] = (220, 30, 30)
    pixels[:, size[0] // 2:] = (30, 30, 220)
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), quality=95)
    return path


def is_red(pixel) -> bool:
    return pixel[0] > 150 and pixel[2] < 100


@pytest.mark.parametrize("max_side", [None, 16])  # full decode, and the reduced JPEG draft the cache uses
def test_exif_orientation_is_applied(tmp_path, max_side):
    path = sideways_photo(tmp_path / "phone.jpg")
    image = open_rgb(path, max_side=max_side)
    assert image.height > image.width  # turned upright: portrait
    # turning clockwise puts the stored left (red) half on top
    assert is_red(image.getpixel((image.width // 2, 2)))
    assert not is_red(image.getpixel((image.width // 2, image.height - 3)))


def test_exif_orientation_reaches_fit_and_predict_inputs(tmp_path):
    """Fit and predict both read through ImageDataset: the tensor a model sees is upright."""
    from transferkit.backbones.base import Preprocessing
    from transferkit.data import eval_transform

    path = sideways_photo(tmp_path / "phone.jpg", size=(64, 32))
    pre = Preprocessing(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear")
    tensor, _ = ImageDataset([path], [0], eval_transform(pre, 32), cache_side=32)[0]
    red_minus_blue = tensor[0] - tensor[2]
    assert red_minus_blue[:8].mean() > 0.5 and red_minus_blue[-8:].mean() < -0.5  # red on top, blue below


def test_archive_and_os_junk_is_not_data(colour_folder):
    """A zip made on macOS adds __MACOSX/ with ._ AppleDouble twins; Finder and Explorer add more."""
    junk = colour_folder / "__MACOSX" / "red"
    junk.mkdir(parents=True)
    (junk / "._red_00.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (colour_folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (colour_folder / "red" / "._red_00.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (colour_folder / "red" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (colour_folder / "blue" / "__pycache__").mkdir()
    (colour_folder / "blue" / "__pycache__" / "x.jpg").write_bytes(b"junk")
    data = load_image_folder(colour_folder)
    assert data.classes == ["blue", "green", "red"] and not data.skipped
    assert len(data.train) + len(data.val) + len(data.test) == 36


def test_predict_folder_expansion_skips_junk(colour_folder):
    from transferkit.tasks.image_classification import expand_image_paths

    (colour_folder / "red" / "._red_00.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (colour_folder / "__MACOSX").mkdir()
    (colour_folder / "__MACOSX" / "._x.jpg").write_bytes(b"junk")
    found = expand_image_paths([colour_folder])
    assert len(found) == 36 and not any(p.name.startswith(".") or "__MACOSX" in p.parts for p in found)


def test_symlink_loops_warn_once_each_and_end(colour_folder, caplog):
    (colour_folder / "red" / "up").symlink_to("..")  # red/up/red/up/... forever
    (colour_folder / "red" / "here").symlink_to(".")
    (colour_folder / "again").symlink_to(".")  # a "class" that is the data folder itself
    (colour_folder / "blue" / "reds").symlink_to("../red")  # red images again, under another label
    elsewhere = make_image_folder(colour_folder.parent / "elsewhere", per_class=2, classes=("green",))
    (colour_folder / "green" / "more").symlink_to(elsewhere / "green")  # a plain link to other data: followed
    with caplog.at_level("WARNING"):
        data = load_image_folder(colour_folder)
    assert data.classes == ["blue", "green", "red"]
    assert data.summary()["counts"]["train"]["green"] + data.test.counts(data.classes)["green"] \
        + data.val.counts(data.classes)["green"] == 14
    assert len(data.train) + len(data.val) + len(data.test) == 38
    warned = [r.getMessage() for r in caplog.records if "symlink loop" in r.getMessage()]
    for link in ("red/up", "red/here", "again", "blue/reds"):
        assert sum(str(colour_folder / link) + ":" in m for m in warned) == 1, (link, warned)
    assert len(warned) == 4


def test_predict_folder_expansion_survives_a_symlink_loop(colour_folder, caplog):
    from transferkit.tasks.image_classification import expand_image_paths

    (colour_folder / "red" / "up").symlink_to("..")
    with caplog.at_level("WARNING"):
        found = expand_image_paths([colour_folder])
    assert len(found) == 36
    assert sum("symlink loop" in r.getMessage() for r in caplog.records) == 1
