"""Uncertainty weighting of multi-task losses (Kendall, Gal & Cipolla 2018) on tiny tensors."""
import math

import pytest
import torch
import torch.nn.functional as F

from transferkit.strategies import FitData, TrainSettings
from transferkit.strategies.losses import LOSSES, CrossEntropy, Objective, UncertaintyWeighted, build_losses

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.3, -0.2]])
TARGET = torch.tensor([0, 2])


def test_loss_is_exp_minus_s_times_the_head_loss_plus_s():
    loss = UncertaintyWeighted(CrossEntropy(num_classes=3), init=0.7)
    plain = F.cross_entropy(LOGITS, TARGET)
    assert torch.allclose(loss(LOGITS, TARGET), math.exp(-0.7) * plain + 0.7)
    # validation reports the head's own loss, unweighted, under the wrapped loss's metric
    assert torch.allclose(loss.validation_loss(LOGITS, TARGET), plain)
    assert loss.metric == "accuracy" and loss.new_metric() is not None
    assert loss.learned() == pytest.approx({"log_variance": 0.7, "weight": math.exp(-0.7)})


def test_log_variance_settles_at_the_log_of_the_head_loss():
    # d/ds [exp(-s) L + s] = 0 at s = log L: a head with a larger loss ends with a smaller weight exp(-s) = 1/L
    heads = {"easy": UncertaintyWeighted(CrossEntropy(3)), "hard": UncertaintyWeighted(CrossEntropy(3))}
    easy, hard = F.cross_entropy(LOGITS, TARGET), F.cross_entropy(-LOGITS, TARGET)
    optimiser = torch.optim.SGD([p for h in heads.values() for p in h.parameters()], lr=0.1)
    for _ in range(500):
        optimiser.zero_grad()
        total = heads["easy"](LOGITS, TARGET) + heads["hard"](-LOGITS, TARGET)
        total.backward()
        optimiser.step()
    assert heads["easy"].learned()["log_variance"] == pytest.approx(math.log(easy), abs=1e-3)
    assert heads["hard"].learned()["log_variance"] == pytest.approx(math.log(hard), abs=1e-3)
    assert heads["hard"].learned()["weight"] < heads["easy"].learned()["weight"]


def test_registered_and_built_from_a_head_objective():
    assert "uncertainty" in LOSSES
    data = FitData(train=[], train_plain=[], val=[], num_classes=2,
                   objectives={"a": Objective("uncertainty", options={"num_classes": 3}), "b": "cross-entropy"})
    losses, weights = build_losses(data, TrainSettings(label_smoothing=0.0))
    assert isinstance(losses["a"], UncertaintyWeighted) and losses["a"].inner.num_classes == 3
    assert losses["b"].num_classes == 2 and weights == {"a": 1.0, "b": 1.0}
    assert [name for name, _ in losses["a"].named_parameters()] == ["log_variance"]
