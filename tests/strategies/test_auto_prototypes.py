"""`auto` on data too few to fine-tune: a prototype head replaces the probe only when it scores higher
on the same estimate (the probe's out-of-fold splits, or its validation split)."""
import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from transferkit.models import TransferModel
from transferkit.strategies import FitData, TrainSettings, create_strategy
from transferkit.strategies.prototypes import PrototypeHead

SETTINGS = TrainSettings(progress=False, tta=False)


def _identity_model(width: int, classes: int) -> TransferModel:
    """Features in, features out (the tensors below play the backbone's features)."""
    encoder = nn.Linear(width, width)
    with torch.no_grad():
        encoder.weight.copy_(torch.eye(width))
        encoder.bias.zero_()
    return TransferModel(encoder, nn.Linear(width, classes))


def _data(x: np.ndarray, y: np.ndarray, classes: int, val: tuple[np.ndarray, np.ndarray] | None = None) -> FitData:
    tx, ty = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    vx, vy = (torch.as_tensor(val[0], dtype=torch.float32), torch.as_tensor(val[1])) if val else (tx[:0], ty[:0])
    train = TensorDataset(tx, ty)
    train.labels = y.tolist()  # what `FitData.labels` reads (the image and text datasets have it)
    return FitData(train=train, train_plain=train, val=TensorDataset(vx, vy), num_classes=classes,
                   folds=0 if val else 5)


def _loud_signal_quiet_noise(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """4 classes apart in 8 high-variance features; 300 near-constant features are noise. Euclidean
    distances ignore the near-constant features; standardising (as the probe does) blows them up to
    unit variance, and 5 examples per class cannot tell them from the signal. The class centres are
    fixed; `seed` draws the examples."""
    centres = 2 * np.random.default_rng(0).normal(size=(4, 8))
    rng = np.random.default_rng(seed + 1)
    y = np.repeat(np.arange(4), per_class)
    x = np.concatenate([centres[y] + rng.normal(size=(len(y), 8)), 0.01 * rng.normal(size=(len(y), 300))], axis=1)
    return x, y


def _one_quiet_feature(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The class is in one low-variance feature; 10 loud features are noise. A standardised linear
    head finds the quiet feature; Euclidean distances to class means are swamped by the noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(2), per_class)
    x = np.concatenate([(2 * y - 1)[:, None] * 0.5 + 0.1 * rng.normal(size=(len(y), 1)),
                        10 * rng.normal(size=(len(y), 10))], axis=1)
    return x, y


def test_auto_keeps_prototypes_when_they_score_higher_out_of_fold():
    x, y = _loud_signal_quiet_noise(5, seed=0)
    model = _identity_model(x.shape[1], 4)
    outcome = create_strategy("auto").fit(model, _data(x, y, 4), SETTINGS)
    figures = outcome.settings["compared"]
    assert outcome.settings["chosen"] == "prototypes" and isinstance(model.head, PrototypeHead)
    assert figures["prototypes_accuracy"] > 0.9 > 0.7 > figures["linear_probe_accuracy"]
    assert figures["scored_by"] == "5-fold cross-validation"
    assert f"{figures['prototypes_accuracy']:.1%}" in outcome.settings["reason"]
    assert f"{figures['linear_probe_accuracy']:.1%}" in outcome.settings["reason"]
    # the run's estimate is the kept head's, on every labelled example
    assert outcome.estimate["proba"].shape == (20, 4)
    oof = float((outcome.estimate["proba"].argmax(1) == y).mean())
    assert oof == figures["prototypes_accuracy"] == outcome.settings["estimated_accuracy"]
    assert outcome.settings["probe"]["estimated_accuracy"] == figures["linear_probe_accuracy"]


def test_auto_keeps_the_probe_when_prototypes_do_not_score_higher():
    x, y = _one_quiet_feature(10, seed=0)
    model = _identity_model(x.shape[1], 2)
    outcome = create_strategy("auto").fit(model, _data(x, y, 2), SETTINGS)
    figures = outcome.settings["compared"]
    assert outcome.settings["chosen"] == "linear-probe" and isinstance(model.head, nn.Linear)
    assert figures["linear_probe_accuracy"] > 0.9 > 0.6 > figures["prototypes_accuracy"]
    assert "no better, so the probe is kept" in outcome.settings["reason"]
    assert float((outcome.estimate["proba"].argmax(1) == y).mean()) == figures["linear_probe_accuracy"]
    assert "prototypes (not kept)" in outcome.timings


def test_a_tie_keeps_the_probe():
    x, y = _one_quiet_feature(10, seed=0)
    x[:, 1:] = 0.0  # noise gone: both heads are perfect
    outcome = create_strategy("auto").fit(_identity_model(x.shape[1], 2), _data(x, y, 2), SETTINGS)
    assert outcome.settings["compared"]["prototypes_accuracy"] == outcome.settings["compared"]["linear_probe_accuracy"] == 1
    assert outcome.settings["chosen"] == "linear-probe"


def test_with_a_validation_split_and_classes_too_small_to_fine_tune_both_are_scored_on_it():
    model = _identity_model(308, 4)
    outcome = create_strategy("auto").fit(model, _data(*_loud_signal_quiet_noise(5, seed=0), 4,
                                                       val=_loud_signal_quiet_noise(5, seed=1)), SETTINGS)
    figures = outcome.settings["compared"]
    assert figures["scored_by"] == "validation" and outcome.estimate is None
    assert outcome.settings["chosen"] == "prototypes" and figures["prototypes_accuracy"] > figures["linear_probe_accuracy"]
    assert "not fine-tuned: the smallest class has 5 training examples" in outcome.settings["reason"]
    assert outcome.settings["examples_per_class"] == [10, 10, 10, 10]  # centroids from train + validation
