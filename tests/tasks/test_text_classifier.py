"""TextClassifier end to end on small sentiment tables: strategies, save/load, few-shot and LoRA."""
import json

import numpy as np
import pytest
from safetensors.torch import load_file

from transferkit import TextClassifier, load_run
from transferkit.errors import DataError
from transferkit.strategies.setfit import make_pairs

from tests.helpers import BAD, GOOD, NOUNS, sentiment_table


FAST = dict(batch_size=8, progress=False, val_fraction=0.2, test_fraction=0.25)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return sentiment_table(tmp_path_factory.mktemp("text") / "reviews.tsv")


@pytest.fixture(scope="module")
def probed(table):
    return TextClassifier(strategy="linear-probe", **FAST).fit(table)


def test_linear_probe_learns_and_round_trips(probed, tmp_path):
    assert probed.evaluate()["accuracy"] >= 0.9
    assert probed.predict(["the concert was fantastic", "the concert was dreadful"]) == ["positive", "negative"]
    probed.save(tmp_path / "run")
    assert (tmp_path / "run" / "tokenizer").is_dir()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["task"] == "text-classification" and config["backbone"]["family"] == "transformers"
    again = load_run(tmp_path / "run")
    texts = probed.data_.test.texts
    np.testing.assert_array_equal(again.predict_proba(texts), probed.predict_proba(texts))


def test_predict_keeps_input_order_and_rejects_empty_text(probed):
    texts = ["the hotel was superb and the staff were lovely too", "bad", "the show was awful"]
    proba = probed.predict_proba(texts)
    for text, row in zip(texts, proba):
        np.testing.assert_allclose(probed.predict_proba([text])[0], row, atol=1e-5)
    with pytest.raises(DataError, match="text #2 is empty"):
        probed.predict(["fine", "  "])


def test_fine_tune_unfreezes_transformer_layers(table):
    clf = TextClassifier(strategy="fine-tune", epochs=4, **FAST).fit(table)
    settings = clf.strategy_settings_
    assert settings["groups"][0] == "stem" and len(settings["groups"]) == 7  # embeddings + 6 layers
    assert settings["lr"] == 1e-4  # the text default
    assert [row["epoch"] for row in clf.history_] == [1, 2, 3, 4] and "val_accuracy" in clf.history_[0]
    assert clf.evaluate()["accuracy"] >= 0.9


def test_auto_uses_setfit_for_few_shots(table):
    clf = TextClassifier(shots_per_class=4, strategy_options={"max_pairs": 48}, **FAST).fit(table)
    assert clf.strategy_ == "setfit"
    assert any("SetFit" in why for _, why in clf.decisions_)
    assert sorted(clf.data_.train.labels) == [0] * 4 + [1] * 4 and len(clf.data_.val) == 0
    assert clf.strategy_settings_["pairs"] == 48
    assert clf.strategy_settings_["head_fit"][0]["validation"] == "cross-validation on train"
    assert clf.evaluate()["accuracy"] >= 0.8


def test_lora_saves_only_adapters_and_reloads(table, tmp_path):
    clf = TextClassifier(strategy="lora", epochs=2, strategy_options={"r": 4}, **FAST).fit(table)
    clf.save(tmp_path / "lora")
    state = load_file(str(tmp_path / "lora" / "model.safetensors"))
    assert state and all("lora_" in k or k.startswith("heads.") for k in state)
    assert sum(v.numel() for v in state.values()) == clf.strategy_settings_["adapter_parameters"] + 384 * 2 + 2
    again = load_run(tmp_path / "lora")
    texts = clf.data_.test.texts
    np.testing.assert_allclose(again.predict_proba(texts), clf.predict_proba(texts), atol=1e-6)


def test_make_pairs_labels_same_and_different_classes():
    labels = [0, 0, 1, 1, 2]
    pairs = make_pairs(labels, iterations=3, max_pairs=100, seed=0)
    assert pairs and all((labels[i] == labels[j]) == (t == 1.0) for i, j, t in pairs)
    assert all(i != j for i, j, _ in pairs)
    assert len(make_pairs(labels, iterations=3, max_pairs=5, seed=0)) == 5


def test_fine_tune_without_validation_runs_every_epoch(table):
    """With --shots-per-class nothing is held out for validation: no early stopping, last epoch kept."""
    clf = TextClassifier(strategy="fine-tune", shots_per_class=6, epochs=2, **FAST).fit(table)
    assert len(clf.data_.val) == 0 and [row["epoch"] for row in clf.history_] == [1, 2]
    assert "val_loss" not in clf.history_[0] and not any("restored" in n for n in clf.notes_)


def test_label_names_reach_predictions_metrics_config_and_warnings(tmp_path):
    """Labels written 0/1/2 and named by `label_names`: the names are what the user sees and what
    the run keeps; a rare class (3 rows of 2) lands in the run's warnings."""
    rows = [(f"the {NOUNS[i % 6]} was {BAD[i % 8]}", 0) for i in range(20)] + \
           [(f"the {NOUNS[i % 6]} was {GOOD[i % 8]}", 1) for i in range(20)] + \
           [(f"the {noun} was fine", 2) for noun in NOUNS[:3]]
    table = tmp_path / "numeric.csv"
    table.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    clf = TextClassifier(strategy="linear-probe", label_names="0=negative,1=positive,2=neutral", baseline=False,
                         **FAST).fit(table)
    assert clf.classes_ == ["negative", "positive", "neutral"]
    assert clf.predict(["the concert was fantastic", "the concert was dreadful"]) == ["positive", "negative"]
    assert set(clf.evaluate()["per_class"]) == {"negative", "positive", "neutral"}
    assert any("'neutral' (3 rows)" in w for w in clf.warnings_)
    assert any(d.startswith("class names: 0 = negative") for d, _ in clf.decisions_)
    clf.save(tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["classes"] == ["negative", "positive", "neutral"]
    assert config["label_names"] == {"0": "negative", "1": "positive", "2": "neutral"}
    assert any("'neutral'" in w for w in config["run"]["warnings"])
    again = load_run(tmp_path / "run")
    assert again.predict(["the show was superb"]) == ["positive"]
    # an external table labelled as written (0/1) is scored against the named classes
    external = tmp_path / "external.csv"
    external.write_text("text,label\nthe concert was superb,1\nthe concert was awful,0\n")
    assert again.evaluate(external)["accuracy"] == 1.0
