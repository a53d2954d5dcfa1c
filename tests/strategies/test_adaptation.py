"""Domain adaptation losses on tiny tensors, and one of them through the training loop."""
import math

import pytest
import torch
from torch import nn

from transferkit.models import TransferModel
from transferkit.strategies import FitData
from transferkit.strategies.adaptation import (METHODS, GradientReversal, adaptation_head, coral, dann_coefficient,
                                               multi_kernel_mmd, pseudo_labels)
from transferkit.strategies.losses import LOSSES, Objective
from transferkit.strategies.training import run_lightning

from tests.helpers.training import FEATURES, classified, module_for, settings, tiny_backbone


def test_every_method_is_a_registered_loss_on_unlabelled_data():
    for method in METHODS:
        loss = LOSSES.get(method)
        assert loss.unlabelled and not loss.labelled, method
        assert LOSSES.entry(method).description


def test_the_reversal_layer_is_the_identity_forward_and_flips_the_gradient():
    x = torch.randn(5, 3, requires_grad=True)
    layer = GradientReversal(coefficient=0.3)
    y = layer(x)
    assert torch.equal(y, x)
    weights = torch.randn(5, 3)
    (y * weights).sum().backward()
    assert torch.allclose(x.grad, -0.3 * weights)


def test_the_reversal_coefficient_warms_up_from_zero_to_its_ceiling():
    values = [dann_coefficient(p / 10) for p in range(11)]
    assert values[0] == 0.0 and values == sorted(values) and 0.99 < values[-1] <= 1.0
    assert dann_coefficient(1.0, high=0.5) == pytest.approx(0.5 * values[-1])


def test_coral_is_zero_for_equal_covariances_and_grows_with_their_difference():
    g = torch.Generator().manual_seed(0)
    source = torch.randn(64, 5, generator=g)
    assert coral(source, source + 3.0).item() == pytest.approx(0.0, abs=1e-6)  # same covariance, other mean
    assert coral(source, source * 2.0) > coral(source, source * 1.2) > 1e-4


