"""The `prototypes` strategy: nearest class centroid on centred, L2-normalised features (SimpleShot)."""
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from transferkit.models import TransferModel
from transferkit.strategies import FitData, TrainSettings, create_strategy
from transferkit.strategies.prototypes import PrototypeHead, _centroids


def test_the_head_predicts_the_nearest_centroid_in_normalised_space_at_any_temperature():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 5, generator=g), torch.arange(60) % 3
    mean = x.mean(0)
    centroids = _centroids(x, y, 3, mean)
    queries = torch.randn(20, 5, generator=g)
    z = PrototypeHead.normalise(queries, mean)
    nearest = torch.cdist(z, centroids).argmin(1)
    for t in (0.05, 1.0):
        head = PrototypeHead(5, 3)
        head.set_prototypes(mean, centroids, t)
        logits = head(queries)
        assert torch.equal(logits.argmax(1), nearest)
        assert torch.allclose(logits, -torch.cdist(z, centroids).pow(2) / t, atol=1e-4)


def test_a_class_without_examples_never_wins():
    x, y = torch.randn(10, 4), torch.zeros(10, dtype=torch.long)  # only class 0 seen
    head = PrototypeHead(4, 2)
    head.set_prototypes(x.mean(0), _centroids(x, y, 2, x.mean(0)), 0.1)
    assert (head(torch.randn(50, 4)).argmax(1) == 0).all()


def test_fit_without_validation_estimates_out_of_fold_and_keeps_every_example_in_the_centroids():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(30) % 3
    x = torch.randn(30, 6, generator=g) + 3 * nn.functional.one_hot(y, 6).float()
    data = FitData(train=TensorDataset(x, y), train_plain=TensorDataset(x, y),
                   val=TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long)), num_classes=3, folds=5)
    encoder = nn.Linear(6, 6)  # the identity, with parameters (feature extraction reads their device)
    with torch.no_grad():
        encoder.weight.copy_(torch.eye(6)), encoder.bias.zero_()
    model = TransferModel(encoder, nn.Linear(6, 3))
    outcome = create_strategy("prototypes").fit(model, data, TrainSettings(progress=False, tta=False))
    assert isinstance(model.head, PrototypeHead)
    assert outcome.estimate["proba"].shape == (30, 3) and outcome.settings["estimated_accuracy"] > 0.9
    assert sum(r["chosen"] for r in outcome.history) == 1
    assert outcome.settings["examples_per_class"] == [10, 10, 10]
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9
