"""Class-incremental pieces: exemplar selection, growing and aligning heads, distillation, and the
frozen strategies' `extend` (prototypes, linear probe) on synthetic features."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from transferkit.models import TransferModel
from transferkit.strategies import ExtendData, FitData, TrainSettings, create_strategy
from transferkit.strategies.incremental import (Distillation, align_weights, bias_correction, grow_linear,
                                                select_exemplars)

SETTINGS = TrainSettings(progress=False, tta=False)


def test_herding_picks_the_example_nearest_the_class_mean_first_and_respects_the_bound():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 8)) + 5
    labels = np.repeat([0, 1], 20)
    chosen = select_exemplars(labels, 5, "herding", features)
    assert len(chosen) == 10 and all(labels[i] == 0 for i in chosen[:5]) and all(labels[i] == 1 for i in chosen[5:])
    z = features[:20] / np.linalg.norm(features[:20], axis=1, keepdims=True)
    assert chosen[0] == int(np.linalg.norm(z - z.mean(0), axis=1).argmin())
    # the herded mean of 5 is closer to the class mean than a random 5's, on average
    herded = np.linalg.norm(z[chosen[:5]].mean(0) - z.mean(0))
    randoms = [np.linalg.norm(z[rng.choice(20, 5, replace=False)].mean(0) - z.mean(0)) for _ in range(50)]
    assert herded < np.mean(randoms)


def test_random_selection_is_bounded_and_seeded_and_small_classes_are_kept_whole():
    labels = np.array([0] * 30 + [1] * 3)
    a, b = select_exemplars(labels, 4, "random", seed=3), select_exemplars(labels, 4, "random", seed=3)
    assert a == b and len(a) == 4 + 3 and set(a[-3:]) == {30, 31, 32}
    with pytest.raises(ValueError):
        select_exemplars(labels, 4, "newest")


def test_grow_linear_copies_old_rows_exactly_and_align_weights_matches_norms():
    layer = nn.Linear(6, 3)
    grown = grow_linear(layer, 5, init=torch.full((2, 6), 7.0))
    assert grown.out_features == 5
    assert torch.equal(grown.weight[:3], layer.weight) and torch.equal(grown.bias[:3], layer.bias)
    assert torch.equal(grown.weight[3:], torch.full((2, 6), 7.0))
    factor = align_weights(grown, 3)
    norms = grown.weight.norm(dim=1)
    assert factor < 1 and torch.isclose(norms[3:].mean(), norms[:3].mean(), rtol=1e-5)
    assert torch.equal(grown.weight[:3], layer.weight)  # old rows untouched


def test_distillation_is_zero_for_the_teacher_itself_and_pulls_towards_it():
    loss = Distillation(temperature=2.0)
    teacher = torch.randn(8, 3)
    assert float(loss(teacher.clone(), teacher)) == pytest.approx(0.0, abs=1e-6)
    student = torch.zeros(8, 3, requires_grad=True)
    value = loss(student, teacher)
    value.backward()
    assert float(value.detach()) > 0 and student.grad.abs().sum() > 0


def _separable(n_per_class: int, classes: list[int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor([k for k in classes for _ in range(n_per_class)])
    x = torch.randn(len(y), 6, generator=g) * 0.5 + 3 * nn.functional.one_hot(y, 6).float()
    return x, y


def _identity_model(head: nn.Module) -> TransferModel:
    encoder = nn.Linear(6, 6)
    with torch.no_grad():
        encoder.weight.copy_(torch.eye(6)), encoder.bias.zero_()
    return TransferModel(encoder, head)


def _empty():
    return TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long))


def _extension(x, y, memory_x=None, memory_y=None, old=3, total=4, options=None):
    mx = memory_x if memory_x is not None else torch.zeros(0, 6)
    my = memory_y if memory_y is not None else torch.zeros(0, dtype=torch.long)
    train = TensorDataset(torch.cat([mx, x]), torch.cat([my, y]))
    train.labels = torch.cat([my, y]).tolist()
    return ExtendData(train=train, train_plain=train, val=_empty(), num_classes=total, old_classes=old,
                      memory_size=len(my), memory_features=mx.numpy() if memory_x is not None else None,
                      modality="tabular", options=options or {})


def test_prototype_extension_leaves_old_class_logits_bit_for_bit_and_learns_the_new_class():
    x, y = _separable(10, [0, 1, 2])
    model = _identity_model(nn.Linear(6, 3))
    fitted = create_strategy("prototypes").fit(
        model, FitData(train=TensorDataset(x, y), train_plain=TensorDataset(x, y), val=_empty(), num_classes=3,
                       folds=5), SETTINGS)
    queries = torch.randn(30, 6) * 2
    old_head = {k: v.clone() for k, v in model.head.state_dict().items()}
    with torch.no_grad():
        before = model(queries)
    nx, ny = _separable(10, [3], seed=1)
    outcome = create_strategy("prototypes").extend(model, _extension(nx, ny, options=fitted.settings), SETTINGS)
    grown = model.head.state_dict()
    assert torch.equal(grown["mean"], old_head["mean"])
    assert torch.equal(grown["linear.weight"][:3], old_head["linear.weight"])
    assert torch.equal(grown["linear.bias"][:3], old_head["linear.bias"])
    with torch.no_grad():
        after = model(queries)
        # the same weights; a wider matrix product may round differently in the last bit
        assert torch.allclose(after[:, :3], before, rtol=1e-6, atol=1e-4)
        assert torch.equal(after[:, :3].argmax(1), before.argmax(1))
        assert (model(nx).argmax(1) == 3).all()
    assert outcome.settings["examples_per_class"] == [10, 10, 10, 10]


def test_linear_probe_extension_refits_on_stored_exemplar_features_without_forgetting():
    x, y = _separable(20, [0, 1, 2])
    model = _identity_model(nn.Linear(6, 3))
    data = FitData(train=TensorDataset(x, y), train_plain=TensorDataset(x, y), val=_empty(), num_classes=3, folds=5)
    fitted = create_strategy("linear-probe").fit(model, data, SETTINGS)
    keep = select_exemplars(y.numpy(), 5, "herding", fitted.features[0])
    nx, ny = _separable(20, [3], seed=1)
    ext = _extension(nx, ny, x[keep], y[keep], options=fitted.settings)
    create_strategy("linear-probe").extend(model, ext, SETTINGS)
    tx, ty = _separable(20, [0, 1, 2, 3], seed=2)
    with torch.no_grad():
        predicted = model(tx).argmax(1)
    for k in range(4):
        assert (predicted[ty == k] == k).float().mean() > 0.9, k
    # naive: the grown head trained on the new class alone forgets the old ones
    naive = _identity_model(nn.Linear(6, 3))
    create_strategy("linear-probe").fit(naive, data, SETTINGS)
    naive_data = ExtendData(**{**vars(_extension(nx, ny, options=fitted.settings)), "replay": False,
                               "distill": False, "align": False})
    create_strategy("linear-probe").extend(naive, naive_data, SETTINGS)
    with torch.no_grad():  # it calls old-class examples the new class more often than the refit head does
        naive_old = (naive(tx).argmax(1)[ty < 3] == ty[ty < 3]).float().mean()
        assert naive_old < (predicted[ty < 3] == ty[ty < 3]).float().mean()


def test_bias_correction_undoes_an_inflated_new_class_and_leaves_old_rows_alone():
    torch.manual_seed(0)
    layer = nn.Linear(6, 3)
    x, y = _separable(30, [0, 1, 2])
    with torch.no_grad():  # a head that separates the classes, then favours the new class 2 by +9
        layer.weight.copy_(3 * torch.eye(6)[:3])
        layer.bias.copy_(torch.tensor([0.0, 0.0, 9.0]))
    old_rows = layer.weight[:2].detach().clone(), layer.bias[:2].detach().clone()
    with torch.no_grad():
        logits = layer(x)
    before = (logits.argmax(1) == y).float().mean()
    alpha, beta = bias_correction(layer, logits, y, old_classes=2)
    with torch.no_grad():
        after = (layer(x).argmax(1) == y).float().mean()
    assert before < 0.8 < after and beta < 0 and alpha > 0
    assert torch.equal(layer.weight[:2], old_rows[0]) and torch.equal(layer.bias[:2], old_rows[1])
