"""Every classification task × every strategy that applies to it either grows a fitted model to a new
class (the extended run reloads with identical predictions) or refuses in one line.

Generated from the registries, as the fit contract is: a strategy registered later is covered here
without a new test.
"""
from __future__ import annotations

import numpy as np
import pytest

from transferkit.errors import TransferkitError
from transferkit.strategies import STRATEGIES, Strategy
from transferkit.tasks import TASKS, load_run
from transferkit.tasks.base import ClassifierBase

from .conftest import TINY_DATA, backbone_available, default_backbone, small_params, task_modality, task_strategy_cases


def new_class_data(modality: str, root):
    """One class the tiny data sets do not have: white images, or neutral sentences."""
    root.mkdir(parents=True)
    if modality == "image":
        from PIL import Image

        rng = np.random.default_rng(1)
        (root / "white").mkdir()
        for i in range(10):
            pixels = np.full((32, 32, 3), 235, np.float32) + rng.normal(0, 15, (32, 32, 3))
            Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(root / "white" / f"white_{i}.png")
        return root
    words = ["okay", "average", "fine", "ordinary", "acceptable", "middling"]
    path = root / "neutral.csv"
    path.write_text("text,label\n" + "".join(f"the film was {words[i % len(words)]},neutral\n" for i in range(26)))
    return path


CASES = [case for case in task_strategy_cases() if issubclass(TASKS.get(case.values[0]), ClassifierBase)]


@pytest.mark.parametrize(("task", "strategy"), CASES)
def test_a_fitted_classifier_grows_or_refuses_in_one_line(task, strategy, tmp_path):
    backbone = default_backbone(task)
    if not backbone_available(backbone):
        pytest.skip(f"{task}'s default backbone {backbone} is not installed offline here")
    modality = task_modality(task)
    data = TINY_DATA[modality](tmp_path / "data")
    adapting = STRATEGIES.entry(strategy).info.unlabelled
    estimator = TASKS.get(task)(**small_params(task, strategy)).fit(
        data.fit_on, **({"unlabeled": data.unlabeled} if adapting else {}))
    old = list(estimator.classes_)
    new = new_class_data(modality, tmp_path / "new")
    if STRATEGIES.get(estimator.strategy_).extend is Strategy.extend:  # the strategy does not grow models
        with pytest.raises(TransferkitError) as refused:
            estimator.extend(new)
        assert "\n" not in str(refused.value) and "cannot be extended" in str(refused.value)
        return
    estimator.extend(new)
    assert estimator.classes_[: len(old)] == old and len(estimator.classes_) == len(old) + 1
    assert estimator.lineage_[-1]["added"] == estimator.classes_[len(old):]
    expected = estimator.predict_proba(data.predict_on)
    assert expected.shape[1] == len(old) + 1
    reloaded = load_run(estimator.save(tmp_path / "run"))
    assert np.array_equal(reloaded.predict_proba(data.predict_on), expected)
