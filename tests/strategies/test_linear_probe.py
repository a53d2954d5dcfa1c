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


def test_history_marks_the_c_chosen_by_log_loss_and_the_plot_circles_it():
    from transferkit.reporting.plots import learning_curves_png, sweep_choice

    x, y = _blobs(3, n=60)
    vx, vy = _blobs(3, n=60, seed=1)
    _, history, c = fit_logistic_head(x, y, vx, vy, 3)
    chosen = [r for r in history if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["C"] == c == min(history, key=lambda r: r["val_loss"])["C"]
    assert sweep_choice(history) == (c, "lowest validation log-loss")
    # accuracy and log-loss disagree: the report must show the C the model uses, by its criterion
    rows = [{"C": 0.0003, "val_accuracy": 0.9, "val_loss": 0.8, "chosen": 0},
            {"C": 0.03, "val_accuracy": 0.8, "val_loss": 0.5, "chosen": 1}]
    assert sweep_choice(rows) == (0.03, "lowest validation log-loss")
    older = [{k: v for k, v in r.items() if k != "chosen"} for r in rows]  # runs saved before the marker
    assert sweep_choice(older)[0] == 0.03
    assert learning_curves_png(rows)[:4] == b"\x89PNG"


def test_cross_validated_head_is_fitted_on_all_data_with_out_of_fold_estimate():
    from transferkit.strategies.linear_probe import cross_validated_head

    x, y = _blobs(3, n=45)
    head, history, c, oof = cross_validated_head(x, y, 3, folds=5)
    assert oof.shape == (45, 3) and np.allclose(oof.sum(1), 1)
    assert history[0]["validation"] == "5-fold cross-validation on all labelled data"
    chosen = next(r for r in history if r["chosen"])
    assert chosen["C"] == c and chosen["val_accuracy"] == (oof.argmax(1) == y).mean()
    scaler = StandardScaler().fit(x)  # the shipped head: scaler + logistic regression on ALL examples
    reference = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x), y)
    with torch.no_grad():
        got = torch.softmax(head(torch.as_tensor(x)), 1).numpy()
    np.testing.assert_allclose(got, reference.predict_proba(scaler.transform(x)), atol=1e-4)
