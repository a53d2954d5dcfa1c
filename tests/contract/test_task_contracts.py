"""Every registered task × every strategy that applies to its modality keeps the estimator contract.

Generated from the registries (as scikit-learn's `parametrize_with_checks`): `clone` gives an
unfitted estimator with equal params, `fit` leaves the params as given, and a tiny fit saved
and reloaded predicts exactly what the fitted estimator predicts, from a run directory holding
only the files `transferkit.rundir` documents.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from transferkit.strategies import STRATEGIES
from transferkit.rundir import CONFIG_FILE, RUN_FILES, WEIGHTS_FILE
from transferkit.tasks import TASKS, load_run

from .conftest import (TINY_DATA, backbone_available, default_backbone, small_params, task_modality,
                       task_strategy_cases)


def predictions(estimator, inputs) -> dict[str, object]:
    """Every prediction method the estimator has, applied to `inputs`."""
    return {name: getattr(estimator, name)(inputs) for name in ("predict", "predict_proba")
            if callable(getattr(estimator, name, None))}


def test_every_task_has_an_applicable_strategy():
    assert {case.values[0] for case in task_strategy_cases()} == set(TASKS.names())


@pytest.mark.parametrize("task", TASKS.names())
def test_clone_gives_an_unfitted_estimator_with_equal_params(task):
    estimator = TASKS.get(task)(**small_params(task, "auto"))
    copy = clone(estimator)
    assert type(copy) is type(estimator) and copy is not estimator
    assert copy.get_params() == estimator.get_params()
    assert not hasattr(copy, "model_")


@pytest.mark.parametrize(("task", "strategy"), task_strategy_cases())
def test_fit_save_load_predicts_the_same(task, strategy, tmp_path):
    backbone = default_backbone(task)
    if not backbone_available(backbone):
        pytest.skip(f"{task}'s default backbone {backbone} is not installed offline here")
    data = TINY_DATA[task_modality(task)](tmp_path / "data")
    estimator = TASKS.get(task)(**small_params(task, strategy))
    params = estimator.get_params()

    unfitted = clone(estimator)
    adapting = STRATEGIES.entry(strategy).info.unlabelled
    fitted = unfitted.fit(data.fit_on, **({"unlabeled": data.unlabeled} if adapting else {}))
    assert fitted is unfitted, "fit must return self"
    assert fitted.get_params() == params, "fit changed the estimator's params"
    expected = predictions(fitted, data.predict_on)
    assert expected, f"{type(fitted).__name__} has neither predict nor predict_proba"

    run = fitted.save(tmp_path / "run")
    written = {p.name for p in run.iterdir()}
    assert {CONFIG_FILE, WEIGHTS_FILE} <= written
    assert written <= set(RUN_FILES), f"undocumented files in the run directory: {sorted(written - set(RUN_FILES))}"

    loaded = load_run(run)
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == {**params, "progress": False}
    got = predictions(loaded, data.predict_on)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_allclose(got[name], value, rtol=0, atol=0, err_msg=f"{name} after save → load")
        else:
            assert list(got[name]) == list(value), f"{name} after save → load"
