import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from transferkit.strategies.auto import MIN_PER_CLASS_TO_FINE_TUNE, choose_strategy
from transferkit.strategies.linear_probe import fit_logistic_head


def _blobs(n_classes: int, n: int = 60, dim: int = 8, seed: int = 0):
    fixed = np.random.default_rng(100)  # same centres and scales for every sample drawn
    centres, scales = fixed.normal(0, 3, (n_classes, dim)), fixed.uniform(0.5, 3, dim)
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    x = centres[y] + rng.normal(0, 1, (n, dim)) * scales + 10
    return x.astype(np.float32), y


@pytest.mark.parametrize("n_classes", [2, 4])
def test_folded_linear_head_equals_scaler_plus_logistic_regression(n_classes):
    x, y = _blobs(n_classes)
    vx, vy = _blobs(n_classes, seed=1)
    head, history, c = fit_logistic_head(x, y, vx, vy, n_classes, refit_on_val=False)
    scaler = StandardScaler().fit(x)
    reference = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x), y)
    expected = reference.predict_proba(scaler.transform(vx))
    with torch.no_grad():
        got = torch.softmax(head(torch.as_tensor(vx)), 1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert head.weight.shape == (n_classes, x.shape[1])
    assert len(history) > 3 and all({"C", "val_accuracy", "val_loss"} <= set(r) for r in history)
    assert c == min(history, key=lambda r: r["val_loss"])["C"]


def test_separable_features_give_accurate_head_and_noise_does_not():
    x, y = _blobs(3, n=90)
    vx, vy = _blobs(3, n=90, seed=1)
    head, _, _ = fit_logistic_head(x, y, vx, vy, 3)
    with torch.no_grad():
        acc = (head(torch.as_tensor(vx)).argmax(1).numpy() == vy).mean()
    assert acc > 0.9
    noise = np.random.default_rng(2).normal(size=x.shape).astype(np.float32)
    head, _, _ = fit_logistic_head(noise, y, noise[::-1].copy(), vy, 3)
    with torch.no_grad():
        acc = (head(torch.as_tensor(noise[::-1].copy())).argmax(1).numpy() == vy).mean()
    assert acc < 0.8


def test_auto_rule_depends_on_smallest_class():
    small = [0] * 50 + [1] * (MIN_PER_CLASS_TO_FINE_TUNE - 1)
    assert choose_strategy(small)[0] == "linear-probe"
    name, reason = choose_strategy([0] * 20 + [1] * 20)
    assert name == "fine-tune" and "20" in reason
