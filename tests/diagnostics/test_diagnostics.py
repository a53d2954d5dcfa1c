"""Negative-transfer guard: verdicts, batch-norm domain shift, separability, from-scratch controls."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from transferkit import ImageClassifier, TextClassifier
from transferkit.diagnostics import batchnorm_shift, interpret_shift, linear_separability, transfer_verdict

from ..tasks.test_text_classifier import sentiment_table


def test_verdict_uses_two_standard_errors_of_the_difference():
    # p = 0.75 on 400 examples: noise = 2 * sqrt(2 * 0.75 * 0.25 / 400) = 0.0612
    check = transfer_verdict(0.80, 0.70, n=400)
    assert math.isclose(check["noise"], 2 * math.sqrt(2 * 0.75 * 0.25 / 400))
    assert check["verdict"] == "positive" and math.isclose(check["gain"], 0.10) and "advice" not in check
    assert transfer_verdict(0.72, 0.70, n=400)["verdict"] == "negligible"
    negative = transfer_verdict(0.60, 0.70, n=400)
    assert negative["verdict"] == "negative" and any("rank" in a for a in negative["advice"])
    # errors: lower is better
    assert transfer_verdict(0.30, 0.40, n=100, higher_is_better=False, name="mse")["verdict"] == "positive"
    assert transfer_verdict(0.50, 0.40, n=100, higher_is_better=False, name="mse")["verdict"] == "negative"


def test_batchnorm_shift_matches_the_gaussian_distance():
    model = nn.Sequential(nn.Identity(), nn.BatchNorm1d(2))
    model[1].running_mean.copy_(torch.tensor([0.0, 1.0]))
    model[1].running_var.copy_(torch.tensor([1.0, 4.0]))
    model[1].eps = 0.0
    rng = np.random.default_rng(0)
    x = torch.tensor(np.stack([rng.normal(2.0, 1.0, 20000), rng.normal(1.0, 2.0, 20000)], 1), dtype=torch.float32)
    shift = batchnorm_shift(model, DataLoader(TensorDataset(x, torch.zeros(len(x))), batch_size=1000), max_batches=100)
    # channel 0: mean moved by 2 source std, same spread; channel 1: unchanged → sqrt((4 + 0) / 2)
    assert shift["shift"] == pytest.approx(math.sqrt(2), abs=0.03)
    assert shift["mean_shift"] == pytest.approx(1.0, abs=0.02) and shift["layer"] == "1"
    assert "far" in interpret_shift(1.5) and "close" in interpret_shift(0.3)
    assert batchnorm_shift(nn.Linear(2, 2), []) is None  # nothing to compare without batch norm


def test_separability_tells_clusters_from_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    clusters = rng.normal(0, 1, (90, 8)) + 6 * np.eye(3, 8)[labels]
    assert linear_separability(clusters, labels)["cv_accuracy"] > 0.95
    noise = linear_separability(rng.normal(0, 1, (90, 8)), labels)
    assert noise["cv_accuracy"] < 0.6 and "barely" in noise["interpretation"] and noise["chance"] == pytest.approx(1 / 3)


def test_text_fit_reports_a_tfidf_control_and_the_gain(tmp_path):
    table = sentiment_table(tmp_path / "t.tsv")
    clf = TextClassifier(strategy="linear-probe", progress=False, val_fraction=0.2, test_fraction=0.25).fit(table)
    metrics = clf.evaluate()
    check = metrics["transfer"]
    assert check["control"].startswith("TF-IDF") and check["model"] == metrics["accuracy"]
    assert check["gain"] == pytest.approx(metrics["accuracy"] - clf.control_["accuracy"])
    assert clf.domain_["batchnorm_shift"] is None and clf.domain_["separability"]["cv_accuracy"] > 0.8


def test_image_fit_trains_the_same_architecture_from_scratch(colour_folder):
    clf = ImageClassifier(strategy="fine-tune", epochs=2, image_size=64, batch_size=8, progress=False).fit(colour_folder)
    assert clf.control_["model"].startswith("tf_efficientnet_lite0, random weights")
    assert 0 <= clf.control_["accuracy"] <= 1 and "from-scratch control" in clf.timings_
    assert clf.domain_["batchnorm_shift"]["layer"] == "bn2" and clf.domain_["batchnorm_shift"]["channels"] == 1280
    assert clf.evaluate()["transfer"]["verdict"] in ("positive", "negligible", "negative")
    assert ImageClassifier(baseline=False, strategy="linear-probe", image_size=64, progress=False).fit(
        colour_folder).control_ is None
