"""Multi-task heads: several label columns of a text table or an image manifest, one head each on a
shared backbone; per-head metrics and predictions, and runs that reload with identical predictions."""
import json

import numpy as np
import pytest
from PIL import Image

from transferkit import ImageClassifier, TextClassifier, load_run
from transferkit.errors import DataError, TransferkitError
from transferkit.tasks import detect_task

from tests.helpers import MULTITASK_FAST as FAST, two_label_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return two_label_table(tmp_path_factory.mktemp("multitask") / "reviews.csv")


@pytest.fixture(scope="module")
def probed(table):
    return TextClassifier(strategy="linear-probe", label_columns="sentiment,domain", **FAST).fit(table)


def test_text_probe_per_head_metrics_and_predictions(probed):
    assert probed.heads_ == {"sentiment": ["negative", "positive"], "domain": ["food", "gadgets"]}
    assert list(probed.model_.heads) == ["sentiment", "domain"] and probed.model_.default_head == "sentiment"
    metrics = probed.evaluate()
    assert metrics["primary_head"] == "sentiment" and set(metrics["heads"]) == {"sentiment", "domain"}
    for head in ("sentiment", "domain"):
        m = metrics["heads"][head]
        assert m["accuracy"] >= 0.9 and set(m["per_class"]) == set(probed.heads_[head]) and "macro_f1" in m
    assert metrics["accuracy"] == metrics["heads"]["sentiment"]["accuracy"]  # the primary head at the top level
    predicted = probed.predict(["the pizza was superb", "the cable was dreadful"])
    assert predicted == {"sentiment": ["positive", "negative"], "domain": ["food", "gadgets"]}
    # a probe per head: each has its own C, recorded per head
    assert set(probed.strategy_settings_["heads"]) == {"sentiment", "domain"}
    assert {"val_accuracy", "val_accuracy_domain", "chosen", "chosen_domain"} <= set(probed.history_[0])


