"""`auto` on images: a linear probe first, fine-tuning only when it can gain, cross-validation on small data."""
import json

import numpy as np
import pytest
import torch

from transferkit import ImageClassifier
from transferkit.backbones import create_backbone
from transferkit.strategies.auto import (FINE_TUNE_SECONDS, MIN_PER_CLASS_TO_FINE_TUNE, SMALL_DATA, TRAIN_STEP_COST,
                                        fine_tune_budget, plan_fine_tune)
from transferkit.strategies.base import TrainSettings
from transferkit.models.features import extract_features
from transferkit.strategies.linear_probe import CROSS_VALIDATE_BELOW, ProbeResult, cross_validated_head
from transferkit.rundir import read_metrics

from transferkit.testing import make_image_folder

FAST = dict(image_size=64, batch_size=8, progress=False)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The default on 24 images: far below CROSS_VALIDATE_BELOW, so cross-validated."""
    data = make_image_folder(tmp_path_factory.mktemp("small") / "colours", per_class=8)
    return ImageClassifier(**FAST).fit(data), data


def test_small_data_is_probed_first_and_cross_validated(small_run):
    clf, _ = small_run
    settings = clf.strategy_settings_
    # too few to fine-tune: the probe and a prototype head are compared on the same out-of-fold estimate
    # (on these colours the prototypes score higher, see test_auto_prototypes for both outcomes)
    compared = settings["compared"]
    assert clf.strategy_ == "prototypes" and compared["prototypes_accuracy"] > compared["linear_probe_accuracy"]
    probe = settings["probe"]
    assert probe["estimate"] == "5-fold cross-validation" and probe["C_chosen_by"] == "lowest cross-validated log-loss"
    assert settings["estimate"] == "5-fold cross-validation"
    why = dict(clf.decisions_)["strategy: prototypes"]
    assert f"< {CROSS_VALIDATE_BELOW}" in why and "fitted on all 24 images" in why
    # the same folds chose the temperature and the head, which the estimate's caveat says
    assert "choose the temperature by log-loss and which head is kept" in dict(clf.decisions_)[
        "evaluation: 5-fold cross-validation"]
    metrics = clf.evaluate()
    # the estimate covers every labelled image (out-of-fold predictions), and says how it was made
    assert metrics["n"] == 24 and metrics["estimate"] == "5-fold cross-validation"
    assert metrics["accuracy"] == pytest.approx(settings["estimated_accuracy"], abs=1e-6)


def test_cross_validated_model_is_fitted_on_all_images_and_survives_save_load(small_run, tmp_path):
    clf, data = small_run
    assert clf.strategy_settings_["examples_fitted"] == 24
    assert len(clf.data_.train) == 24 and len(clf.data_.val) == 0 and len(clf.data_.test) == 0
    clf.evaluate()
    clf.save(tmp_path / "run")
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["train"]) == 24 and split["test"] == [] and split["cross_validation_folds"] == 5
    metrics = read_metrics(tmp_path / "run").metrics
    assert metrics["estimate"] == "5-fold cross-validation" and metrics["n"] == 24
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["strategy"]["settings"]["examples_fitted"] == 24
    # the report names the estimate wherever it gives the number of examples scored
    from transferkit.reporting import write_run_report

    html = write_run_report(tmp_path / "run").read_text()
    assert "examples, 5-fold cross-validation" in html and ">test examples<" not in html
    again = ImageClassifier.load(tmp_path / "run")
    paths = sorted(data.rglob("*.jpg"))
    np.testing.assert_allclose(again.predict_proba(paths), clf.predict_proba(paths), atol=1e-6)
    # fitted on all images: it reproduces its training labels on this easy data
    assert np.mean([p == q.parent.name for p, q in zip(again.predict(paths), paths)]) >= 0.9


@pytest.mark.parametrize("strategy", ["auto", "linear-probe"])
def test_random_feature_control_is_the_same_head_on_untrained_random_features(small_run, strategy):
    """A frozen-feature run's control costs one forward pass: its accuracy is exactly that of the
    same cross-validated head (the probe's, or the prototypes `auto` kept here) on features of the
    architecture with fresh random weights (no training)."""
    from transferkit.strategies.prototypes import fit_prototypes

    clf, data = small_run
    if strategy != "auto":
        clf = ImageClassifier(strategy=strategy, **FAST).fit(data)
    control = clf.control_
    assert "random weights, frozen" in control["model"] and "scored by 5-fold cross-validation" in control["model"]
    torch.manual_seed(clf.seed)
    body = create_backbone("scratch:efficientnet_lite0", modality="image").model.eval()
    x, y = extract_features(body, clf._dataset(clf.data_.train.paths, clf.data_.train.labels), hflip=True,
                            progress=False)
    if clf.strategy_ == "prototypes":
        assert "nearest-centroid" in control["model"]
        expected = fit_prototypes(x, y, x[:0], y[:0], 3, 5, clf.seed).accuracy
    else:
        assert clf.strategy_ == "linear-probe" and "logistic head" in control["model"]
        _, _, _, oof = cross_validated_head(x, y, 3, clf.seed, 5)
        expected = float((oof.argmax(1) == y).mean())
    assert control["accuracy"] == pytest.approx(expected)
    assert clf.evaluate()["transfer"]["baseline"] == control["accuracy"]


def test_given_splits_are_kept_and_a_near_perfect_probe_is_not_fine_tuned(tmp_path):
    root = tmp_path / "given"
    for split, n, seed in (("train", 12, 0), ("val", 4, 1), ("test", 4, 2)):
        make_image_folder(root / split, per_class=n, classes=("red", "blue"), seed=seed)
    clf = ImageClassifier(**FAST, baseline=False).fit(root)
    assert clf.strategy_ == "linear-probe" and "estimate" not in clf.strategy_settings_
    assert clf.strategy_settings_["val_accuracy"] >= 0.98
    assert "near-perfect" in clf.strategy_settings_["reason"]
    assert not any("fine-tun" in k for k in clf.timings_)
    assert clf.evaluate()["n"] == 8 and "estimate" not in clf.evaluate()


def test_fine_tune_is_tried_when_the_probe_leaves_room_and_the_better_is_kept(tmp_path):
    """Labels unrelated to the images: the probe is far from perfect, so fine-tuning is tried
    (2 epochs as requested) and whichever did better on validation is shipped."""
    root = tmp_path / "noise"
    for split, n in (("train", 10), ("val", 4), ("test", 2)):
        make_image_folder(root / split, per_class=n, classes=("red", "green", "blue"), seed=n)
        for i, path in enumerate(sorted((root / split).rglob("*.jpg"))):  # alternate labels within each colour
            target = root / split / ("a", "b")[i % 2]
            target.mkdir(exist_ok=True)
            path.rename(target / f"{i:03d}.jpg")
        for colour in ("red", "green", "blue"):
            (root / split / colour).rmdir()
    clf = ImageClassifier(**FAST, epochs=2, baseline=False).fit(root)
    settings = clf.strategy_settings_
    if clf.strategy_ == "fine-tune":
        assert settings["probe"]["val_accuracy"] < 0.98 and "better than the probe" in settings["reason"]
        assert [r["epoch"] for r in clf.history_] == [1, 2]
    else:
        assert settings["fine_tune_tried"]["epochs"] == 2 and "probe is kept" in settings["reason"]
        assert settings["fine_tune_tried"]["val_accuracy"] <= settings["val_accuracy"]
        assert "fine-tuning (not kept)" in clf.timings_ and "C" in clf.history_[0]


def _probe(accuracy: float, forward_seconds: float) -> ProbeResult:
    return ProbeResult(history=[], c=0.01, timings={}, examples_fitted=0, val_accuracy=accuracy,
                       forward_seconds=forward_seconds)


def test_fine_tune_plan_follows_room_class_size_and_time_budget():
    labels = [0] * 100 + [1] * 100
    epochs, why = plan_fine_tune(_probe(0.8, 1e-4), labels, 20, TrainSettings())
    assert epochs >= 2 and "budget" in why
    # slow forward passes: the estimated epoch time caps the epochs, then rules fine-tuning out
    per_epoch = FINE_TUNE_SECONDS / 2.5
    capped, _ = plan_fine_tune(_probe(0.8, per_epoch / (TRAIN_STEP_COST * 200 + 20)), labels, 20, TrainSettings())
    assert capped == 2
    none, why = plan_fine_tune(_probe(0.8, 1.0), labels, 20, TrainSettings())
    assert none == 0 and "exceed" in why
    assert plan_fine_tune(_probe(0.99, 1e-4), labels, 20, TrainSettings())[0] == 0
    few = [0] * 100 + [1] * (MIN_PER_CLASS_TO_FINE_TUNE - 1)
    assert plan_fine_tune(_probe(0.8, 1e-4), few, 20, TrainSettings())[0] == 0
    # larger sets get a budget that grows with them, not a cliff at SMALL_DATA images
    assert fine_tune_budget(SMALL_DATA // 2) == FINE_TUNE_SECONDS and fine_tune_budget(2 * SMALL_DATA) == 2 * FINE_TUNE_SECONDS
    # requested epochs are honoured when fine-tuning can gain
    assert plan_fine_tune(_probe(0.8, 1.0), labels, 20, TrainSettings(epochs=3))[0] == 3
