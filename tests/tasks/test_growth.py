"""`extend` on image and text classifiers: new classes learned, old ones kept, the memory bounded and
saved, the lineage recorded, and an extended run reloading with identical predictions."""
import json

import numpy as np
import pytest
import torch

from transferkit import ImageClassifier, TextClassifier, load_run
from transferkit.errors import TransferkitError
from transferkit.rundir import MEMORY_FEATURES, MEMORY_FILE
from transferkit.tasks.growth import FEATURE_MEMORY_CAP

from tests.helpers import BAD, GOOD, NOUNS
from transferkit.testing import make_image_folder

FAST = dict(image_size=32, batch_size=8, progress=False, baseline=False, val_fraction=0.2, test_fraction=0.25,
            tta=False)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("grow")
    # the parent's splits given as folders: a held-out test split measures the old classes before and after
    for seed, (split, count) in enumerate((("train", 10), ("val", 3), ("test", 5))):
        make_image_folder(root / "old" / split, per_class=count, classes=("red", "green"), seed=seed)
    return root / "old", make_image_folder(root / "new", per_class=10, classes=("blue",), seed=7)


def _old_logits(est, paths):
    dataset = est._examples([str(p) for p in paths], [0] * len(paths), augment=False)
    with torch.no_grad():
        return est.model_(torch.stack([dataset[i][0] for i in range(len(dataset))]))


def test_a_prototype_run_grows_without_changing_old_predictions_and_reloads_identically(folders, tmp_path):
    old, new = folders
    est = ImageClassifier(strategy="prototypes", memory=4, **FAST).fit(old)
    est.save(tmp_path / "parent")
    parent = load_run(tmp_path / "parent")
    queries = sorted(old.rglob("*.jpg"))[:8] + sorted(new.rglob("*.jpg"))[:4]
    before = _old_logits(parent, queries)
    predicted_before = parent.predict(queries)
    parent.extend(new)
    assert parent.classes_ == ["green", "red", "blue"]
    after = _old_logits(parent, queries)
    assert torch.allclose(after[:, :2], before, rtol=1e-6, atol=1e-4)
    assert torch.equal(after[:, :2].argmax(1), before.argmax(1))
    # an old image is never moved from one old class to another: at most to the new class
    assert all(b == a or a == "blue" for b, a in zip(predicted_before, parent.predict(queries)))
    step = parent.lineage_[-1]
    assert step["added"] == ["blue"] and step["parent"] == str(tmp_path / "parent")
    assert step["metrics"]["new_accuracy"] > 0.5 and step["metrics"]["old_examples"] == 10
    assert step["metrics"]["forgetting"] == step["metrics"]["old_accuracy_before"] - step["metrics"]["old_accuracy_after"]
    parent.save(tmp_path / "child")
    child = load_run(tmp_path / "child")
    assert np.array_equal(child.predict_proba(queries), parent.predict_proba(queries))
    assert child.lineage_ == json.loads(json.dumps(parent.lineage_))
    memory = json.loads((tmp_path / "child" / MEMORY_FILE).read_text())
    # a frozen backbone: every example's features are kept (exact, and small), old and new
    assert memory["per_class"] == FEATURE_MEMORY_CAP and sorted(set(memory["labels"])) == [0, 1, 2]
    assert len(memory["refs"]) == 2 * (10 + 3) + sum(step["examples"][s] for s in ("train", "val"))
    assert (tmp_path / "child" / MEMORY_FEATURES).is_file()