def test_text_fine_tune_two_heads_one_epoch_reloads_identically(table, tmp_path):
    clf = TextClassifier(strategy="fine-tune", epochs=1, label_columns=["sentiment", "domain"],
                         task_weights="uncertainty", **FAST).fit(table)
    row = clf.history_[0]
    assert {"train_loss_sentiment", "train_loss_domain", "val_accuracy", "val_accuracy_domain"} <= set(row)
    learned = clf.strategy_settings_["learned_loss_weights"]
    assert set(learned) == {"sentiment", "domain"} and all(v["weight"] > 0 for v in learned.values())
    clf.evaluate()
    clf.save(tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["heads"] == clf.heads_ and config["classes"] == clf.heads_["sentiment"]
    assert config["params"]["task_weights"] == "uncertainty"
    again = load_run(tmp_path / "run")
    texts = clf.data_.test.texts
    before, after = clf.predict_proba(texts), again.predict_proba(texts)
    assert set(before) == set(after) == {"sentiment", "domain"}
    for head in before:
        np.testing.assert_array_equal(before[head], after[head])
    assert again.prediction_records(texts[:2], 2) == clf.prediction_records(texts[:2], 2)
    record = again.prediction_records(texts[:1], 2)[0]
    assert set(record["heads"]) == {"sentiment", "domain"} and len(record["heads"]["domain"]["top_k"]) == 2
    assert record["label"] == record["heads"]["sentiment"]["label"]
    # a loaded run scores a labelled table with the fit's label columns
    assert set(again.evaluate(table)["heads"]) == {"sentiment", "domain"}


def test_fixed_task_weights_reach_the_objectives(table):
    clf = TextClassifier(label_columns="sentiment,domain", task_weights="sentiment=1,domain=0.5", **FAST)
    clf.heads_ = {"sentiment": ["negative", "positive"], "domain": ["food", "gadgets"]}
    objectives = clf._objectives()
    assert {h: o.weight for h, o in objectives.items()} == {"sentiment": 1.0, "domain": 0.5}
    assert {h: o.loss for h, o in objectives.items()} == {"sentiment": "cross-entropy", "domain": "cross-entropy"}


@pytest.mark.parametrize("params, message", [
    (dict(label_columns="sentiment,topic"), "no column 'topic' (--label-columns); columns found: review, sentiment, domain"),
    (dict(label_columns="sentiment,domain", strategy="setfit"), "strategy 'setfit' trains one head"),
    (dict(label_columns="sentiment,domain", task_weights="sentiment=1,dom=2"), "no head 'dom'"),
    (dict(label_columns="sentiment,domain", task_weights="domain=-1"), "must be more than 0"),
    (dict(task_weights="uncertainty"), "task_weights weigh the heads of several label columns"),
    (dict(label_columns="sentiment,sentiment"), "named twice"),
    (dict(label_columns="sentiment,domain", label_names="bad,good"), "--label-names is for one label column"),
])
def test_user_errors_are_one_line(table, params, message):
    with pytest.raises(TransferkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TextClassifier(**{**FAST, **params}).fit(table)


def test_one_label_column_is_an_ordinary_single_task_table(table):
    clf = TextClassifier(strategy="linear-probe", label_columns="domain", **FAST).fit(table)
    assert clf.heads_ == {} and list(clf.model_.heads) == ["main"] and clf.classes_ == ["food", "gadgets"]
    assert "heads" not in clf.evaluate() and "heads" not in clf.config()


# ------------------------------------------------------------------------------------------ images
COLOURS = {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (40, 60, 200)}


def make_manifest(root, per_class=12, columns=("colour", "tone")):
    """Tiny images labelled by colour and by tone (bright or dark), listed in a CSV beside them."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    lines = ["path," + ",".join(columns)]
    for name, rgb in COLOURS.items():
        for i in range(per_class):
            tone = "dark" if i % 2 else "bright"
            pixels = np.array(rgb, np.float32) * (0.35 if tone == "dark" else 1.0) + rng.normal(0, 15, (32, 32, 3))
            file = f"images/{name}_{i:02d}.png"
            Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(root / file)
            lines.append(",".join([file, *({"colour": name, "tone": tone}[c] for c in columns)]))
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


IMAGE_FAST = dict(image_size=64, **FAST)


def test_image_manifest_with_two_label_columns_reloads_identically(tmp_path):
    manifest = make_manifest(tmp_path / "data")
    assert detect_task(manifest)[0] == "image-classification" and not TextClassifier.recognise(manifest)
    clf = ImageClassifier(strategy="linear-probe", label_columns="colour,tone", **IMAGE_FAST).fit(manifest)
    assert clf.heads_ == {"colour": ["blue", "green", "red"], "tone": ["bright", "dark"]}
    metrics = clf.evaluate()
    assert metrics["heads"]["colour"]["accuracy"] >= 0.9 and metrics["heads"]["tone"]["accuracy"] >= 0.9
    images = tmp_path / "data" / "images"
    assert clf.predict([images / "red_00.png", images / "blue_01.png"]) == {
        "colour": ["red", "blue"], "tone": ["bright", "dark"]}
    clf.save(tmp_path / "run")
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["test"][0][0].startswith("images/") and set(split["test"][0][1]) == {"colour", "tone"}
    again = load_run(tmp_path / "run")
    before, after = clf.predict_proba(clf.data_.test.paths), again.predict_proba(clf.data_.test.paths)
    for head in ("colour", "tone"):
        np.testing.assert_array_equal(before[head], after[head])
    assert set(again.evaluate(manifest)["heads"]) == {"colour", "tone"}


def test_image_manifest_with_one_label_column_is_single_task(tmp_path):
    manifest = make_manifest(tmp_path / "data", per_class=10, columns=("colour",))
    clf = ImageClassifier(strategy="linear-probe", **IMAGE_FAST).fit(manifest)  # the label column is detected
    assert clf.heads_ == {} and clf.classes_ == ["blue", "green", "red"] and list(clf.model_.heads) == ["main"]
    assert clf.evaluate(manifest)["accuracy"] >= 0.9


def test_image_label_columns_need_a_manifest(tmp_path):
    make_manifest(tmp_path / "data", per_class=3)
    with pytest.raises(DataError, match="--label-columns reads an image manifest"):
        ImageClassifier(label_columns="colour,tone", **IMAGE_FAST).fit(tmp_path / "data" / "images")
