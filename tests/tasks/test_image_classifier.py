import json

import numpy as np
import pytest
from PIL import Image

from transferkit import ImageClassifier
from transferkit.errors import DataError, RunDirectoryError
from transferkit.tasks.image_classification import resolve_image_size

FAST = dict(image_size=64, batch_size=8, progress=False, val_fraction=0.2, test_fraction=0.2)


@pytest.fixture(scope="module")
def fitted(colour_folder_session, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    clf = ImageClassifier(strategy="fine-tune", epochs=4, run_dir=run_dir, **FAST).fit(colour_folder_session)
    return clf, run_dir


def test_fine_tune_learns_and_records_history(fitted):
    clf, run_dir = fitted
    metrics = clf.evaluate()
    assert metrics["accuracy"] >= 0.8, metrics
    assert [row["epoch"] for row in clf.history_] == [1, 2, 3, 4]
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "trainable_groups"} <= set(clf.history_[0])
    assert clf.strategy_ == "fine-tune" and clf.strategy_settings_["epochs"] == 4
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert clf.classes_ == ["blue", "green", "red"]


def test_save_load_gives_identical_predictions(fitted, tmp_path, colour_folder_session):
    clf, _ = fitted
    measured = clf.evaluate()
    clf.save(tmp_path / "saved")
    assert {p.name for p in (tmp_path / "saved").iterdir()} >= {
        "model.safetensors", "config.json", "history.csv", "split.json"}
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["classes"] == clf.classes_ and config["split"]["seed"] == 0
    assert config["backbone"]["architecture"] == "tf_efficientnet_lite0"
    paths = sorted((colour_folder_session / "red").glob("*.jpg"))[:5]
    again = ImageClassifier.load(tmp_path / "saved")
    np.testing.assert_array_equal(again.predict_proba(paths), clf.predict_proba(paths))
    assert again.predict(paths) == clf.predict(paths)
    assert again.evaluate(colour_folder_session)["n"] == 45
    # a loaded run without data: what its fit measured, not a traceback
    assert again.evaluate()["accuracy"] == measured["accuracy"] and again.evaluate()["n"] == measured["n"]


def test_predict_proba_rows_are_distributions_and_folders_expand(fitted, colour_folder_session):
    clf, _ = fitted
    proba = clf.predict_proba([colour_folder_session / "blue"])
    assert proba.shape == (15, 3)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)


def test_prediction_images_in_any_mode(fitted, tmp_path, colour_folder_session):
    clf, _ = fitted
    original = colour_folder_session / "red" / "red_00.jpg"
    rgb = Image.open(original).convert("RGB")
    paths = []
    for mode in ("CMYK", "RGBA", "P", "L"):
        image = rgb.convert(mode, palette=Image.ADAPTIVE) if mode == "P" else rgb.convert(mode)
        path = tmp_path / f"red_{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
        image.save(path)
        paths.append(path)
    expected = clf.predict([original])[0]
    labels = clf.predict(paths)
    assert labels[:3] == [expected] * 3  # colour survives CMYK, alpha and palette conversion
    assert labels[3] in clf.classes_  # grayscale loses the colour cue but must still predict


def test_corrupt_prediction_image_names_the_file(fitted, tmp_path):
    clf, _ = fitted
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match="broken.jpg"):
        clf.predict([bad])
    with pytest.raises(DataError, match="no such file"):
        clf.predict([tmp_path / "missing.jpg"])


def test_linear_probe_strategy(colour_folder_session):
    clf = ImageClassifier(strategy="linear-probe", **FAST).fit(colour_folder_session)
    assert clf.evaluate()["accuracy"] >= 0.8
    assert "C" in clf.history_[0] and clf.strategy_settings_["C"] > 0


def test_auto_keeps_the_frozen_head_that_cross_validates_better_for_few_images(tmp_path):
    from transferkit.testing import make_image_folder

    data = make_image_folder(tmp_path, per_class=8)
    clf = ImageClassifier(**FAST).fit(data)
    compared = clf.strategy_settings_["compared"]
    better = "prototypes" if compared["prototypes_accuracy"] > compared["linear_probe_accuracy"] else "linear-probe"
    assert clf.strategy_ == better
    assert any("labelled images" in why and "cross-validation" in why for _, why in clf.decisions_)


def test_fine_tuned_run_is_a_backbone_for_the_next_transfer(fitted, tmp_path, colour_folder_session):
    clf, _ = fitted
    clf.save(tmp_path / "parent")
    child = ImageClassifier(backbone=str(tmp_path / "parent"), strategy="linear-probe", **FAST)
    child.fit(colour_folder_session)
    assert child.backbone_info_["meta"]["parent"] == "efficientnet_lite0"
    assert child.evaluate()["accuracy"] >= 0.8


def test_unfitted_and_bad_run_dir_errors(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        ImageClassifier().predict(["x.jpg"])
    with pytest.raises(RunDirectoryError, match="not a transferkit run directory"):
        ImageClassifier.load(tmp_path)


def test_bad_strategy_name_fails_before_training(colour_folder):
    with pytest.raises(Exception, match="unknown strategy 'fine_tune'.*fine-tune"):
        ImageClassifier(strategy="fine_tune").fit(colour_folder)


def test_sklearn_params_roundtrip():
    clf = ImageClassifier(epochs=3)
    assert clf.get_params()["epochs"] == 3
    assert clf.set_params(lr=1e-4).lr == 1e-4


def test_image_size_rule():
    assert resolve_image_size(None, 224, 128)[0] == 128
    assert resolve_image_size(None, 224, 500)[0] == 224
    assert resolve_image_size(200, 224, 128)[0] == 200
    assert resolve_image_size(None, 224, 40)[0] == 64