def test_mmd_is_zero_for_identical_samples_and_positive_for_shifted_ones():
    g = torch.Generator().manual_seed(0)
    source = torch.randn(32, 4, generator=g)
    assert multi_kernel_mmd(source, source.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert multi_kernel_mmd(source, source + 2.0) > multi_kernel_mmd(source, source + 0.5) > 1e-3


def test_pseudo_labels_respect_the_threshold_and_give_every_predicted_class_its_most_confident():
    probs = torch.tensor([[0.99, 0.01], [0.97, 0.03], [0.60, 0.40], [0.55, 0.45],  # class 0: two confident
                          [0.30, 0.70], [0.35, 0.65], [0.40, 0.60], [0.45, 0.55]])  # class 1: none confident
    labels, mask = pseudo_labels(probs, threshold=0.95, portion=0.5)
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # class 0: the two above the threshold; class 1: its most confident half, though below it
    assert mask.tolist() == [True, True, False, False, True, True, False, False]
    _, strict = pseudo_labels(probs, threshold=0.95, portion=0.0)
    assert strict.tolist() == [True, True, False, False, False, False, False, False]


def test_the_domain_losses_are_ln2_when_the_discriminator_cannot_tell():
    zeros = torch.zeros(6, 1)
    assert LOSSES.get("dann")()(zeros, None, zeros).item() == pytest.approx(math.log(2))
    weighted = torch.cat([torch.zeros(6, 1), torch.rand(6, 1) + 1], dim=1)  # [logit, entropy weight]
    assert LOSSES.get("cdan")()(weighted, None, weighted).item() == pytest.approx(math.log(2))


def test_the_cdan_head_weighs_confident_predictions_more_and_reverses_the_gradient():
    classifier = nn.Linear(4, 3)
    head = adaptation_head("cdan", 4, 3, classifier)
    assert not any(p is q for p in head.parameters() for q in classifier.parameters())  # read, not owned
    features = torch.randn(8, 4, requires_grad=True)
    out = head(features)
    assert out.shape == (8, 2) and ((out[:, 1] > 1.0) & (out[:, 1] <= 2.0)).all()
    LOSSES.get("cdan")()(out, None, head(torch.randn(8, 4))).backward()
    assert features.grad is not None and features.grad.abs().sum() > 0


def test_self_training_trains_the_classifier_on_confident_target_predictions_only():
    loss = LOSSES.get("self-training")(threshold=0.9, portion=0.0)
    logits = torch.tensor([[5.0, 0.0], [0.1, 0.0]], requires_grad=True)  # confident, unsure
    loss(logits[:0], None, logits).backward()
    assert logits.grad[0].abs().sum() > 0 and logits.grad[1].abs().sum() == 0


def test_an_unknown_method_names_the_methods():
    with pytest.raises(ValueError, match="dann, cdan, coral, mmd, self-training"):
        adaptation_head("dan", 4, 2, nn.Linear(4, 2))


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_in_the_one_loop_next_to_the_classifier(method):
    """Source batches for the classifier, target batches for the method's head, one TransferModule."""
    source, target = classified(32), classified(32, seed=1, shift=1.5)
    model = TransferModel(tiny_backbone(), nn.Linear(FEATURES, 2))
    model.add_head("adapt", adaptation_head(method, FEATURES, 2, model.head))
    data = FitData(source, source, classified(8, seed=2), num_classes=2, unlabelled=target,
                   objectives={"main": "cross-entropy", "adapt": Objective(method, weight=0.5)})
    s = settings(epochs=2)
    run = run_lightning(module_for(model, data, s, 2), *data.training_loaders(s), 2, s)
    assert len(run.history) == 2 and all(math.isfinite(row["train_loss_adapt"]) for row in run.history)
    assert sorted(model.state_dict()) == sorted(TransferModel(tiny_backbone(), {
        "main": nn.Linear(FEATURES, 2), "adapt": adaptation_head(method, FEATURES, 2, nn.Linear(FEATURES, 2))
    }).state_dict())  # a shared classifier is not saved twice


# ------------------------------------------------------------- choosing without target labels
def test_prediction_entropy_is_ln2_for_coin_flips_and_zero_for_certainty():
    from transferkit.strategies.adaptation import prediction_entropy

    assert prediction_entropy(torch.full((4, 2), 0.5)) == pytest.approx(math.log(2))
    assert prediction_entropy(torch.eye(3)) == pytest.approx(0.0, abs=1e-9)


def test_deep_embedded_validation_weights_source_examples_that_look_like_the_target():
    from transferkit.strategies.adaptation import deep_embedded_validation

    g = torch.Generator().manual_seed(0)
    near = torch.randn(60, 2, generator=g) + torch.tensor([3.0, 0.0])  # where the target lies
    far = torch.randn(60, 2, generator=g) - torch.tensor([3.0, 0.0])
    target = torch.randn(120, 2, generator=g) + torch.tensor([3.0, 0.0])
    source = torch.cat([near, far])
    losses = torch.cat([torch.full((60,), 2.0), torch.full((60,), 0.2)])  # wrong near the target
    plain = float(losses.mean())
    assert deep_embedded_validation(source, target, losses) > plain + 0.5
    # self-normalised weights: constant losses give exactly that constant, and no estimate leaves the
    # range of the losses (DEV's control variate gave negative risks on small validation sets)
    assert deep_embedded_validation(source, target, torch.full((120,), 0.7)) == pytest.approx(0.7, abs=1e-6)
    errors = (torch.rand(120, generator=g) < 0.3).float()
    assert 0.0 <= deep_embedded_validation(source, target, errors) <= 1.0


def test_dev_score_comes_with_a_bootstrap_band_that_narrows_with_more_validation_examples():
    from transferkit.strategies.adaptation import dev_score

    g = torch.Generator().manual_seed(0)

    def scored(n: int) -> dict:
        source, target = torch.randn(n, 2, generator=g), torch.randn(200, 2, generator=g) + 1.0
        errors = (torch.rand(n, generator=g) < 0.2).float()
        return dev_score(source, target, errors)

    small, large = scored(40), scored(800)
    for s in (small, large):
        assert s["low"] <= s["score"] <= s["high"] and 0 < s["effective_n"]
    assert small["effective_n"] <= 40 and large["effective_n"] <= 800
    assert small["high"] - small["low"] > large["high"] - large["low"]
    # one error among the few source examples that look like the target: a wide band, not one figure
    few = dev_score(torch.randn(80, 2, generator=g), torch.randn(100, 2, generator=g), torch.eye(80)[0])
    assert few["low"] == 0.0 and few["high"] > few["score"]


def test_the_criterion_is_compared_with_the_real_target_error_by_rank():
    from transferkit.strategies.adapt import criterion_against_target, target_domain_metrics

    rows = [{"method": m, "criterion": c, "target_accuracy": a, "chosen": int(m == "cdan")}
            for m, c, a in (("source-only", 0.03, 0.84), ("cdan", 0.01, 0.86), ("mmd", 0.05, 0.89))]
    ranked = criterion_against_target(rows)
    # criterion order cdan < source-only < mmd; target error order mmd < cdan < source-only
    assert ranked == {"spearman": -0.5, "candidates": 3, "kept_is_best": False, "best_on_target": ["mmd"]}
    assert criterion_against_target([{**r, "target_accuracy": None} for r in rows]) is None
    headline = target_domain_metrics({"candidates": rows}, {"labelled": "yelp.txt", "labelled_examples": 1000})
    assert headline["accuracy"] == 0.86 and headline["correct"] == 860 and headline["n"] == 1000
    assert headline["band"][0] < 0.86 < headline["band"][1] and headline["band"][1] - headline["band"][0] < 0.05
    unknown = target_domain_metrics({"candidates": [{**r, "target_accuracy": None} for r in rows]})
    assert unknown["accuracy"] is None and "unknown" in unknown["why"]


def test_proxy_a_distance_is_near_zero_for_one_domain_and_near_two_for_separate_ones():
    import numpy as np

    from transferkit.diagnostics import proxy_a_distance

    rng = np.random.default_rng(0)
    same = proxy_a_distance(rng.normal(size=(200, 5)), rng.normal(size=(200, 5)))
    apart = proxy_a_distance(rng.normal(size=(200, 5)), rng.normal(size=(200, 5)) + 4.0)
    assert same["a_distance"] < 0.5 and apart["a_distance"] > 1.9
    assert apart["examples_per_domain"] == 200 and apart["domain_accuracy"] > 0.97


def test_auto_says_when_the_kept_method_is_not_told_apart_from_source_only():
    from transferkit.strategies.adapt import DomainAdapt

    def row(method, score, band):
        return {"method": method, "criterion": score, "dev_band": band}

    strategy = DomainAdapt()
    kept, reason = strategy._choose([row("source-only", 0.03, [0.0, 0.08]), row("none", 0.04, [0.0, 0.09]),
                                     row("cdan", 0.008, [0.0, 0.03])])
    assert kept == "cdan" and "their 95% bands overlap" in reason
    kept, reason = strategy._choose([row("source-only", 0.30, [0.25, 0.35]), row("cdan", 0.10, [0.05, 0.15])])
    assert kept == "cdan" and "overlap" not in reason
    kept, reason = strategy._choose([row("source-only", 0.0255, [0.0001, 0.1087]), row("cdan", 0.0621, [0.0011, 0.2185])])
    assert kept == "source-only" and "do not tell cdan from source-only apart" in reason
