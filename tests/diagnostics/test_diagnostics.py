"""Negative-transfer guard: verdicts, batch-norm domain shift, separability, from-scratch controls."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from transferkit import ImageClassifier, TextClassifier
from transferkit.diagnostics import batchnorm_shift, interpret_shift, linear_separability, transfer_verdict
from transferkit.diagnostics.transfer_gain import ADVICE, PRACTICAL_DIFFERENCE, verdict_headline

from ..tasks.test_text_classifier import sentiment_table


def test_verdict_uses_two_standard_errors_of_the_difference():
    # pooled p = 0.75 on 400 examples, Laplace-smoothed: (300 + 1) / 402; noise = 2 * sqrt(2 p (1 - p) / 400)
    check = transfer_verdict(0.80, 0.70, n=400)
    p = 301 / 402
    assert math.isclose(check["noise"], 2 * math.sqrt(2 * p * (1 - p) / 400))
    assert check["verdict"] == "positive" and math.isclose(check["gain"], 0.10) and "advice" not in check
    assert check["needed_n"] is None
    negative = transfer_verdict(0.60, 0.70, n=400, suggest=ImageClassifier.transfer_suggestions)
    assert negative["verdict"] == "negative" and any("rank" in a for a in negative["advice"])
    # errors: lower is better
    assert transfer_verdict(0.30, 0.40, n=100, higher_is_better=False, name="mse")["verdict"] == "positive"
    assert transfer_verdict(0.50, 0.40, n=100, higher_is_better=False, name="mse")["verdict"] == "negative"
    assert transfer_verdict(0.401, 0.40, n=100, higher_is_better=False, name="mse")["verdict"] == "negligible"


def test_a_gain_inside_a_wide_band_is_inconclusive_with_the_test_size_that_would_tell():
    # a text run of a new user's journey: +13 points on 72 test examples, band ±15 points
    check = transfer_verdict(0.78, 0.65, n=72)
    assert check["noise"] > check["gain"] > PRACTICAL_DIFFERENCE
    assert check["verdict"] == "inconclusive"
    # needed_n solves the two-SE band for n: it resolves the observed gain, 5 % fewer do not
    assert transfer_verdict(0.78, 0.65, n=check["needed_n"])["verdict"] == "positive"
    assert transfer_verdict(0.78, 0.65, n=round(0.95 * check["needed_n"]))["verdict"] == "inconclusive"
    headline = verdict_headline(check)
    assert headline.startswith("Inconclusive: the test set (72 examples) is too small to tell")
    assert f"{check['needed_n']:,} examples" in headline
    # the only advice is the test size: nothing says the model failed
    assert len(check["advice"]) == 1 and f"{check['needed_n']:,} test examples" in check["advice"][0]
    # a tiny gain is resolved at the practical difference, not at its own (huge) size
    tiny = transfer_verdict(0.701, 0.70, n=200)
    assert tiny["verdict"] == "inconclusive"
    assert transfer_verdict(0.72, 0.70, n=tiny["needed_n"])["verdict"] == "positive"
    # perfect scores on both sides are no proof of equality on a handful of examples
    for n in (10, 20, 50):
        assert transfer_verdict(1.0, 1.0, n=n)["verdict"] == "inconclusive"


def test_a_gain_inside_a_narrow_band_is_negligible():
    check = transfer_verdict(0.705, 0.70, n=20_000)
    assert check["noise"] < PRACTICAL_DIFFERENCE and check["verdict"] == "negligible" and check["needed_n"] is None
    assert "No measurable difference" in verdict_headline(check)


STRATEGY_NAMES = ("auto", "fine-tune", "full", "linear-probe", "lora", "setfit")
RANKING = {"metric": "logme", "rows": [{"candidate": "lite0", "backbone": "lite0"},
                                        {"candidate": "mobilenetv2", "backbone": "mobilenetv2"}]}


#: what a task without classification backbones to rank (a series forecaster) would suggest
SERIES_SUGGESTIONS = ("source", "full", "more_history")


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
@pytest.mark.parametrize("modality, suggest", (("image", ImageClassifier.transfer_suggestions),
                                               ("text", TextClassifier.transfer_suggestions),
                                               ("timeseries", SERIES_SUGGESTIONS)))
@pytest.mark.parametrize("ranking", (None, RANKING))
@pytest.mark.parametrize("scores", ((0.60, 0.70, 400), (0.705, 0.70, 20_000), (0.75, 0.70, 50), (0.9, 0.6, 400)))
def test_advice_only_suggests_what_the_run_has_not_done_and_can_do(strategy, modality, suggest, ranking, scores):
    check = transfer_verdict(*scores, strategy=strategy, ranking=ranking, suggest=suggest)
    advice = " | ".join(check.get("advice", []))
    assert "domain adaptation" not in advice  # not a transferkit feature
    assert f"--strategy {strategy} " not in advice + " "  # never the strategy already used
    if ranking:  # backbone=auto already ranked: no ranking again, nor the backbone it chose
        assert "transferkit rank" not in advice and "--backbone auto" not in advice
        assert "--backbone lite0" not in advice
    if modality == "timeseries":  # `rank` and backbone=auto are for classification backbones
        assert "rank" not in advice and "--backbone auto" not in advice
    if check["verdict"] in ("negative", "negligible") and strategy != "full":
        assert "--strategy full" in advice
    if check["verdict"] in ("positive", "inconclusive"):
        assert "--strategy" not in advice and "--backbone" not in advice


def test_the_task_says_what_to_suggest_and_the_run_what_is_left():
    image = transfer_verdict(0.60, 0.70, n=400, strategy="fine-tune", suggest=ImageClassifier.transfer_suggestions)
    assert image["advice"] == [ADVICE["rank"], ADVICE["full"], ADVICE["more_data"]]
    ranked = transfer_verdict(0.60, 0.70, n=400, strategy="full", ranking=RANKING,
                              suggest=TextClassifier.transfer_suggestions)
    assert ranked["advice"] == ["try the ranking's runner-up: --backbone mobilenetv2", ADVICE["more_data"]]
    series = transfer_verdict(0.60, 0.70, n=400, strategy="fine-tune", ranking=RANKING, suggest=SERIES_SUGGESTIONS)
    assert series["advice"] == [ADVICE["source"], ADVICE["full"], ADVICE["more_history"]]


def test_advice_without_run_context_suggests_no_flags():
    # a caller that does not say what the run did gets nothing it might already have done
    advice = transfer_verdict(0.60, 0.70, n=400)["advice"]
    assert advice and not any("--" in a for a in advice)


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
    # the run's strategy reaches the advice: a linear probe is told about --strategy full exactly
    # when transfer fell short
    advice = " | ".join(check.get("advice", []))
    assert ("--strategy full" in advice) == (check["verdict"] in ("negative", "negligible"))
    assert clf.domain_["batchnorm_shift"] is None and clf.domain_["separability"]["cv_accuracy"] > 0.8


def test_image_fit_trains_the_same_architecture_from_scratch(colour_folder):
    clf = ImageClassifier(strategy="fine-tune", epochs=2, image_size=64, batch_size=8, progress=False).fit(colour_folder)
    assert clf.control_["model"].startswith("tf_efficientnet_lite0, random weights")
    assert 0 <= clf.control_["accuracy"] <= 1 and "from-scratch control" in clf.timings_
    assert clf.domain_["batchnorm_shift"]["layer"] == "bn2" and clf.domain_["batchnorm_shift"]["channels"] == 1280
    assert clf.evaluate()["transfer"]["verdict"] in ("positive", "negligible", "inconclusive", "negative")
    assert ImageClassifier(baseline=False, strategy="linear-probe", image_size=64, progress=False).fit(
        colour_folder).control_ is None


def test_an_image_model_without_pretrained_weights_has_no_transfer_to_judge(colour_folder):
    """`scratch:NAME` trains the architecture from random weights: a from-scratch control would be the
    same model again, so there is no control and no transfer verdict, and the run says why."""
    clf = ImageClassifier(backbone="scratch:efficientnet_lite0", strategy="full", epochs=1, image_size=32,
                          batch_size=16, progress=False).fit(colour_folder)
    assert clf.control_ is None and "from-scratch control" not in clf.timings_
    assert "transfer" not in clf.evaluate()
    assert any("nothing was transferred" in note for note in clf.notes_)