def test_a_linear_probe_run_is_refit_on_its_memory_and_compared_with_naive_and_retraining(folders):
    old, new = folders
    est = ImageClassifier(strategy="linear-probe", memory=5, **FAST).fit(old)
    est.extend(new, compare=True)
    step = est.lineage_[-1]
    assert step["memory_used"] == 2 * (10 + 3) and "refit" in step["how"]
    assert "bias_correction" not in est.strategy_settings_  # frozen features need none
    naive, joint = step["comparison"]["naive"], step["comparison"]["joint"]
    assert naive["new_accuracy"] >= step["metrics"]["new_accuracy"] - 1e-9  # naive learns only the new class...
    assert joint["all_accuracy"] is not None and joint["seconds"] > 0
    assert len(est.memory_["refs"]) == 2 * (10 + 3) + step["examples"]["train"] + step["examples"]["val"]
    metrics = est.evaluate()  # the merged test split: every class
    assert set(metrics["per_class"]) == {"green", "red", "blue"}


def test_a_fine_tuned_run_grows_by_replay_distillation_and_weight_aligning(folders, tmp_path):
    old, new = folders
    est = ImageClassifier(strategy="fine-tune", epochs=1, memory=3, **FAST).fit(old)
    assert est.memory_["features"].shape == (6, est.backbone_info_["num_features"])
    stored = est.memory_["features"].copy()
    est.extend(new, train_backbone=True)
    settings = est.strategy_settings_
    assert settings["backbone_trained"] and settings["weight_aligning_factor"] > 0
    assert settings["distillation"]["temperature"] == 2.0
    assert list(est.model_.heads) == ["main"] and est.model_.head.out_features == 3
    # the backbone changed, so the kept exemplars' features were computed again
    assert not np.allclose(est.memory_["features"][:6], stored)
    est.save(tmp_path / "run")
    paths = sorted(new.rglob("*.jpg"))[:3]
    assert np.array_equal(load_run(tmp_path / "run").predict_proba(paths), est.predict_proba(paths))


def test_a_fine_tuned_run_grows_its_head_on_stored_features_by_default(folders):
    old, new = folders
    est = ImageClassifier(strategy="fine-tune", epochs=1, memory=3, **FAST).fit(old)
    backbone = {k: v.clone() for k, v in est.model_.backbone.state_dict().items()}
    est.extend(new)
    assert not est.strategy_settings_["backbone_trained"] and est.strategy_settings_["C"] > 0
    assert len(est.memory_["refs"]) == 3 * 3  # a trained backbone: the bounded memory, 3 per class
    assert est.strategy_settings_["bias_correction"]["examples"] == 3 * 2 + 2  # held-out old + new validation
    assert all(torch.equal(v, backbone[k]) for k, v in est.model_.backbone.state_dict().items())
    assert est.lineage_[-1]["metrics"]["new_accuracy"] > 0.5


def test_a_run_without_memory_cannot_refit_a_linear_probe(folders):
    old, new = folders
    est = ImageClassifier(strategy="linear-probe", memory=0, **FAST).fit(old)
    with pytest.raises(TransferkitError, match="no exemplar features"):
        est.extend(new)


def test_a_text_classifier_learns_a_new_class_from_a_table(tmp_path):
    rows = [(f"the {NOUNS[i % len(NOUNS)]} was {words[i % len(words)]}", label)
            for i in range(16) for words, label in ((GOOD, "positive"), (BAD, "negative"))]
    (tmp_path / "old.tsv").write_text("review\tsentiment\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    neutral = ["okay", "average", "fine", "ordinary", "so-so", "acceptable"]
    (tmp_path / "new.tsv").write_text("review\tsentiment\n" + "".join(
        f"the {NOUNS[i % len(NOUNS)]} was {neutral[i % len(neutral)]}\tneutral\n" for i in range(16)))
    est = TextClassifier(strategy="linear-probe", memory=6, batch_size=8, progress=False, baseline=False,
                         val_fraction=0.2, test_fraction=0.25).fit(tmp_path / "old.tsv")
    est.extend(tmp_path / "new.tsv")
    assert est.classes_[-1] == "neutral"
    texts = ["the film was okay", "the meal was wonderful", "the book was awful"]
    est.save(tmp_path / "run")
    assert np.array_equal(load_run(tmp_path / "run").predict_proba(texts), est.predict_proba(texts))
    assert est.lineage_[-1]["metrics"]["old_accuracy_before"] is not None
