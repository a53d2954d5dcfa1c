"""Every registered task announces its plan (logger `transferkit.plan`) before training starts."""
from __future__ import annotations

import logging

import pytest

from transferkit.tasks import TASKS

from tests.helpers import sentiment_table, series_csv
from transferkit.testing import make_boxed_images, make_image_folder

# one cheap fit per modality; a task of a new modality fails here until it is given one
FITS = {
    "image": (lambda tmp: make_image_folder(tmp / "images", per_class=6, size=32),
              dict(strategy="linear-probe", image_size=32, baseline=False), ("input size: 32 px", "split")),
    "text": (lambda tmp: sentiment_table(tmp / "reviews.tsv", per_class=12),
             dict(strategy="linear-probe", batch_size=8, baseline=False), ("max length", "split")),
    "timeseries": (lambda tmp: series_csv(tmp / "series.csv", rows=400),
                   dict(lookback=48, horizon=12, epochs=1), ("lookback 48, horizon 12", "split")),
    "detection": (lambda tmp: make_boxed_images(tmp / "boxes", count=8, size=(32, 32)),
                  dict(epochs=1, image_size=32, baseline=False), ("data format: voc", "input size: 32 px")),
}


@pytest.mark.parametrize("task", TASKS.names())
def test_plan_is_logged_before_training(task, tmp_path, caplog):
    make_data, params, details = FITS[TASKS.entry(task).info.modality]
    caplog.set_level(logging.INFO, logger="transferkit.plan")
    TASKS.get(task)(progress=False, **params).fit(make_data(tmp_path))
    plans = [r for r in caplog.records if r.name == "transferkit.plan"]
    assert len(plans) == 1  # no control ran, so no second plan
    decisions = [decision for decision, _ in plans[0].plan]
    assert decisions[0] == f"task: {task}"
    assert any(d.startswith("backbone: ") for d in decisions)
    assert any(d.startswith("strategy: ") for d in decisions) and any(d.startswith("epochs") for d in decisions)
    for detail in details:
        assert any(d.startswith(detail) for d in decisions), detail


def test_auto_plan_says_what_it_will_choose_and_why():
    from transferkit.strategies import FitData, TrainSettings, create_strategy

    class Labelled(list):
        labels = [0] * 4 + [1] * 4

    text = FitData(train=Labelled(range(8)), train_plain=Labelled(range(8)), val=[], num_classes=2, modality="text")
    lines = create_strategy("auto").plan(text, TrainSettings())
    assert lines[0][0] == "strategy: auto → setfit" and "4 training texts" in lines[0][1]
    # images: the probe runs first, and whether to fine-tune is decided on its validation result
    images = FitData(train=Labelled(range(8)), train_plain=Labelled(range(8)), val=[], num_classes=2)
    lines = create_strategy("auto").plan(images, TrainSettings())
    assert lines[0][0].startswith("strategy: auto → linear probe first") and "time budget" in lines[0][1]
    assert lines[1][0] == "epochs: chosen after the probe"
